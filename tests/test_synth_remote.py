"""A synth job on a remote runner, without a cluster: the app selects and exports the items
(db.synth_remote.prepare) into a migrated SQLite store, the real worker command runs as a
subprocess the way a Ray or SLURM worker runs it (REASONRANK_REGISTER_BY_APP=1, events to stdout,
no store of its own) against a real OpenAI-compatible server on 127.0.0.1, and its stdout is the
remote log the app mirrors (reasonrank.runners.mirror_log) and whose `label` events it stores in
its own store — in pieces, again, after a restart, with a duplicated or foreign event."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from db_fixtures import sqlite_engine, sqlite_template  # noqa: F401 (fixture)
from openai_server import Answer, OpenAIServer
from sqlmodel import Session, select

from db import synth_remote
from db.engine import get_engine, write_session
from db.models import Dataset, Item, Job, Label
from reasonrank import jobs
from reasonrank.cli.synth import SynthConfig, run_synth
from reasonrank.io import InputError, read_candidate_file, read_qrels, write_candidates_jsonl
from reasonrank.runners import REGISTER_BY_APP_ENV, mirror_log

DATASET = "remote-synth"
KEY_ENV = "SYNTH_REMOTE_TEST_KEY"
SECRET = "sk-remote-secret-0123456789"


@pytest.fixture
def engine(sqlite_engine, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setenv("REASONRANK_DATA", str(tmp_path / "app-data"))
    return sqlite_engine


@pytest.fixture(scope="module")
def lists(test_data):
    root = test_data / "noveleval"
    found = read_candidate_file(root / "candidates_with_text.json", read_qrels(root / "qrels.txt"), DATASET)
    return found[:3]


def synth_job(engine, argv: list[str]) -> Job:
    """A recorded synth job with its local log and events files (what db.jobs.launch_job writes)."""
    with write_session(engine) as session:
        job = Job(kind="synth", config={"argv": argv}, status="running")
        session.add(job)
        session.flush()
        folder = Path(os.environ["REASONRANK_DATA"]) / "jobs" / str(job.id)
        job.log_path, job.metrics_path = str(folder / "log.txt"), str(folder / "events.jsonl")
        session.flush()
        session.expunge(job)
    return job


def run_worker(argv: list[str], cwd: Path) -> str:
    """The worker's command as a remote runner starts it; its output is the job's remote log."""
    cwd.mkdir()
    env = {
        **os.environ,
        jobs.EVENTS_ENV: jobs.EVENTS_TO_STDOUT,
        REGISTER_BY_APP_ENV: "1",
        KEY_ENV: SECRET,
        "REASONRANK_DATA": str(cwd / "data"),  # where a store would be created, were one opened
        "PYTHONPATH": str(Path.cwd()),
        "PYTHONPROFILEIMPORTTIME": "1",  # lists every module it imports (on stderr, so in the log)
    }
    done = subprocess.run(
        [sys.executable, "-m", "reasonrank", *argv],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout
    return done.stdout


def stored_labels(engine) -> list[tuple[int, Label, str]]:
    with Session(engine) as session:
        rows = session.exec(
            select(Item.id, Label, Item.status)
            .join(Label, Label.item_id == Item.id)
            .join(Dataset, Dataset.id == Item.dataset_id)
            .where(Dataset.name == DATASET)
        ).all()
        for _, label, _ in rows:
            session.expunge(label)
    return list(rows)


def test_label_events_of_a_mirrored_log_are_stored_once_across_re_mirrors_and_a_restart(
    engine, lists, tmp_path, sqlite_template
):  # noqa: F811
    candidates = tmp_path / "lists.jsonl"
    write_candidates_jsonl(lists, candidates)
    answer = Answer(content="[2] > [1]", reasoning_content=f"On the cluster. The key {SECRET} leaked.")
    with OpenAIServer(lambda messages, request: answer) as server:
        argv = ["synth", "--dataset", DATASET, "--candidates", str(candidates), "--base-url", server.base_url]
        argv += ["--model", "test-model", "--api-key-env", KEY_ENV, "--max-in-flight", "1", "--timeout", "10"]
        job = synth_job(engine, argv)
        run_argv = synth_remote.prepare(engine, job.id, argv)
        # the app imported the file and selected its three items; the worker gets only --items
        assert run_argv[0] == "synth" and "--candidates" not in run_argv and "--dataset" not in run_argv
        items_file = Path(run_argv[run_argv.index("--items") + 1])
        assert items_file.parent == Path(job.log_path).parent
        with Session(engine) as session:
            item_ids = sorted(session.exec(select(Item.id).join(Dataset).where(Dataset.name == DATASET)).all())
        assert len(item_ids) == 3
        log = run_worker(run_argv, tmp_path / "worker")
        assert len(server.chat_requests) == 3
    assert not (tmp_path / "worker" / "data").exists()  # the worker opened no store
    imported = set(re.findall(r"^import time: .*\| +([\w.]+)$", log, re.M))
    assert "reasonrank.synth" in imported and not {m for m in imported if m.split(".")[0] == "db"}  # nor db/
    assert SECRET not in log  # redacted before it left the worker

    # the app mirrors the log up to the first label event, then the same part again
    cut = log.index("\n", log.index('"event": "label"')) + 1
    mirror_log(log[:cut], job.log_path, job.metrics_path)
    assert synth_remote.store_label_events(engine, job) == 1
    mirror_log(log[:cut], job.log_path, job.metrics_path)
    assert synth_remote.store_label_events(engine, job) == 0
    assert len(stored_labels(engine)) == 1

    # the rest is mirrored, then the app dies before storing; restarted, it continues from its offset
    mirror_log(log, job.log_path, job.metrics_path)
    engine.dispose()
    restarted = get_engine(engine.url.render_as_string(hide_password=False))
    assert synth_remote.store_label_events(restarted, job) == 2
    assert synth_remote.store_label_events(restarted, job) == 0

    rows = stored_labels(restarted)
    assert sorted(item_id for item_id, _, _ in rows) == item_ids  # one label per item, none twice
    for _, label, status in rows:
        assert label.reasoning == "On the cluster. The key [redacted] leaked."
        assert label.model == "test-model" and label.source == "teacher" and status == "pending"
        assert len(label.ranking) == 20 and label.consistency is not None
    state = jobs.reported_state(job.metrics_path)
    assert state.status == "succeeded" and state.progress["done"] == state.progress["total"] == 3
    assert state.outputs["selected"] == 3 and state.outputs["labelled"] == 3

    # a duplicated event (and an offset file lost with it) stores nothing; a foreign item is refused
    events = [e for e in jobs.read_events(job.metrics_path)[0] if e["event"] == "label"]
    foreign = [{**events[0], "item": max(item_ids) + 1000}, {**events[0], "item": True}]
    foreign.append({**events[0], "fingerprint": "another teacher"})
    (Path(job.log_path).parent / synth_remote.OFFSET_FILE).unlink()
    with open(job.metrics_path, "a", encoding="utf-8") as out:
        out.writelines(json.dumps(e) + "\n" for e in (events[0], *foreign))
    assert synth_remote.store_label_events(restarted, job) == 0
    assert len(stored_labels(restarted)) == 3
    assert synth_remote.stored_counts(job) == {"stored": 0, "duplicates": 4, "refused": 3}
    assert "label event refused: item" in Path(job.log_path).read_text()
    restarted.dispose()


def test_items_are_a_remote_jobs_input_only(engine, monkeypatch, tmp_path):
    config = SynthConfig(items=str(tmp_path / "items.jsonl"), base_url="http://127.0.0.1:9/v1")
    with pytest.raises(InputError, match="--items is the file the app exports"):
        run_synth(config, engine)
    monkeypatch.setenv(REGISTER_BY_APP_ENV, "1")
    with pytest.raises(InputError, match="labels the items the app selected"):
        run_synth(SynthConfig(dataset=DATASET, base_url="http://127.0.0.1:9/v1"), engine)


def test_prepare_refuses_an_unknown_dataset_before_anything_is_submitted(engine):
    with pytest.raises(InputError, match="no dataset named"):
        synth_remote.prepare(engine, 1, ["synth", "--dataset", "absent"])
