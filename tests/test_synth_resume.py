"""Kill `reasonrank synth` with SIGKILL half-way through a 200-item run, start it again: every item
ends with exactly one label, none lost, none asked for twice once stored. The command runs as a
real subprocess against a real HTTP teacher and a SQLite file, the way a job runs it."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from db_fixtures import sqlite_template  # noqa: F401 (fixture)
from openai_server import Answer, OpenAIServer
from sqlalchemy import text

from db.engine import get_engine
from reasonrank.io import write_candidates_jsonl
from reasonrank.types import CandidateList, Query

REPO = Path(__file__).resolve().parents[1]
ITEMS = 200


def _labels(engine) -> list[tuple[str, int]]:
    """(qid, number of labels) for every item of the run's dataset."""
    with engine.connect() as connection:
        return connection.execute(
            text(
                "SELECT query.qid, COUNT(label.id) FROM item JOIN query ON query.id = item.query_id "
                "LEFT JOIN label ON label.item_id = item.id GROUP BY query.qid"
            )
        ).all()


def _start(argv: list[str], log: Path) -> subprocess.Popen:
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "reasonrank", *argv],
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )


def test_sigkill_mid_run_then_restart_labels_every_item_exactly_once(dl19, sqlite_template, tmp_path):  # noqa: F811
    passages = [p for cl in dl19 for p in cl.candidates]
    unique = list({p.docid: p for p in passages}.values())[: ITEMS * 5]
    lists = [
        CandidateList(Query(f"k{i}", f"question number {i}"), unique[i * 5 : (i + 1) * 5], dataset="kill")
        for i in range(ITEMS)
    ]
    candidates = tmp_path / "kill.jsonl"
    write_candidates_jsonl(lists, candidates)
    db_path = tmp_path / "store.db"
    shutil.copyfile(sqlite_template, db_path)
    engine = get_engine(f"sqlite:///{db_path}")
    log = tmp_path / "synth.log"
    teacher = lambda messages, request: Answer(content="[2] > [1] > [5]", reasoning_content="steady")  # noqa: E731

    with OpenAIServer(teacher, latency_s=0.05) as server:
        argv = [
            "synth",
            "--candidates",
            str(candidates),
            "--base-url",
            server.base_url,
            "--model",
            "test-model",
            "--max-in-flight",
            "4",
            "--db",
            f"sqlite:///{db_path}",
        ]
        first = _start(argv, log)
        deadline = time.monotonic() + 120
        while sum(n for _, n in _labels(engine)) < 60 and time.monotonic() < deadline and first.poll() is None:
            time.sleep(0.05)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        at_kill = dict(_labels(engine))
        done_before = {qid for qid, n in at_kill.items() if n}
        assert first.returncode == -signal.SIGKILL and 60 <= len(done_before) < ITEMS, log.read_text()
        server.reset()

        second = _start(argv, log)
        assert second.wait(timeout=180) == 0, log.read_text()
        asked_again = {
            r.body["messages"][-1]["content"].split("Search Query: ")[1].split(".")[0] for r in server.chat_requests
        }
    final = dict(_labels(engine))
    engine.dispose()
    assert len(final) == ITEMS and set(final.values()) == {1}  # every item, exactly one label
    assert not asked_again & {f"question number {qid[1:]}" for qid in done_before}
    assert f"labelled {ITEMS - len(done_before)} of {ITEMS - len(done_before)} items" in log.read_text()
