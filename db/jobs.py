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


def launch_job(engine: Engine, kind: str, argv: list[str], config: dict[str, Any], *,
               created_by: int | None = None, lineage: dict[str, Any] | None = None,
               env: dict[str, str] | None = None) -> int:
    """Record a job and start `reasonrank <argv…>` for it; returns the job id.

    `config` is what the form held (stored for the history and to re-run); it must not hold
    secrets — commands take API keys from an environment variable named in the config, and
    `env` (passed to the process only, never stored) is where a caller may put one.
    """
    if kind not in JOB_KINDS:
        raise ValueError(f"unknown job kind {kind!r}; expected one of {', '.join(JOB_KINDS)}")
    with write_session(engine) as session:
        job = Job(kind=kind, config={**config, "argv": list(argv)}, status="queued",
                  created_by=created_by, lineage=lineage or {})
        session.add(job)
        session.flush()
        job_id = job.id
        folder = job_dir(job_id)
        job.log_path = str(folder / "log.txt")
        job.metrics_path = str(folder / "events.jsonl")
    pid = jobs.start(argv, job.log_path, job.metrics_path, env={**(env or {}), jobs.JOB_ID_ENV: str(job_id)})
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
    return JobView(
        id=job.id, kind=job.kind, status=job.status, argv=list(job.config.get("argv", [])),
        config=job.config, progress=state.progress if state else None,
        metrics=state.metrics if state else [], message=job.message or (state.message if state else ""),
        outputs=job.outputs or (state.outputs if state else {}),
        log_tail=jobs.tail(job.log_path) if job.log_path else "",
        eta_seconds=state.eta_seconds() if state and job.status not in jobs.FINISHED else None,
        created_by=job.created_by, lineage=job.lineage or {},
    )


def cancel_job(engine: Engine, job_id: int) -> JobView:
    """Stop a running job (SIGTERM, then SIGKILL) and record it as cancelled."""
    with read_session(engine) as session:
        job = session.get(Job, job_id)
        if job is None:
            raise LookupError(f"no job {job_id}")
        pid, status = job.pid, job.status
    if status not in jobs.FINISHED and pid is not None:
        jobs.cancel(pid)
    view = refresh_job(engine, job_id)
    if status not in jobs.FINISHED and view.status != "cancelled":  # killed before it could say so
        with write_session(engine) as session:
            row = session.get(Job, job_id)
            row.status, row.finished_at = "cancelled", row.finished_at or utcnow()
            row.message = "cancelled by a user"
        view = refresh_job(engine, job_id)
    return view


def list_jobs(engine: Engine, kind: str | None = None, limit: int = 50) -> list[JobView]:
    """Newest first; unfinished ones are refreshed so the list shows their real state."""
    with read_session(engine) as session:
        statement = select(Job.id).order_by(Job.id.desc()).limit(limit)
        if kind is not None:
            statement = statement.where(Job.kind == kind)
        ids = list(session.exec(statement))
    return [refresh_job(engine, job_id) for job_id in ids]
