"""Finding 3 (and the JSON side of 9): YAML alias bombs and oversize/deep input end in one line,
fast and small, in the app (as admin; refused outright as annotator) and in the CLI."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import time

import pytest
from running_app import REPO, app_config, call

# 271 bytes that expand to 9**8 strings when aliases are followed (the "billion laughs" of YAML)
ALIAS_BOMB = "\n".join(
    [
        'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
        *[f"{x}: &{x} [{', '.join(['*' + p] * 9)}]" for p, x in zip("abcdefg", "bcdefgh")],
        "i: [" + ", ".join(["*h"] * 9) + "]",
    ]
)


def _rss_mb(pid: int) -> float:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.fixture(scope="module")
def app(app_with_annotator):
    return app_with_annotator


def _train_command_values(hyperparameters: str) -> list:
    """train_command's arguments: stage, preset, finetune, export, data, model, output dir, YAML, …,
    then the launch fields (runner, processes per node, nodes, strategy)."""
    return ["sft", "tiny-cpu", None, None, None, None, None, hyperparameters, False, None, "local", 1, 1, "ddp"]


def test_train_command_alias_bomb_is_refused_fast_and_small(app):
    admin, annotator = app.admin(), app.annotator()
    config = app_config(admin)
    dependency = next(d for d in config["dependencies"] if d.get("api_name") == "train_command")
    values = _train_command_values(ALIAS_BOMB)
    refused = call(annotator, dependency["id"], values)
    assert not refused["success"] and "admins only" in refused["output"]["error"], refused
    before = _rss_mb(app.proc.pid)
    started = time.monotonic()
    done = call(admin, dependency["id"], values, timeout=20)
    assert time.monotonic() - started < 5
    assert done["success"], done
    shown = done["output"]["data"][0]
    assert "anchors and aliases" in shown and len(shown) < 1000, shown[:300]
    assert _rss_mb(app.proc.pid) - before < 50


def _run_measured(args: list[str], cwd) -> tuple[int, str, float, float]:
    """(exit status, stderr, seconds, peak RSS MB) of `reasonrank ARGS` in a child process."""
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "reasonrank", *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    stderr = proc.stderr.read().decode(errors="replace")
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, stderr, time.monotonic() - started, usage.ru_maxrss / 1024


def test_cli_train_config_alias_bomb_is_one_line(tmp_path):
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(ALIAS_BOMB)
    code, stderr, seconds, peak = _run_measured(
        ["train", "sft", "--config", str(bomb), "--db", f"sqlite:///{tmp_path / 'x.db'}"], tmp_path
    )
    assert code == 2, stderr
    assert stderr.strip().count("\n") == 0 and str(bomb) in stderr and "aliases" in stderr, stderr
    assert seconds < 30 and peak < 600, (seconds, peak)


def test_cli_binary_config_names_the_file(tmp_path):
    binary = tmp_path / "model.bin"
    binary.write_bytes(bytes(range(256)) * 4)
    code, stderr, _, _ = _run_measured(["train", "sft", "--config", str(binary)], tmp_path)
    assert code == 2 and str(binary) in stderr and stderr.strip().count("\n") == 0, stderr


@pytest.mark.parametrize(
    "name, body",
    [
        ("deep.jsonl", '{"qid": ' + "[" * 200_000 + "\n"),
        ("deep.json", "[" * 200_000 + "\n"),
        ("huge-number.jsonl", json.dumps({"qid": "q", "query": "x", "candidates": []})[:-1] + ', "n": 1e400}\n'),
    ],
)
def test_rerank_bad_json_is_one_line(tmp_path, name, body):
    path = tmp_path / name
    path.write_text(body)
    code, stderr, seconds, _ = _run_measured(
        [
            "rerank",
            "--candidates",
            str(path),
            "--backend",
            "openai",
            "--base-url",
            "http://127.0.0.1:9/v1",
            "--model",
            "m",
            "--out",
            str(tmp_path / "out"),
        ],
        tmp_path,
    )
    where = str(path) if name.endswith(".json") else f"{path}:1"  # a whole JSON document has no line yet
    assert code == 2 and where in stderr and stderr.strip().count("\n") == 0, stderr
    assert "Traceback" not in stderr and seconds < 30


def test_gzip_bomb_line_is_refused_without_reading_it_whole(tmp_path):
    """A 1 MB gzip whose one line expands to 1 GiB: refused at the line cap, memory stays small."""
    path = tmp_path / "bomb.jsonl.gz"
    with gzip.open(path, "wb", compresslevel=9) as handle:
        chunk = b" " * 2**20
        handle.write(b'{"qid": "q", "query": "')
        for _ in range(64):
            handle.write(chunk)
    code, stderr, seconds, peak = _run_measured(
        [
            "rerank",
            "--candidates",
            str(path),
            "--backend",
            "openai",
            "--base-url",
            "http://127.0.0.1:9/v1",
            "--model",
            "m",
            "--out",
            str(tmp_path / "out"),
        ],
        tmp_path,
    )
    assert code == 2 and "longer than" in stderr and str(path) in stderr, stderr
    assert peak < 600, peak
