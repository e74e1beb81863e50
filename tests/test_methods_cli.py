"""`reasonrank rerank/eval --method NAME`: the method's defaults, overridden by any flag, shown in
--help, round-tripped to the same command, and a real run of a setwise method from the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from reasonrank.cli import config_to_argv, parse_command
from reasonrank.io import read_calls_jsonl, read_trec_run, write_candidates_jsonl
from reasonrank.types import CandidateList

REPO = Path(__file__).resolve().parents[1]
BASE = "rerank --candidates c.jsonl --backend transformers --model m --out o"


def test_method_defaults_then_flags():
    config = parse_command(f"{BASE} --method rank-r1 --max-new-tokens 3172 --num-child 9")
    window = config.window
    assert (window.method, window.max_query_tokens, window.max_passage_tokens, window.num_child, window.sort_k) == (
        "rank-r1",
        32,
        512,
        9,
        10,
    )
    assert window.generation.max_new_tokens == 3172  # equal to the plain default, still kept
    argv = config_to_argv(config)
    assert parse_command(argv) == config
    assert argv[argv.index("--method") + 1] == "rank-r1" and argv[argv.index("--max-new-tokens") + 1] == "3172"
    assert "--max-query-tokens" not in argv  # the method's own default is not repeated


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ("--method reasonrank-qwen3", (3172, 0.6, 0.95, 20)),
        ("--method reasonrank-qwen3 --temperature 0 --sampling-top-k 0", (3172, 0.0, 0.95, 0)),
        ("--method rank1", (8192, 0.0, 1.0, 0)),
        ("--temperature 0.3 --method reasonrank-qwen3", (3172, 0.3, 0.95, 20)),  # order does not matter
        ("", (3172, 0.0, 1.0, 0)),
    ],
)
def test_generation_settings_per_method(args, expected):
    config = parse_command(f"{BASE} {args}")
    g = config.window.generation
    assert (g.max_new_tokens, g.temperature, g.top_p, g.top_k) == expected
    assert parse_command(config_to_argv(config)) == config


def test_eval_takes_the_method_too():
    config = parse_command("eval --bright-root r --task theoremqa_questions --backend vllm --model m --method rank1")
    assert config.window.method == "rank1" and config.window.generation.max_new_tokens == 8192
    assert parse_command(config_to_argv(config)) == config


def _cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "1000"}  # argparse wraps help at the terminal width
    return subprocess.run(
        [sys.executable, "-m", "reasonrank.cli", *map(str, args)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def test_help_lists_every_method_with_its_defaults():
    proc = _cli("rerank", "--help")
    assert proc.returncode == 0, proc.stderr
    text = " ".join(proc.stdout.split())
    for piece in (
        "reasonrank-qwen3 (listwise: temperature=0.6, top_p=0.95, sampling_top_k=20)",
        "rank1 (pointwise: max_new_tokens=8192)",
        "rank-r1 (setwise: max_query_tokens=32, max_new_tokens=8000)",
        "--num-child NUM_CHILD setwise: children per heap node (a comparison shows N + 1) (default: 19)",
    ):
        assert piece in text


def test_unknown_method_is_one_line():
    proc = _cli("rerank", *BASE.split()[1:], "--method", "rankzephyr")
    assert proc.returncode != 0 and "invalid choice: 'rankzephyr'" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_rank_r1_from_the_command_line_on_the_tiny_model(tiny_model_dir, dl19, tmp_path):
    lists = [CandidateList(cl.query, cl.candidates[:4]) for cl in dl19[:2]]
    write_candidates_jsonl(lists, tmp_path / "c.jsonl")
    proc = _cli(
        "rerank",
        "--candidates",
        tmp_path / "c.jsonl",
        "--backend",
        "transformers",
        "--model",
        tiny_model_dir,
        "--device",
        "cpu",
        "--method",
        "rank-r1",
        "--num-child",
        "3",
        "--max-new-tokens",
        "4",
        "--out",
        tmp_path / "out",
    )
    assert proc.returncode == 0, proc.stderr
    run = read_trec_run(tmp_path / "out" / "run.trec")
    assert {q: sorted(d for d, _ in hits) for q, hits in run.items()} == {
        cl.query.qid: sorted(cl.docids) for cl in lists
    }
    calls = read_calls_jsonl(tmp_path / "out" / "calls.jsonl")
    # 4 candidates, 3 children: one build comparison, then the extraction heapifies of 3 and 2
    assert all(c.method == "rank-r1" for c in calls) and len(calls) == 2 * 3
    assert calls[0].prompt[1]["content"].startswith('Given the query: "')
