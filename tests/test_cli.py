"""The `reasonrank` command: config ⇄ command round trips, `eval` numbers against pytrec_eval,
one-line errors from a real subprocess, and `rerank` end to end against a real OpenAI-style server."""

from __future__ import annotations

import json
import socket
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from reasonrank.backends.base import BackendConfig
from reasonrank.bright import BrightSource
from reasonrank.cli import RerankConfig, config_to_argv, config_to_command, main, parse_command
from reasonrank.evaluate import EvalConfig, evaluate, format_table, write_report
from reasonrank.io import read_calls_jsonl, read_qrels, read_rank_llm_json, read_trec_run, write_candidates_jsonl
from reasonrank.retrieve import CandidateSource
from reasonrank.types import CandidateList, GenerationParams, Passage, Query
from reasonrank.window import WindowConfig, rerank, window_spans
from tests.openai_server import Answer, OpenAIServer
from tests.scripted_backend import ScriptedBackend

REPO = Path(__file__).resolve().parents[1]


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """The CLI as users run it: a fresh interpreter, `python -m reasonrank.cli`."""
    return subprocess.run(
        [sys.executable, "-m", "reasonrank.cli", *map(str, args)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# ----------------------------------------------------------------------------- round trips
ROUND_TRIP_CONFIGS = [
    RerankConfig(backend=BackendConfig(model="m"), out="o"),
    RerankConfig(
        source=CandidateSource(name="dl19", run="runs/bm25 top100.run", corpus="c.tsv", queries="q.tsv"),
        backend=BackendConfig(
            kind="openai",
            model="reasonrank-7B",
            base_url="http://127.0.0.1:8000/v1",
            api_key_env="MY_KEY",
            max_in_flight=4,
            timeout_s=30.5,
            max_retries=0,
        ),
        window=WindowConfig(
            window=10,
            step=5,
            top_k=50,
            passes=2,
            max_passage_tokens=100,
            generation=GenerationParams(max_new_tokens=64, temperature=0.6, top_p=0.95, seed=7),
        ),
        out="out dir/with space",
    ),
    EvalConfig(bright=BrightSource(root="data/bright", tasks=["biology"])),
    EvalConfig(trec=CandidateSource()),
    EvalConfig(reranker=BackendConfig()),
    EvalConfig(
        trec=CandidateSource(name="dl19", candidates="c.json", qrels="qrels.txt"),
        bright=BrightSource(root="b", tasks=["theoremqa_questions", "leetcode"], run="runs/{task}.run"),
        reranker=BackendConfig(
            kind="vllm",
            model="liuwenhan/reasonrank-7B",
            tensor_parallel_size=4,
            max_model_len=32768,
            gpu_memory_utilization=0.5,
            enforce_eager=True,
            dtype="bfloat16",
        ),
        window=WindowConfig(top_k=20),
        rel_level=2,
        metrics=("ndcg@10", "recall@100"),
        out="results",
    ),
]


@pytest.mark.parametrize("config", ROUND_TRIP_CONFIGS, ids=lambda c: config_to_command(c)[:60])
def test_config_command_round_trip(config):
    command = config_to_command(config)
    assert command.startswith("reasonrank ")
    assert parse_command(command) == config
    assert parse_command(config_to_argv(config)) == config


def test_rendered_command_leaves_defaults_out():
    config = RerankConfig(
        source=CandidateSource(candidates="c.jsonl"),
        backend=BackendConfig(kind="openai", model="m"),
        window=WindowConfig(top_k=30),
        out="o",
    )
    assert config_to_command(config) == (
        "reasonrank rerank --candidates c.jsonl --backend openai --model m --top-k 30 --out o"
    )


# ----------------------------------------------------------------------------- eval on DL19
@pytest.fixture(scope="session")
def dl19_bm25_run(test_data, tmp_path_factory) -> Path:
    """The BM25 run of the RankLLM DL19 file, written as a TREC run (ranks and scores as given)."""
    data = json.loads((test_data / "trec-dl19" / "bm25_top100_with_text.json").read_text())
    path = tmp_path_factory.mktemp("dl19") / "bm25.run"
    with path.open("w") as handle:
        for entry in data:
            for hit in entry["hits"]:
                handle.write(f"{hit['qid']} Q0 {hit['docid']} {hit['rank']} {hit['score']} bm25\n")
    return path


def _printed_row(stdout: str, dataset: str, stage: str) -> dict[str, str]:
    lines = stdout.splitlines()
    header = next(line for line in lines if line.startswith("dataset"))
    row = next(line for line in lines if line.split()[:2] == [dataset, stage])
    return dict(zip(header.split(), row.split()))


def test_eval_dl19_run_prints_pytrec_eval_ndcg(test_data, dl19_bm25_run, tmp_path):
    pytrec_eval = pytest.importorskip("pytrec_eval")
    root = test_data / "trec-dl19"
    proc = run_cli(
        "eval",
        "--run",
        dl19_bm25_run,
        "--queries",
        root / "queries.tsv",
        "--qrels",
        root / "qrels.txt",
        "--name",
        "dl19",
        "--out",
        tmp_path / "out",
    )
    assert proc.returncode == 0, proc.stderr
    assert "×100" in proc.stdout.splitlines()[0]
    qrels = read_qrels(root / "qrels.txt")
    run = {q: dict(hits) for q, hits in read_trec_run(dl19_bm25_run).items()}
    reference = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.1", "ndcg_cut.10"}).evaluate(run)
    row = _printed_row(proc.stdout, "dl19", "first-stage")
    assert row["queries"] == str(len(reference)) == "43"
    assert row["nDCG@10"] == f"{100 * statistics.mean(v['ndcg_cut_10'] for v in reference.values()):.2f}"
    assert row["nDCG@1"] == f"{100 * statistics.mean(v['ndcg_cut_1'] for v in reference.values()):.2f}"
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["table"][0]["ndcg@10"] == pytest.approx(float(row["nDCG@10"]) / 100, abs=5e-5)
    assert parse_command(results["command"]).trec.run == str(dl19_bm25_run)
    assert len(read_trec_run(tmp_path / "out" / "dl19.trec")) == 43


def test_evaluate_with_an_oracle_reranker(test_data, tmp_path):
    """DL19 top-20 with the grade written into each passage: a perfect one-window reranker must
    reach the best order of the candidates, and the report must say so."""
    pytrec_eval = pytest.importorskip("pytrec_eval")
    root = test_data / "trec-dl19"
    qrels = read_qrels(root / "qrels.txt")
    lists = read_rank_llm_json(root / "bm25_top100_with_text.json", qrels=qrels)
    for cl in lists:
        cl.candidates = [
            Passage(p.docid, f"relevance {cl.qrels.get(p.docid, 0)}. {p.text}") for p in cl.candidates[:20]
        ]
    write_candidates_jsonl(lists, tmp_path / "graded.jsonl")
    config = EvalConfig(
        trec=CandidateSource(name="dl19", candidates=str(tmp_path / "graded.jsonl")), window=WindowConfig(top_k=20)
    )
    backend = ScriptedBackend()
    report = evaluate(config, backend=backend)
    assert backend.calls == [43]  # one window position, all queries in one batch
    best = {
        cl.query.qid: {
            p.docid: float(20 - i) for i, p in enumerate(sorted(cl.candidates, key=lambda p: -cl.qrels.get(p.docid, 0)))
        }
        for cl in lists
    }
    reference = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10"}).evaluate(best)
    first, reranked = report.scores
    assert (first.stage, reranked.stage) == ("first-stage", "reranked")
    assert reranked.mean["ndcg@10"] == pytest.approx(statistics.mean(v["ndcg_cut_10"] for v in reference.values()))
    assert reranked.mean["ndcg@10"] > first.mean["ndcg@10"] + 0.2
    table = format_table(report)
    assert "reranked" in table and "nDCG@10" in table
    write_report(report, config, tmp_path / "out")
    assert len(read_calls_jsonl(tmp_path / "out" / "dl19.calls.jsonl")) == 43


# ----------------------------------------------------------------------------- one-line errors
def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def small_candidates(test_data, tmp_path_factory) -> Path:
    lists = read_rank_llm_json(test_data / "trec-dl19" / "bm25_top100_with_text.json")[:2]
    path = tmp_path_factory.mktemp("cands") / "c.jsonl"
    write_candidates_jsonl(lists, path)
    return path


def _error_cases(tmp: Path, candidates: Path) -> dict[str, tuple[list, str]]:
    bad = tmp / "bad.jsonl"
    good_line = candidates.read_text().splitlines()[0]
    bad.write_text(good_line + "\n" + '{"qid": "2", "query": "broken' + "\n")
    backend = ["--backend", "openai", "--model", "m", "--out", tmp / "o"]
    return {
        "missing file": (["eval", "--candidates", tmp / "absent.jsonl"], "absent.jsonl: file not found"),
        "malformed line": (["rerank", "--candidates", bad, *backend], "bad.jsonl:2: invalid JSON"),
        "unknown backend": (
            ["rerank", "--candidates", candidates, "--backend", "nope", "--model", "m", "--out", tmp],
            "invalid choice: 'nope'",
        ),
        "unreachable server": (
            [
                "rerank",
                "--candidates",
                candidates,
                *backend,
                "--max-retries",
                "0",
                "--base-url",
                f"http://127.0.0.1:{_closed_port()}/v1",
            ],
            "cannot connect",
        ),
        "bad window": (["rerank", "--candidates", candidates, *backend, "--window", "1"], "window must be at least 2"),
        "no dataset": (["eval"], "no dataset"),
    }


@pytest.mark.parametrize(
    "case", ["missing file", "malformed line", "unknown backend", "unreachable server", "bad window", "no dataset"]
)
def test_user_errors_print_one_line_and_exit_2(case, tmp_path, small_candidates):
    args, expected = _error_cases(tmp_path, small_candidates)[case]
    proc = run_cli(*args)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert expected in lines[0]
    assert proc.stdout == ""


def test_main_returns_status_in_process(capsys, tmp_path):
    assert main(["eval", "--candidates", str(tmp_path / "none.jsonl")]) == 2
    assert capsys.readouterr().err.startswith("error: ")
    assert main(["--help"]) == 0


# ----------------------------------------------------------------------------- rerank end to end
def _graded_lists() -> list[CandidateList]:
    """Two queries × 25 passages whose text states a distinct relevance in a shuffled order."""
    lists = []
    for q in range(2):
        grades = [(i * 7 + 3 * q) % 25 for i in range(25)]
        lists.append(
            CandidateList(
                Query(f"q{q}", f"query number {q} [1] asks for the most relevant passage"),
                [Passage(f"q{q}-d{i}", f"Passage {i} [2] has relevance {g}.") for i, g in enumerate(grades)],
            )
        )
    return lists


def test_rerank_end_to_end_with_openai_backend(tmp_path):
    lists = _graded_lists()
    write_candidates_jsonl(lists, tmp_path / "c.jsonl")
    oracle = ScriptedBackend()

    def respond(messages, request):
        ids = oracle.ranking_for(messages)
        return Answer(
            content="<think>sorted by stated relevance</think>\n<answer>"
            + " > ".join(f"[{i}]" for i in ids)
            + "</answer>"
        )

    with OpenAIServer(responder=respond) as server:
        proc = run_cli(
            "rerank",
            "--candidates",
            tmp_path / "c.jsonl",
            "--backend",
            "openai",
            "--model",
            "test-model",
            "--base-url",
            server.base_url,
            "--out",
            tmp_path / "out",
        )
        requests = server.chat_requests
        base_url = server.base_url
    assert proc.returncode == 0, proc.stderr
    assert "reranked 2 queries with 4 window calls (0 needed repair)" in proc.stdout
    assert len(requests) == 4 and all(r.body["model"] == "test-model" for r in requests)
    assert all(r.body["temperature"] == 0 for r in requests)

    run = read_trec_run(tmp_path / "out" / "run.trec")
    expected = rerank(_graded_lists(), ScriptedBackend(), WindowConfig())
    assert {q: [d for d, _ in hits] for q, hits in run.items()} == {r.qid: r.ranking for r in expected}
    for cl in lists:  # the window sweep must bring the true top 10 to the front, in order
        by_grade = sorted(cl.candidates, key=lambda p: -int(p.text.split("relevance ")[1].rstrip(".")))
        assert [d for d, _ in run[cl.query.qid][:10]] == [p.docid for p in by_grade[:10]]
    calls = read_calls_jsonl(tmp_path / "out" / "calls.jsonl")
    spans = window_spans(25, 20, 10, 100)
    assert [(c.qid, c.start, c.end) for c in calls] == [(q, *span) for q in ("q0", "q1") for span in spans]
    assert all(c.reasoning == "sorted by stated relevance" and c.tokens_out > 0 for c in calls)
    assert "(2) has relevance" in calls[0].prompt[1]["content"]  # [n] in passages became (n)
    provenance = json.loads((tmp_path / "out" / "config.json").read_text())
    assert parse_command(provenance["command"]).backend.base_url == base_url
