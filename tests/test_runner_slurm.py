"""Jobs on a real SLURM cluster (munged, slurmctld and slurmd on 127.0.0.1 for the session, see
slurm_fixtures): a tiny SFT job launched with runner `slurm` through db.jobs (what the Train tab's
Start calls) reports its curves through its log and its model is registered where it lives; a
running job is found again by a restarted app and cancelled on the cluster; a job past its time
limit fails saying so; a failing command shows its error line; a job the cluster does not know, a
controller that does not answer, missing client commands and a work root in the app's data
directory end with a message, never stuck in "running". The worker runs in its job folder on the
work root and never touches the app's data directory."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from openai_server import Answer, OpenAIServer
from ray_fixtures import free_port
from runner_helpers import (
    app_store,
    files_under,
    follow_across_a_restart,
    record_sft_export,
    slurm_settings,
    train_argv,
    wait_job,
)
from slurm_fixtures import slurm_cluster, write_conf  # noqa: F401 (fixture)
from sqlmodel import Session, select

from db import jobs as db_jobs
from db.engine import get_engine, write_session
from db.models import Dataset, Item, Job, Label
from db.registry import get_reranker
from reasonrank import jobs
from reasonrank.runners import slurm as slurm_runner

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(600)]


@pytest.fixture
def app(tmp_path, monkeypatch, slurm_cluster):  # noqa: F811
    """An app's store and data directory, with the cluster's settings in its environment."""
    with app_store(tmp_path, monkeypatch, slurm_settings(slurm_cluster.conf, tmp_path)) as engine:
        yield engine


def _squeue(cluster, name: str, *flags: str) -> str:
    done = subprocess.run(
        ["squeue", "--noheader", f"--name={name}", "--format=%i|%T|%r", *flags],
        env=cluster.env,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def test_a_tiny_sft_job_on_slurm_reports_curves_and_registers_its_model(
    app,
    tiny_model_dir,
    dl19,
    tmp_path,
    slurm_cluster,  # noqa: F811
):
    export_id = record_sft_export(app, dl19, tmp_path, "slurm-sft")
    data = tmp_path / "data"
    before = files_under(data)
    argv = train_argv(tiny_model_dir, export_id, data / "runs" / "r1", steps=3)
    job_id = db_jobs.launch_job(app, "train", argv, {}, runner="slurm", lineage={"export_id": export_id})
    view = wait_job(app, job_id, lambda v: v.finished)
    assert view.status == "succeeded", (view.message, view.log_tail)
    assert [m["step"] for m in view.metrics] == [1, 2, 3] and all(isinstance(m["loss"], float) for m in view.metrics)
    assert view.progress["done"] == view.progress["total"] == 3
    runner = view.config["runner"]
    assert runner["name"] == "slurm" and runner["address"] == str(slurm_cluster.conf)
    assert runner["work_root"] == str(tmp_path / "cluster")
    assert "export:" not in runner["entrypoint"] and "--data inputs/" in runner["entrypoint"]
    assert runner["entrypoint"].startswith(f"{sys.executable} -m reasonrank train sft")
    assert view.argv == argv  # the job shows the command as given
    # the output folder the form put in the app's data dir lives under the output root (the work root)
    model_dir = tmp_path / "cluster" / "runs" / "r1" / "final"
    assert (model_dir / "model.safetensors").is_file()
    reranker = get_reranker(app, view.outputs["reranker_name"])
    assert reranker.model == str(model_dir) and reranker.job_id == job_id and reranker.source == "trained"
    assert reranker.lineage["runner"] == "slurm" and reranker.lineage["cluster"] == str(slurm_cluster.conf)
    # SLURM ran it in the job's folder on the work root and wrote its output there
    folder = tmp_path / "cluster" / runner["submission_id"]
    deadline = time.monotonic() + 60  # its `end` is written before the process exits
    while (row := _squeue(slurm_cluster, runner["submission_id"], "--states=all")).split("|")[1] in (
        "RUNNING",
        "COMPLETING",
    ) and time.monotonic() < deadline:
        time.sleep(0.2)
    slurm_id, state, _ = row.split("|")
    assert state == "COMPLETED"
    shown = subprocess.run(
        ["scontrol", "show", "job", "--oneliner", slurm_id],
        env=slurm_cluster.env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert f"WorkDir={folder} " in shown and f"StdOut={folder / slurm_runner.LOG_NAME} " in shown
    events, _ = jobs.read_events(db_jobs.job_dir(job_id) / "events.jsonl")
    start = next(e for e in events if e["event"] == "start")
    assert Path(start["cwd"]) == folder and not Path(start["cwd"]).resolve().is_relative_to(data.resolve())
    # the worker wrote nothing into the app's data dir but what the app mirrors
    assert files_under(data) - before == {
        f"jobs/{job_id}/{name}" for name in ("log.txt", "events.jsonl", "remote.json")
    }
    assert "@@reasonrank-event" not in (data / "jobs" / str(job_id) / "log.txt").read_text()
    assert "@@reasonrank-event" in (folder / slurm_runner.LOG_NAME).read_text()
    # a second refresh neither registers again nor changes the outcome
    assert db_jobs.refresh_job(app, job_id).outputs["reranker_id"] == reranker.id


def test_a_restarted_app_finds_a_running_slurm_job_and_cancels_it_on_the_cluster(
    app,
    tiny_model_dir,
    dl19,
    tmp_path,
    slurm_cluster,  # noqa: F811
):
    # the app restarts: a new engine, no in-memory state about the job or the cluster
    restarted, job_id, view = follow_across_a_restart(app, tiny_model_dir, dl19, tmp_path, "slurm")
    name = view.config["runner"]["submission_id"]
    assert _squeue(slurm_cluster, name).split("|")[1] == "RUNNING"
    view = db_jobs.cancel_job(restarted, job_id)
    assert view.status == "cancelled"
    assert _squeue(slurm_cluster, name) == ""  # no longer pending, running or completing
    assert _squeue(slurm_cluster, name, "--states=all").split("|")[1] == "CANCELLED"
    restarted.dispose()


def test_a_job_past_its_time_limit_fails_saying_so(app, tiny_model_dir, dl19, tmp_path, slurm_cluster):  # noqa: F811
    export_id = record_sft_export(app, dl19, tmp_path, "slurm-sft")
    argv = train_argv(tiny_model_dir, export_id, tmp_path / "cluster" / "limited", steps=2000)
    job_id = db_jobs.launch_job(app, "train", argv, {}, runner="slurm")
    view = wait_job(app, job_id, lambda v: v.finished or len(v.metrics) >= 1)
    assert view.status == "running", (view.message, view.log_tail)
    slurm_id = _squeue(slurm_cluster, view.config["runner"]["submission_id"]).split("|")[0]
    subprocess.run(["scontrol", "update", f"JobId={slurm_id}", "TimeLimit=0"], env=slurm_cluster.env, check=True)
    view = wait_job(app, job_id, lambda v: v.finished, timeout=180)
    assert view.status == "failed" and "(TimeLimit)" in view.message, view.message
    assert "DUE TO TIME LIMIT" in view.log_tail


def test_a_failing_command_on_slurm_shows_its_error_line(app, tmp_path):
    argv = ["eval", "--candidates", str(tmp_path / "nowhere.jsonl"), "--name", "x"]
    job_id = db_jobs.launch_job(app, "eval", argv, {}, runner="slurm")
    view = wait_job(app, job_id, lambda v: v.finished, timeout=120)
    assert view.status == "failed"
    assert "nowhere.jsonl" in view.message and "file not found" in view.message, view.message
    assert "error:" in view.log_tail


def test_a_job_the_cluster_does_not_know_ends_failed(app, tmp_path):
    job_id = db_jobs.launch_job(app, "eval", ["eval", "--candidates", str(tmp_path / "x.jsonl")], {}, runner="slurm")
    with write_session(app) as session:
        row = session.get(Job, job_id)
        row.config = {**row.config, "runner": {**row.config["runner"], "submission_id": "reasonrank-0-gone"}}
    view = db_jobs.refresh_job(app, job_id)
    assert view.status == "failed"
    assert "has no job reasonrank-0-gone any more" in view.message and "MinJobAge" in view.message


@pytest.fixture
def dead_conf(tmp_path, slurm_cluster) -> Path:  # noqa: F811
    """A slurm.conf naming a controller port nobody listens on (clients give up after ~1 s)."""
    folder = tmp_path / "dead"
    folder.mkdir()
    conf = write_conf(folder, free_port(), free_port(), message_timeout=2)
    auth = f"AuthInfo=socket={slurm_cluster.root / 'munge.socket'}"
    conf.write_text("\n".join(auth if line.startswith("AuthInfo=") else line for line in conf.read_text().splitlines()))
    return conf


def test_an_unreachable_controller_fails_the_submission_with_the_reason(app, monkeypatch, dead_conf):
    monkeypatch.setenv("SLURM_CONF", str(dead_conf))
    view = db_jobs.refresh_job(app, db_jobs.launch_job(app, "eval", ["eval", "--name", "x"], {}, runner="slurm"))
    assert view.status == "failed" and view.message.startswith(f"could not submit to the SLURM cluster of {dead_conf}")
    assert "Unable to contact slurm controller" in view.message


def test_a_running_job_whose_controller_goes_silent_ends_failed(app, monkeypatch, tmp_path, dead_conf):
    job_id = db_jobs.launch_job(app, "eval", ["eval", "--candidates", str(tmp_path / "x.jsonl")], {}, runner="slurm")
    with write_session(app) as session:  # as if submitted to a cluster that then went away
        row = session.get(Job, job_id)
        row.status = "running"
        row.config = {**row.config, "runner": {**row.config["runner"], "address": str(dead_conf)}}
    monkeypatch.setenv(slurm_runner.LOST_AFTER_ENV, "1")
    view = db_jobs.refresh_job(app, job_id)
    assert view.status == "running" and "Unable to contact slurm controller" in view.message
    assert "retrying" in view.message
    time.sleep(1.5)
    view = db_jobs.refresh_job(app, job_id)
    assert view.status == "failed" and view.message.startswith(f"lost contact with the SLURM cluster of {dead_conf}")


def test_cancel_with_the_controller_gone_says_the_job_may_still_run(app, tmp_path, dead_conf):
    job_id = db_jobs.launch_job(app, "eval", ["eval", "--candidates", str(tmp_path / "x.jsonl")], {}, runner="slurm")
    with write_session(app) as session:
        row = session.get(Job, job_id)
        row.status = "running"
        row.config = {**row.config, "runner": {**row.config["runner"], "address": str(dead_conf)}}
    view = db_jobs.cancel_job(app, job_id)
    assert view.status == "cancelled" and "could not stop job" in view.message
    assert view.message.endswith("it may still run there")


def test_missing_client_commands_or_settings_are_one_line_messages(app, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    view = db_jobs.refresh_job(app, db_jobs.launch_job(app, "eval", ["eval"], {}, runner="slurm"))
    assert view.status == "failed" and "sbatch is not on PATH" in view.message and "\n" not in view.message
    monkeypatch.delenv(slurm_runner.WORK_ROOT_ENV)
    view = db_jobs.refresh_job(app, db_jobs.launch_job(app, "eval", ["eval"], {}, runner="slurm"))
    assert view.status == "failed" and slurm_runner.WORK_ROOT_ENV in view.message


def test_a_work_root_in_the_app_data_dir_is_refused(app, monkeypatch, tmp_path):
    monkeypatch.setenv(slurm_runner.WORK_ROOT_ENV, str(tmp_path / "data" / "slurm"))
    view = db_jobs.refresh_job(app, db_jobs.launch_job(app, "eval", ["eval"], {}, runner="slurm"))
    assert view.status == "failed" and "inside the app's data directory" in view.message
    assert not (tmp_path / "data" / "slurm").exists()


def test_submit_from_the_shell_runs_a_command_on_slurm_and_follows_it(slurm_cluster, test_data, tmp_path):  # noqa: F811
    env = {
        **slurm_cluster.env,
        "REASONRANK_DATA": str(tmp_path / "data"),
        "REASONRANK_DB": f"sqlite:///{tmp_path / 'shell.db'}",
        slurm_runner.WORK_ROOT_ENV: str(tmp_path / "cluster"),
        slurm_runner.PYTHON_ENV: sys.executable,
    }
    dl19 = test_data / "trec-dl19"
    command = f"eval --candidates {dl19 / 'bm25_top100_with_text.json'} --qrels {dl19 / 'qrels.txt'} --name dl19"
    done = subprocess.run(
        [sys.executable, "-m", "reasonrank", "submit", "--runner", "slurm", "--cmd", command],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("job 1 on slurm") and "job 1 succeeded" in done.stdout
    assert "dl19" in done.stdout and "first-stage" in done.stdout  # the metrics table, followed from the cluster
    assert "@@reasonrank-event" not in done.stdout


def _synth_labels(engine, dataset: str) -> list[tuple[int, str | None, str]]:
    """(item id, reasoning, item status) of every label of the dataset's items in the app's store."""
    with Session(engine) as session:
        return list(
            session.exec(
                select(Item.id, Label.reasoning, Item.status)
                .join(Label, Label.item_id == Item.id)
                .join(Dataset, Dataset.id == Item.dataset_id)
                .where(Dataset.name == dataset)
            ).all()
        )


def test_a_synth_job_on_slurm_labels_into_the_apps_store_across_a_restart(app, test_data, tmp_path):
    data = tmp_path / "data"
    before = files_under(data)
    candidates = test_data / "noveleval" / "candidates_with_text.json"
    answer = Answer(content="[2] > [1]", reasoning_content="On SLURM.")
    with OpenAIServer(lambda messages, request: answer, latency_s=1.5) as server:
        argv = ["synth", "--dataset", "slurm-synth", "--candidates", str(candidates), "--limit", "4"]
        argv += ["--base-url", server.base_url, "--model", "test-model", "--max-in-flight", "1", "--timeout", "30"]
        job_id = db_jobs.launch_job(app, "synth", argv, {}, runner="slurm")
        view = wait_job(app, job_id, lambda v: v.finished or _synth_labels(app, "slurm-synth"))
        assert view.status == "running", (view.message, view.log_tail)
        # the app restarts mid-job: a new engine, no folded job state; it continues from its offsets
        url = app.url
        app.dispose()
        jobs._FOLDED.clear()
        restarted = get_engine(url)
        view = wait_job(restarted, job_id, lambda v: v.finished)
        assert len(server.chat_requests) == 4
    assert view.status == "succeeded", (view.message, view.log_tail)
    labels = _synth_labels(restarted, "slurm-synth")
    assert len({item for item, _, _ in labels}) == len(labels) == 4  # each item once, none twice
    assert {(reasoning, status) for _, reasoning, status in labels} == {("On SLURM.", "pending")}
    assert view.outputs["stored_by_app"] == {"stored": 4, "duplicates": 0, "refused": 0}
    entrypoint = view.config["runner"]["entrypoint"]
    assert "--items inputs/" in entrypoint and "--candidates" not in entrypoint and "--dataset" not in entrypoint
    # the worker wrote nothing into the app's data dir; the app wrote the items it sent and its offsets
    names = ("log.txt", "events.jsonl", "remote.json", "synth-items.jsonl", "synth-selection.json", "synth-labels.json")
    assert files_under(data) - before == {f"jobs/{job_id}/{name}" for name in names}
    restarted.dispose()
