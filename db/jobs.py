"""Job rows: launching a CLI command as a subprocess and keeping its row in step with it.

The row holds what the command was (kind, config, argv), who started it, its pid and where its
log and events files are. `refresh_job` folds the events file into the row (status, message,
outputs, finish time); it is cheap and idempotent, so every poll of the UI can call it and an
app restarted while a job runs picks the job up again by its pid.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import select

from db import remote_jobs
from db.engine import data_dir, read_session, utcnow, write_session
from db.models import Job
from reasonrank import jobs

JOB_KINDS = ("synth", "train", "eval")


@dataclass(frozen=True)
class JobView:
    """A job as the UI shows it: the row's fields plus the live state from its files."""

    id: int
    kind: str
    status: str
    argv: list[str]
    config: dict[str, Any]
    progress: dict[str, Any] | None
    metrics: list[dict[str, Any]]
    message: str
    outputs: dict[str, Any]
    log_tail: str
    eta_seconds: float | None
    created_by: int | None
    lineage: dict[str, Any]

    @property
    def finished(self) -> bool:
        return self.status in jobs.FINISHED


def job_dir(job_id: int) -> Path:
    return data_dir() / "jobs" / str(job_id)


def launch_job(
    engine: Engine,
    kind: str,
    argv: list[str],
    config: dict[str, Any],
    *,
    created_by: int | None = None,
    lineage: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
    runner: str = "local",
) -> int:
    """Record a job and start `reasonrank <argv…>` for it on `runner` (see reasonrank.runners);
    returns the job id. A remote runner that cannot take the job leaves it failed with the reason.

    `config` is what the form held (stored for the history and to re-run); it must not hold
    secrets — commands take API keys from an environment variable named in the config, and
    `env` (passed to the process only, never stored) is where a caller may put one.
    """
    if kind not in JOB_KINDS:
        raise ValueError(f"unknown job kind {kind!r}; expected one of {', '.join(JOB_KINDS)}")
    remote_jobs.check_runner(runner)
    remote_jobs.check_launch(kind, list(argv), runner)
    with write_session(engine) as session:
        job = Job(
            kind=kind,
            config={**config, "argv": list(argv)},
            status="queued",
            created_by=created_by,
            lineage=lineage or {},
        )
        session.add(job)
        session.flush()
        job_id = job.id
        folder = job_dir(job_id)
        job.log_path = str(folder / "log.txt")
        job.metrics_path = str(folder / "events.jsonl")
    if runner != "local":
        return remote_jobs.submit(engine, job_id, runner, list(argv), env)
    try:
        pid = jobs.start(argv, job.log_path, job.metrics_path, env={**(env or {}), jobs.JOB_ID_ENV: str(job_id)})
    except OSError as exc:  # the row must not stay "queued" with no process behind it
        with write_session(engine) as session:
            row = session.get(Job, job_id)
            row.status, row.message, row.finished_at = "failed", f"could not start the command: {exc}", utcnow()
        raise
    with write_session(engine) as session:
        row = session.get(Job, job_id)
        row.pid, row.status, row.started_at = pid, "running", utcnow()
    return job_id


def refresh_job(engine: Engine, job_id: int) -> JobView:
    """Read the job's files, store any change of outcome in its row, and return the view."""
    with read_session(engine) as session:
        job = session.get(Job, job_id)
        if job is None:
            raise LookupError(f"no job {job_id}")
        session.expunge(job)
    if remote_jobs.is_remote(job) and job.status not in jobs.FINISHED:
        state = remote_jobs.remote_state(engine, job)
    else:
        state = jobs.job_state(job.metrics_path, job.pid, job.log_path) if job.metrics_path else None
    if state is not None and state.finished and job.status not in jobs.FINISHED:
        with write_session(engine) as session:
            row = session.get(Job, job_id)
            if row.status not in jobs.FINISHED:  # another poller may have got here first
                row.status, row.message, row.outputs = state.status, state.message, state.outputs
                row.exit_code = jobs.exit_code(job.pid) if job.pid else None
                row.finished_at = utcnow()
            job = row
            session.flush()
            session.expunge(job)
    return _view(job, state, log_tail=jobs.tail(job.log_path) if job.log_path else "")


def _view(job: Job, state: jobs.JobState | None, log_tail: str = "") -> JobView:
    return JobView(
        id=job.id,
        kind=job.kind,
        status=job.status,
        argv=list(job.config.get("argv", [])),
        config=job.config,
        progress=state.progress if state else None,
        metrics=state.metrics if state else [],
        message=job.message or (state.message if state else ""),
        outputs=job.outputs or (state.outputs if state else {}),
        log_tail=log_tail,
        eta_seconds=state.eta_seconds() if state and job.status not in jobs.FINISHED else None,
        created_by=job.created_by,
        lineage=job.lineage or {},
    )


def cancel_job(engine: Engine, job_id: int) -> JobView:
    """Stop a running job (SIGTERM, then SIGKILL) and record it as cancelled, unless it reported
    its own end first (its handler writes "cancelled" on SIGTERM; a job that finished just then
    keeps its real outcome)."""
    with read_session(engine) as session:
        job = session.get(Job, job_id)
        if job is None:
            raise LookupError(f"no job {job_id}")
        pid, status, events_path = job.pid, job.status, job.metrics_path
        session.expunge(job)
    if status not in jobs.FINISHED:
        if remote_jobs.is_remote(job):
            remote_jobs.cancel(engine, job)
        elif pid is not None and events_path:
            jobs.cancel(pid, events_path)
        if not (events_path and jobs.reported_state(events_path).finished):  # killed before it could say so
            with write_session(engine) as session:
                row = session.get(Job, job_id)
                if row.status not in jobs.FINISHED:
                    row.status, row.finished_at, row.message = "cancelled", utcnow(), "cancelled by a user"
    return refresh_job(engine, job_id)


def list_jobs(engine: Engine, kind: str | None = None, limit: int = 50) -> list[JobView]:
    """Newest first, for a history table: one query; only unfinished jobs are refreshed from their
    files, finished ones are shown from their row (no log or events read)."""
    with read_session(engine) as session:
        statement = select(Job).order_by(Job.id.desc()).limit(limit)
        if kind is not None:
            statement = statement.where(Job.kind == kind)
        rows = list(session.exec(statement))
        for row in rows:
            session.expunge(row)
    return [_view(row, None) if row.status in jobs.FINISHED else refresh_job(engine, row.id) for row in rows]
