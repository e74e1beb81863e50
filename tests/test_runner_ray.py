"""Jobs on a real Ray cluster (one head on 127.0.0.1 for the session, see ray_fixtures): a tiny SFT
job submitted with runner `ray` reports its curves through its log and its model is registered
where it lives; a running job is found again by a restarted app and cancelled on the cluster; a
failing command shows its error line; an unreachable cluster, a wrong address and a lost job end
with a message, never stuck in "running". The worker runs in its own working directory and never
touches the app's data directory."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from ray_fixtures import free_port, ray_cluster  # noqa: F401 (fixture)
from runner_helpers import (
    app_store,
    files_under,
    follow_across_a_restart,
    ray_settings,
    record_sft_export,
    train_argv,
    wait_job,
)

from db import jobs as db_jobs
from db.engine import write_session
from db.models import Job
from db.registry import get_reranker
from reasonrank import jobs
from reasonrank.runners import ray as ray_runner

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(600)]


@pytest.fixture
def app(tmp_path, monkeypatch, ray_cluster):  # noqa: F811
    """An app's store and data directory, with the cluster's address in its settings (env)."""
    with app_store(tmp_path, monkeypatch, ray_settings(ray_cluster.address, tmp_path)) as engine:
        yield engine


def _start_event(job_id: int) -> dict:
    events, _ = jobs.read_events(db_jobs.job_dir(job_id) / "events.jsonl")
    return next(e for e in events if e["event"] == "start")


def test_a_tiny_sft_job_on_ray_reports_curves_and_registers_its_model(app, tiny_model_dir, dl19, tmp_path):
    export_id = record_sft_export(app, dl19, tmp_path, "ray-sft")
    data = tmp_path / "data"
    before = files_under(data)
    argv = train_argv(tiny_model_dir, export_id, data / "runs" / "r1", steps=3)
    job_id = db_jobs.launch_job(app, "train", argv, {}, runner="ray", lineage={"export_id": export_id})
    view = wait_job(app, job_id, lambda v: v.finished)
    assert view.status == "succeeded", (view.message, view.log_tail)
    assert [m["step"] for m in view.metrics] == [1, 2, 3] and all(isinstance(m["loss"], float) for m in view.metrics)
    assert view.progress["done"] == view.progress["total"] == 3
    runner = view.config["runner"]
    assert runner["name"] == "ray" and runner["address"] == ray_runner.RaySettings.from_env().address
    assert "export:" not in runner["entrypoint"] and "--data inputs/" in runner["entrypoint"]
    assert view.argv == argv  # the job shows the command as given
    # the output folder the form put in the app's data dir lives under the cluster's output root
    model_dir = tmp_path / "cluster" / "runs" / "r1" / "final"
    assert (model_dir / "model.safetensors").is_file()
    reranker = get_reranker(app, view.outputs["reranker_name"])
    assert reranker.model == str(model_dir) and reranker.job_id == job_id and reranker.source == "trained"
    assert reranker.lineage["runner"] == "ray" and reranker.lineage["cluster"] == runner["address"]
    assert reranker.lineage["export_id"] == export_id
    # the worker ran elsewhere and wrote nothing into the app's data dir but what the app mirrors
    start = _start_event(job_id)
    assert not Path(start["cwd"]).resolve().is_relative_to(data.resolve())
    assert files_under(data) - before == {
        f"jobs/{job_id}/{name}" for name in ("log.txt", "events.jsonl", "remote.json")
    }
    assert "@@reasonrank-event" not in (data / "jobs" / str(job_id) / "log.txt").read_text()
    # a second refresh neither registers again nor changes the outcome
    assert db_jobs.refresh_job(app, job_id).outputs["reranker_id"] == reranker.id


def test_a_restarted_app_finds_a_running_ray_job_and_cancels_it_on_the_cluster(
    app,
    tiny_model_dir,
    dl19,
    tmp_path,
    ray_cluster,  # noqa: F811
):
    # the app restarts: a new engine, no in-memory state about the job or the cluster
    restarted, job_id, view = follow_across_a_restart(
        app, tiny_model_dir, dl19, tmp_path, "ray", forget=ray_runner._CLIENTS.clear
    )
    view = db_jobs.cancel_job(restarted, job_id)
    assert view.status == "cancelled"
    from ray.job_submission import JobSubmissionClient

    info = JobSubmissionClient(ray_cluster.address).get_job_info(view.config["runner"]["submission_id"])
    assert str(info.status.value) == "STOPPED"
    restarted.dispose()


def test_a_failing_command_on_ray_shows_its_error_line(app, tmp_path):
    argv = ["eval", "--candidates", str(tmp_path / "nowhere.jsonl"), "--name", "x"]
    job_id = db_jobs.launch_job(app, "eval", argv, {}, runner="ray")
    view = wait_job(app, job_id, lambda v: v.finished, timeout=120)
    assert view.status == "failed"
    assert "nowhere.jsonl" in view.message and "file not found" in view.message, view.message
    assert "error:" in view.log_tail


def test_wrong_address_fails_the_job_at_once_with_the_reason(app, monkeypatch):
    wrong = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv(ray_runner.ADDRESS_ENV, wrong)
    job_id = db_jobs.launch_job(app, "eval", ["eval", "--name", "x"], {}, runner="ray")
    view = db_jobs.refresh_job(app, job_id)
    assert view.status == "failed" and f"cannot reach the Ray cluster at {wrong}" in view.message


def test_no_address_configured_is_a_clear_message(app, monkeypatch):
    monkeypatch.delenv(ray_runner.ADDRESS_ENV)
    view = db_jobs.refresh_job(app, db_jobs.launch_job(app, "eval", ["eval"], {}, runner="ray"))
    assert view.status == "failed" and ray_runner.ADDRESS_ENV in view.message


def test_a_job_the_cluster_lost_or_a_silent_cluster_ends_failed(app, monkeypatch, tmp_path):
    argv = ["eval", "--candidates", str(tmp_path / "nowhere.jsonl"), "--name", "x"]
    lost = db_jobs.launch_job(app, "eval", argv, {}, runner="ray")
    silent = db_jobs.launch_job(app, "eval", argv, {}, runner="ray")
    with write_session(app) as session:  # the head forgot one job; the other's cluster went away
        row = session.get(Job, lost)
        row.config = {**row.config, "runner": {**row.config["runner"], "submission_id": "reasonrank-0-gone"}}
        row = session.get(Job, silent)
        row.config = {**row.config, "runner": {**row.config["runner"], "address": f"http://127.0.0.1:{free_port()}"}}
    view = db_jobs.refresh_job(app, lost)
    assert view.status == "failed" and "has no job reasonrank-0-gone any more" in view.message
    monkeypatch.setenv(ray_runner.LOST_AFTER_ENV, "1")
    view = db_jobs.refresh_job(app, silent)
    assert view.status == "running" and "cannot reach the Ray cluster" in view.message and "retrying" in view.message
    time.sleep(1.5)
    view = db_jobs.refresh_job(app, silent)
    assert view.status == "failed" and view.message.startswith("lost contact with the Ray cluster")


def test_cancel_with_the_cluster_gone_says_the_job_may_still_run(app, tmp_path):
    job_id = db_jobs.launch_job(app, "eval", ["eval", "--candidates", str(tmp_path / "x.jsonl")], {}, runner="ray")
    with write_session(app) as session:
        row = session.get(Job, job_id)
        row.status = "running"  # as if still running when the cluster went away
        row.config = {**row.config, "runner": {**row.config["runner"], "address": f"http://127.0.0.1:{free_port()}"}}
    view = db_jobs.cancel_job(app, job_id)
    assert view.status == "cancelled" and "cannot reach the Ray cluster" in view.message
    assert view.message.endswith("it may still run there")


def test_submit_from_the_shell_runs_a_command_on_ray_and_follows_it(ray_cluster, test_data, tmp_path):  # noqa: F811
    import os
    import subprocess
    import sys

    env = {
        **os.environ,
        "REASONRANK_DATA": str(tmp_path / "data"),
        "REASONRANK_DB": f"sqlite:///{tmp_path / 'shell.db'}",
        ray_runner.ADDRESS_ENV: ray_cluster.address,
    }
    dl19 = test_data / "trec-dl19"
    command = f"eval --candidates {dl19 / 'bm25_top100_with_text.json'} --qrels {dl19 / 'qrels.txt'} --name dl19"
    done = subprocess.run(
        [sys.executable, "-m", "reasonrank", "submit", "--runner", "ray", "--cmd", command],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("job 1 on ray") and "job 1 succeeded" in done.stdout
    assert "dl19" in done.stdout and "first-stage" in done.stdout  # the metrics table, followed from the cluster
    assert "@@reasonrank-event" not in done.stdout
    failed = subprocess.run(
        [
            sys.executable,
            "-m",
            "reasonrank",
            "submit",
            "--runner",
            "ray",
            "--cmd",
            "eval --candidates nowhere.jsonl",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert failed.returncode == 1 and "job 2 failed: nowhere.jsonl: file not found" in failed.stdout
