"""Job rows whose command runs on a remote runner (Ray): submit, follow, cancel, register outputs.

db.jobs keeps one job model for every runner; this module is what differs for a remote one. The
row's `config["runner"]` holds the runner's name, the cluster address and the submission id (no
credentials: those come from the environment, see reasonrank.runners.ray.RaySettings). The job's
log and events are mirrored from the cluster into the same `data/jobs/<id>/` files a local job
writes (reasonrank.runners.mirror_log), so everything downstream of `jobs.reported_state` is shared.

Inputs: a file named by an input flag (`--data`, `--candidates` …; `export:ID` resolved here) is
uploaded with the job and the command reads it from `inputs/`. Outputs: an output folder inside the
app's data directory (the form's default) is moved under the cluster's output root; any other path
is taken as a path on the cluster. A trained model is registered here, by the app, with where it
lives, once the job's `end` event arrives.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from sqlalchemy.engine import Engine

from db.engine import data_dir, write_session
from db.models import Job
from reasonrank import jobs
from reasonrank.io import InputError
from reasonrank.runners import RUNNERS, RunnerError, mark_reachable, mirror_log
from reasonrank.runners import ray as ray_runner

#: flags whose value is a file the command reads (uploaded with a remote job)
INPUT_FLAGS = ("--data", "--candidates", "--qrels", "--answers", "--run", "--corpus", "--queries")
#: flags whose value is a folder the command writes
OUTPUT_FLAGS = ("--output-dir", "--out")
EXPORT_PREFIX = "export:"
CANCEL_WAIT_S = 20.0
_REGISTER_LOCK = threading.Lock()


def is_remote(job: Job) -> bool:
    info = (job.config or {}).get("runner")
    return isinstance(info, dict) and info.get("name", "local") != "local"


def check_runner(runner: str) -> None:
    if runner not in RUNNERS:
        raise ValueError(f"unknown runner {runner!r}; expected one of {', '.join(RUNNERS)}")


def _settings(job: Job | None = None) -> ray_runner.RaySettings:
    """This app's settings for the cluster; for a recorded job, the address it was submitted to."""
    stored = (job.config.get("runner") or {}).get("address") if job is not None else None
    try:
        settings = ray_runner.RaySettings.from_env()
    except RunnerError:
        if stored is None:
            raise
        return ray_runner.RaySettings(address=stored)
    return dataclasses.replace(settings, address=stored) if stored else settings


def remote_argv(engine: Engine, argv: list[str], output_root: str) -> tuple[list[str], dict[str, str]]:
    """The argv a remote worker runs, and the files to upload with it (name in inputs/ → local path)."""
    from db.exports import get_export

    app_data = data_dir().resolve()
    out, inputs = list(argv), {}
    for index in range(len(out) - 1):
        flag, value = out[index], out[index + 1]
        if flag in INPUT_FLAGS:
            if value.startswith(EXPORT_PREFIX) and value[len(EXPORT_PREFIX) :].isdigit():
                value = get_export(engine, int(value[len(EXPORT_PREFIX) :])).path
            if Path(value).is_file():
                name = f"{len(inputs)}-{Path(value).name}"
                inputs[name] = value
                out[index + 1] = f"{ray_runner.INPUTS_DIR}/{name}"
            elif value.startswith(EXPORT_PREFIX):
                raise InputError(f"{flag} {value}: not a recorded export")
        elif flag in OUTPUT_FLAGS:
            path = Path(value).resolve()
            if path == app_data or app_data in path.parents:
                out[index + 1] = str(Path(output_root) / path.relative_to(app_data))
    return out, inputs


def submit(engine: Engine, job_id: int, runner: str, argv: list[str], env: dict[str, str] | None) -> int:
    """Submit a recorded (queued) job to its runner; a failure is recorded on the job, not raised."""
    folder = Path(data_dir()) / "jobs" / str(job_id)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        settings = _settings()
        run_argv, inputs = remote_argv(engine, argv, settings.output_root)
        sid = ray_runner.submission_id(job_id)
        info = {"name": runner, "address": settings.address, "submission_id": sid}
        info["entrypoint"] = ray_runner.entrypoint(settings, run_argv)
        with write_session(engine) as session:  # recorded before submitting: a restart finds it either way
            row = session.get(Job, job_id)
            row.config = {**row.config, "runner": info}
        ray_runner.submit(settings, sid, job_id, run_argv, inputs, env)
    except (RunnerError, InputError) as exc:
        with write_session(engine) as session:
            row = session.get(Job, job_id)
            row.status, row.message, row.finished_at = "failed", str(exc), _now()
        return job_id
    with write_session(engine) as session:
        row = session.get(Job, job_id)
        row.status, row.started_at = "running", _now()
    return job_id


def _now():
    from db.engine import utcnow

    return utcnow()


def _sync(job: Job, settings: ray_runner.RaySettings) -> ray_runner.RemoteStatus:
    """Ask the cluster for the job's status, mirror its log, record whether it answered."""
    sid = job.config["runner"]["submission_id"]
    remote = ray_runner.status(settings, sid)
    text = ray_runner.logs(settings, sid) if remote.state not in ("unreachable", "lost") else None
    if text is not None:
        mirror_log(text, job.log_path, job.metrics_path)
    remote.unreachable_since = mark_reachable(Path(job.log_path).parent, remote.state != "unreachable")
    return remote


def remote_state(engine: Engine, job: Job) -> jobs.JobState:
    """The job's state from the events mirrored so far and the cluster's own status; a job the
    cluster no longer has, or that ended without its `end` event, or a cluster silent for longer
    than REASONRANK_RAY_LOST_AFTER seconds, ends the job failed with a message that says which."""
    settings = _settings(job)
    remote = _sync(job, settings)
    state = jobs.reported_state(job.metrics_path)
    if state.finished:
        if state.status == "succeeded" and job.kind == "train" and job.status not in jobs.FINISHED:
            state.outputs = register_trained_model(engine, job, state.outputs, settings)
        return state
    where = f"the Ray cluster at {settings.address}"
    sid = job.config["runner"]["submission_id"]
    if remote.state == "pending":
        state.status, state.message = "queued", f"waiting for {where} to start {sid}"
    elif remote.state == "running":
        state.status = "running"
    elif remote.state in ("succeeded", "failed", "stopped"):
        last = jobs.tail(job.log_path, lines=8)
        state.status = "cancelled" if remote.state == "stopped" else "failed"
        state.message = (
            f"the Ray job {sid} ended ({remote.state}{': ' + remote.message if remote.message else ''}) "
            "without reporting a result" + (f"; last log lines:\n{last}" if last else "")
        )
    elif remote.state == "lost":
        state.status = "failed"
        state.message = f"{remote.message} any more (its head restarted, or the job was deleted there)"
    else:  # unreachable
        silent = time.time() - (remote.unreachable_since or time.time())
        if silent > settings.lost_after:
            state.status = "failed"
            state.message = (
                f"lost contact with {where} for {silent:.0f} s ({remote.message}); the job may still run there as {sid}"
            )
        else:
            state.status, state.message = "running", f"{remote.message} (for {silent:.0f} s; retrying)"
    return state


def cancel(engine: Engine, job: Job) -> None:
    """Stop the job on the cluster and wait (bounded) for it to end, mirroring its last lines. A
    cluster that cannot be reached ends the job here, cancelled, saying it may still run there."""
    settings = _settings(job)
    try:
        ray_runner.stop(settings, job.config["runner"]["submission_id"])
    except RunnerError as exc:
        with write_session(engine) as session:
            row = session.get(Job, job.id)
            if row.status not in jobs.FINISHED:
                row.status, row.finished_at = "cancelled", _now()
                row.message = f"cancelled here, but {exc}; it may still run there"
        return
    deadline = time.monotonic() + CANCEL_WAIT_S
    while time.monotonic() < deadline:
        remote = _sync(job, settings)
        if remote.state not in ("pending", "running"):
            return
        time.sleep(0.2)


def register_trained_model(
    engine: Engine, job: Job, outputs: dict[str, Any], settings: ray_runner.RaySettings
) -> dict[str, Any]:
    """Register the model a remote training job reported, as a path on the cluster (once per job)."""
    from db.registry import list_rerankers
    from reasonrank.cli import parse_command
    from reasonrank.cli.train import register_model

    config = parse_command(["train", *job.config.get("argv", [])[1:]])
    if config.no_register or "model_dir" not in outputs:
        return outputs
    with _REGISTER_LOCK:
        reranker = next((r for r in list_rerankers(engine) if r.job_id == job.id and r.source == "trained"), None)
        if reranker is None:
            result = SimpleNamespace(**{k: outputs.get(k) for k in ("stage", "output_dir", "model_dir", "base_model")})
            result.adapter = bool(outputs.get("adapter"))
            export_id = (job.lineage or {}).get("export_id")
            where = {"runner": job.config["runner"]["name"], "cluster": settings.address}
            reranker = register_model(engine, result, config, export_id, job.id, where=where)
    return {**outputs, "reranker_id": reranker.id, "reranker_name": reranker.name, "lineage": reranker.lineage}
