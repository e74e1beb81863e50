"""Jobs: real `reasonrank` subprocesses started, watched, cancelled and found again from a Job row."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest
from openai_server import Fault, OpenAIServer

from db import jobs as db_jobs
from db.engine import get_engine, init_db
from reasonrank import jobs


@pytest.fixture
def engine(tmp_path, monkeypatch):
    monkeypatch.setenv("REASONRANK_DATA", str(tmp_path / "data"))
    built = get_engine(f"sqlite:///{tmp_path / 'jobs.db'}")
    init_db(built)
    yield built
    built.dispose()


def _wait(engine, job_id: int, until, timeout: float = 60.0) -> db_jobs.JobView:
    deadline = time.monotonic() + timeout
    while True:
        view = db_jobs.refresh_job(engine, job_id)
        if until(view) or time.monotonic() > deadline:
            return view
        time.sleep(0.2)


def _candidates(tmp_path, n_queries: int = 2):
    path = tmp_path / "lists.jsonl"
    with path.open("w") as handle:
        for q in range(n_queries):
            handle.write(
                json.dumps(
                    {
                        "qid": f"q{q}",
                        "query": "what is it",
                        "candidates": [{"docid": f"d{i}", "text": f"passage {i}"} for i in range(3)],
                    }
                )
                + "\n"
            )
    return path


def _rerank_argv(tmp_path, server: OpenAIServer, timeout_s: float = 60) -> list[str]:
    return [
        "rerank",
        "--candidates",
        str(_candidates(tmp_path)),
        "--backend",
        "openai",
        "--model",
        "test-model",
        "--base-url",
        server.base_url,
        "--timeout",
        str(timeout_s),
        "--max-retries",
        "0",
        "--out",
        str(tmp_path / "out"),
    ]


def test_succeeded_job_reports_progress_and_end(engine, tmp_path):
    with OpenAIServer(
        responder=lambda messages, request: "<think>ok</think><answer>[2] > [1] > [3]</answer>"
    ) as server:
        job_id = db_jobs.launch_job(engine, "eval", _rerank_argv(tmp_path, server), {"form": "rerank"})
        view = _wait(engine, job_id, lambda v: v.finished)
    assert view.status == "succeeded", view.log_tail
    assert view.message == "done"
    assert view.progress["done"] == view.progress["total"] == 1  # one window position for 3 passages
    assert view.argv[0] == "rerank"
    assert (tmp_path / "out" / "run.trec").read_text().split()[2] == "d1"  # [2] ranked first


def test_failed_job_keeps_the_error_line(engine, tmp_path):
    argv = ["eval", "--candidates", str(tmp_path / "absent.jsonl")]
    view = _wait(engine, db_jobs.launch_job(engine, "eval", argv, {}), lambda v: v.finished)
    assert view.status == "failed"
    assert "absent.jsonl" in view.message and "file not found" in view.message
    assert "error:" in view.log_tail


def test_cancel_stops_the_process_group_and_records_cancelled(engine, tmp_path):
    with OpenAIServer(responder=lambda messages, request: Fault(hang_s=30)) as server:
        job_id = db_jobs.launch_job(engine, "eval", _rerank_argv(tmp_path, server), {})
        _wait(engine, job_id, lambda v: len(server.chat_requests) > 0, timeout=30)
        pid = jobs_pid(engine, job_id)
        view = db_jobs.cancel_job(engine, job_id)
    assert view.status == "cancelled"
    assert not jobs.is_alive(pid)
    events, _ = jobs.read_events(tmp_path / "data" / "jobs" / str(job_id) / "events.jsonl")
    assert events[-1]["event"] == "end" and events[-1]["status"] == "cancelled"  # SIGTERM let it say so


def jobs_pid(engine, job_id: int) -> int:
    from db.engine import read_session
    from db.models import Job

    with read_session(engine) as session:
        return session.get(Job, job_id).pid


def test_killed_job_is_failed_with_its_last_log_lines(engine, tmp_path):
    with OpenAIServer(responder=lambda messages, request: Fault(hang_s=30)) as server:
        job_id = db_jobs.launch_job(engine, "eval", _rerank_argv(tmp_path, server), {})
        _wait(engine, job_id, lambda v: len(server.chat_requests) > 0, timeout=30)
        os.kill(jobs_pid(engine, job_id), signal.SIGKILL)
        view = _wait(engine, job_id, lambda v: v.finished)
    assert view.status == "failed"
    assert "ended without reporting a result" in view.message


def test_an_app_restart_finds_a_running_job_by_pid(engine, tmp_path):
    """A new app process has no Popen for the job: liveness comes from the process table and
    the outcome from the events file."""
    answer = "<think>ok</think><answer>[1] > [2] > [3]</answer>"
    with OpenAIServer(responder=lambda messages, request: answer) as server:
        server.fault_at[0] = Fault(latency_s=3)
        job_id = db_jobs.launch_job(engine, "eval", _rerank_argv(tmp_path, server), {})
        child = jobs._CHILDREN.pop(jobs_pid(engine, job_id))  # forget it, as a restarted app would
        try:
            assert db_jobs.refresh_job(engine, job_id).status == "running"
            child.wait(timeout=60)  # reap it (init does this for the orphan of a real restart)
            view = _wait(engine, job_id, lambda v: v.finished)
        finally:
            if child.poll() is None:
                child.kill()
    assert view.status == "succeeded", view.log_tail


def test_read_events_skips_a_half_written_line(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text('{"event": "progress", "done": 1, "total": 2, "time": 1}\n{"event": "prog')
    events, offset = jobs.read_events(path)
    assert [e["done"] for e in events] == [1]
    with path.open("a") as handle:
        handle.write('ress", "done": 2, "total": 2, "time": 2}\n')
    more, _ = jobs.read_events(path, offset)
    assert [e["done"] for e in more] == [2]


def test_tail_keeps_the_last_state_of_a_progress_bar(tmp_path):
    path = tmp_path / "log.txt"
    path.write_text("start\nbar 10%\rbar 50%\rbar 100%\nend\n")
    assert jobs.tail(path) == "start\nbar 100%\nend"


def test_a_job_that_cannot_start_is_recorded_failed_not_left_queued(engine, tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "jobs").write_text("a file where the jobs folder should be")
    with pytest.raises(OSError):
        db_jobs.launch_job(engine, "eval", ["eval", "--help"], {})
    [view] = db_jobs.list_jobs(engine)
    assert view.status == "failed" and view.message.startswith("could not start the command:")


def _zombies(pids: set[int]) -> list[int]:
    """Those of `pids` that are zombies (ended, never reaped) in the process table."""
    found = []
    for pid in pids:
        try:
            stat = open(f"/proc/{pid}/stat").read()
        except OSError:
            continue  # reaped and gone
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            found.append(pid)
    return found


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="reads the process table from /proc")
def test_no_job_is_left_a_zombie_even_when_nobody_watches_it(engine, tmp_path):
    """Jobs that end while no one polls them (the app's only view of a job) are reaped anyway."""
    argv = ["eval", "--candidates", str(tmp_path / "absent.jsonl")]
    job_ids = [db_jobs.launch_job(engine, "eval", argv, {}) for _ in range(4)]
    pids = {jobs_pid(engine, job_id) for job_id in job_ids}
    deadline = time.monotonic() + 60
    while any(jobs._CHILDREN[pid].returncode is None for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(0.5)
    assert _zombies(pids) == []
    assert {db_jobs.refresh_job(engine, job_id).status for job_id in job_ids} == {"failed"}


@pytest.mark.skipif(not os.path.exists("/proc/self/environ"), reason="the pid-reuse check reads /proc")
def test_cancel_never_signals_a_process_that_reused_the_jobs_pid(engine, tmp_path):
    """A stale job row whose pid now belongs to an unrelated process (a session leader too, so
    the session check alone would not tell them apart): cancel leaves that process alone, and
    the job reads as ended, not as running forever."""
    import subprocess

    from db.engine import write_session
    from db.models import Job

    stranger = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        with write_session(engine) as session:
            job = Job(kind="eval", config={"argv": ["eval"]}, status="running", pid=stranger.pid)
            job.metrics_path = str(tmp_path / "stale" / "events.jsonl")
            job.log_path = str(tmp_path / "stale" / "log.txt")
            session.add(job)
            session.flush()
            job_id = job.id
        assert not jobs.is_job_process(stranger.pid, tmp_path / "stale" / "events.jsonl")
        assert db_jobs.refresh_job(engine, job_id).status == "failed"
        with write_session(engine) as session:
            session.get(Job, job_id).status = "running"  # as if the app had not noticed yet
        view = db_jobs.cancel_job(engine, job_id)
        assert view.status == "cancelled"
        time.sleep(0.3)
        assert stranger.poll() is None, "cancel killed an unrelated process"
    finally:
        stranger.kill()
        stranger.wait()


def test_cancel_signals_the_job_it_started(engine, tmp_path):
    """The identity check accepts the real job (started by db_jobs.launch_job)."""
    with OpenAIServer(responder=lambda messages, request: Fault(hang_s=30)) as server:
        job_id = db_jobs.launch_job(engine, "eval", _rerank_argv(tmp_path, server), {})
        _wait(engine, job_id, lambda v: len(server.chat_requests) > 0, timeout=30)
        pid = jobs_pid(engine, job_id)
        events = tmp_path / "data" / "jobs" / str(job_id) / "events.jsonl"
        assert jobs.is_job_process(pid, events) and not jobs.is_job_process(pid, tmp_path / "other.jsonl")
        assert jobs.cancel(pid, events, grace_seconds=5)
    assert not jobs.is_alive(pid)


def test_eta_waits_for_a_rate_to_extrapolate(tmp_path):
    """A first progress report that is also the first event has no elapsed time behind it: no
    "ETA 0:00" then; from the next report on, the average rate so far."""
    events = tmp_path / "events.jsonl"
    events.write_text(json.dumps({"time": 100.0, "event": "progress", "done": 8, "total": 21}) + "\n")
    assert jobs.reported_state(events).eta_seconds() is None
    with events.open("a") as handle:
        handle.write(json.dumps({"time": 110.0, "event": "progress", "done": 16, "total": 21}) + "\n")
    assert jobs.reported_state(events).eta_seconds() == pytest.approx(10 / 16 * 5)
