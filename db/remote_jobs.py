"""Job rows whose command runs on a remote runner (Ray, SLURM): submit, follow, cancel, register
outputs.

db.jobs keeps one job model for every runner; this module is what differs for a remote one. The
row's `config["runner"]` holds the runner's name, the cluster address, the submission id and (SLURM)
the work root (no credentials: those come from the environment, see RaySettings and
SlurmSettings in reasonrank.runners). Both remote runners offer the same functions (submit,
status, logs, stop; see _RUNNERS), so the following below is written once. The job's
log and events are mirrored from the cluster into the same `data/jobs/<id>/` files a local job
writes (reasonrank.runners.mirror_log), so everything downstream of `jobs.reported_state` is shared.

Inputs: a file named by an input flag (`--data`, `--candidates` …; `export:ID` resolved here) is
uploaded with the job and the command reads it from `inputs/`. Outputs: an output folder inside the
app's data directory (the form's default) is moved under the cluster's output root; any other path
is taken as a path on the cluster. A trained model is registered here, by the app, with where it
lives, once the job's `end` event arrives. A synth job's items are selected here and travel as an
`--items` file, and its labels come back as `label` events stored here as they are mirrored
(db.synth_remote).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from sqlalchemy.engine import Engine

from db import synth_remote
from db.engine import data_dir, write_session
from db.models import Job
from reasonrank import jobs
from reasonrank.io import InputError
from reasonrank.launch import LAUNCH_FLAGS
from reasonrank.runners import INPUTS_DIR, RUNNERS, RemoteStatus, RunnerError, mark_reachable, mirror_log
from reasonrank.runners import ray as ray_runner
from reasonrank.runners import slurm as slurm_runner

#: flags whose value is a file the command reads (uploaded with a remote job)
INPUT_FLAGS = ("--data", "--candidates", "--qrels", "--answers", "--run", "--corpus", "--queries", "--items")
#: flags whose value is a folder the command writes
OUTPUT_FLAGS = ("--output-dir", "--out")
EXPORT_PREFIX = "export:"
CANCEL_WAIT_S = 20.0
_REGISTER_LOCK = threading.Lock()
#: runner name → (its module, its settings class, the settings a recorded job keeps)
_RUNNERS: dict[str, tuple[Any, Any, tuple[str, ...]]] = {
    "ray": (ray_runner, ray_runner.RaySettings, ray_runner.STORED),
    "slurm": (slurm_runner, slurm_runner.SlurmSettings, slurm_runner.STORED),
}


def is_remote(job: Job) -> bool:
    info = (job.config or {}).get("runner")
    return isinstance(info, dict) and info.get("name", "local") != "local"


def check_runner(runner: str) -> None:
    if runner not in RUNNERS:
        raise ValueError(f"unknown runner {runner!r}; expected one of {', '.join(RUNNERS)}")


def check_launch(kind: str, argv: list[str], runner: str) -> None:
    """Refuse, before a job is recorded, a multi-node training command the runner cannot start
    (reasonrank.cli.train.check_launch): every way to a job (the tabs, `reasonrank submit`) passes here."""
    if kind != "train" or not any(word.split("=", 1)[0] in LAUNCH_FLAGS for word in argv):
        return
    from reasonrank.cli import parse_command
    from reasonrank.cli.train import check_launch as check_train_launch

    try:
        config = parse_command(argv)
    except (SystemExit, InputError):  # not a command line: the command itself says why
        return
    check_train_launch(config, runner)


def _runner(job: Job) -> Any:
    return _RUNNERS[job.config["runner"]["name"]][0]


def _settings(runner: str, job: Job | None = None) -> Any:
    """This app's settings for the runner's cluster; for a recorded job, with the cluster (and
    folder) it was submitted to."""
    _, settings_class, kept = _RUNNERS[runner]
    info = (job.config.get("runner") or {}) if job is not None else {}
    stored = {name: info[name] for name in kept if info.get(name)}
    try:
        settings = settings_class.from_env()
    except RunnerError:
        if not stored:
            raise
        return settings_class(**stored)
    return dataclasses.replace(settings, **stored)


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
                out[index + 1] = f"{INPUTS_DIR}/{name}"
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
    module, _, kept = _RUNNERS[runner]
    try:
        settings = _settings(runner)
        _outside_app_data(settings)
        if argv and argv[0] == "synth":  # the worker labels the items selected here (db.synth_remote)
            argv = synth_remote.prepare(engine, job_id, list(argv))
        run_argv, inputs = remote_argv(engine, argv, settings.output_root)
        sid = module.submission_id(job_id)
        info = {"name": runner, **{name: getattr(settings, name) for name in kept}, "submission_id": sid}
        info["entrypoint"] = module.entrypoint(settings, run_argv)
        with write_session(engine) as session:  # recorded before submitting: a restart finds it either way
            row = session.get(Job, job_id)
            row.config = {**row.config, "runner": info}
        module.submit(settings, sid, job_id, run_argv, inputs, env)
    except (RunnerError, InputError) as exc:
        with write_session(engine) as session:
            row = session.get(Job, job_id)
            row.status, row.message, row.finished_at = "failed", str(exc), _now()
        return job_id
    with write_session(engine) as session:
        row = session.get(Job, job_id)
        row.status, row.started_at = "running", _now()
    return job_id


def _outside_app_data(settings: Any) -> None:
    """Refuse a worker folder (a SLURM work root, an output root) in the app's data directory: the
    worker never reads or writes there."""
    app_data = data_dir().resolve()
    for name in ("work_root", "output_root"):
        value = getattr(settings, name, "")
        path = Path(value).resolve() if value else None
        if path is not None and (path == app_data or app_data in path.parents):
            raise RunnerError(
                f"the {name.replace('_', ' ')} {value} is inside the app's data directory {app_data}; "
                "the worker must not read or write there"
            )


def _now():
    from db.engine import utcnow

    return utcnow()


def _sync(engine: Engine, job: Job, settings: Any) -> RemoteStatus:
    """Ask the cluster for the job's status, mirror its log (a lost job's too: a log that still
    holds its `end` gives the outcome), store the labels a synth job sent, record whether it
    answered."""
    sid = job.config["runner"]["submission_id"]
    remote = _runner(job).status(settings, sid)
    text = _runner(job).logs(settings, sid) if remote.state != "unreachable" else None
    if text is not None:
        mirror_log(text, job.log_path, job.metrics_path)
    if job.kind == "synth":  # also after a restart that mirrored but did not store
        synth_remote.store_label_events(engine, job)
    remote.unreachable_since = mark_reachable(Path(job.log_path).parent, remote.state != "unreachable")
    return remote


def remote_state(engine: Engine, job: Job) -> jobs.JobState:
    """The job's state from the events mirrored so far and the cluster's own status; a job the
    cluster no longer has, or that ended without its `end` event, or a cluster silent for longer
    than the runner's LOST_AFTER seconds, ends the job failed with a message that says which. A
    job that reports `cancelled` while the cluster says it failed (a SLURM time limit, preemption:
    the cluster's SIGTERM, not a user's cancel) is failed with the cluster's reason."""
    module = _runner(job)
    settings = _settings(job.config["runner"]["name"], job)
    remote = _sync(engine, job, settings)
    state = jobs.reported_state(job.metrics_path)
    if state.finished:
        if state.status == "succeeded" and job.kind == "train" and job.status not in jobs.FINISHED:
            state.outputs = register_trained_model(engine, job, state.outputs, settings)
        if job.kind == "synth":  # every label event precedes `end`: all are stored by now
            state.outputs = {**state.outputs, "stored_by_app": synth_remote.stored_counts(job)}
        if state.status == "cancelled" and remote.state == "failed":
            state.status, state.message = "failed", f"{remote.message}: ended by the cluster ({state.message})"
        return state
    where = module.where(settings)
    sid = job.config["runner"]["submission_id"]
    if remote.state == "pending":
        state.status, state.message = "queued", f"waiting for {where} to start {sid}"
    elif remote.state == "running":
        state.status = "running"
    elif remote.state in ("succeeded", "failed", "stopped"):
        last = jobs.tail(job.log_path, lines=8)
        state.status = "cancelled" if remote.state == "stopped" else "failed"
        state.message = (
            f"the {module.LABEL} job {sid} ended ({remote.state}{': ' + remote.message if remote.message else ''}) "
            "without reporting a result" + (f"; last log lines:\n{last}" if last else "")
        )
    elif remote.state == "lost":
        state.status = "failed"
        state.message = remote.message
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
    settings = _settings(job.config["runner"]["name"], job)
    try:
        _runner(job).stop(settings, job.config["runner"]["submission_id"])
    except RunnerError as exc:
        with write_session(engine) as session:
            row = session.get(Job, job.id)
            if row.status not in jobs.FINISHED:
                row.status, row.finished_at = "cancelled", _now()
                row.message = f"cancelled here, but {exc}; it may still run there"
        return
    deadline = time.monotonic() + CANCEL_WAIT_S
    while time.monotonic() < deadline:
        remote = _sync(engine, job, settings)
        if remote.state not in ("pending", "running"):
            return
        time.sleep(0.2)


def register_trained_model(engine: Engine, job: Job, outputs: dict[str, Any], settings: Any) -> dict[str, Any]:
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
