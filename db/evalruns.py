"""Eval runs: a finished `reasonrank eval` job recorded as an EvalRun row, and the leaderboard.

The job's `end` event carries everything a row needs (the table, what reproduces the run, the
written run and calls files), so recording reads only the Job row: it works the same for a job
that finished while the app was down. Recording is idempotent (one EvalRun per job), so every
poll and every leaderboard view may call `sync_eval_runs` safely.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import select

from db.engine import read_session, write_session
from db.models import EvalRun, Job, Reranker
from reasonrank.evaluate import COSTS, FIRST_STAGE, RERANKED


@dataclass(frozen=True)
class LeaderboardRow:
    """One dataset of one run: its final score (reranked, else first stage) and the first stage's."""

    run_id: int
    name: str
    dataset: str
    reranker: str
    queries: int
    final: float
    first_stage: float
    window: int | None
    step: int | None
    top_k: int | None
    job_id: int | None
    created_at: datetime
    method: str | None = None  # the reranking method (None: first stage only)
    recall: float | None = None  # Recall@10 of the final stage
    #: COSTS per query of the reranked run (reasonrank.evaluate.query_costs); {} before they were recorded
    costs: dict[str, float] = field(default_factory=dict)

    @property
    def gain(self) -> float:
        return self.final - self.first_stage


def _results(
    table: list[dict[str, Any]], costs: dict[str, dict[str, float]] | None = None
) -> dict[str, dict[str, Any]]:
    """{dataset: {"queries": n, stage: {metric: value}, "costs": {...}}} from the eval table's
    rows and the reranked datasets' costs per query (kept in the results JSON, so no column)."""
    results: dict[str, dict[str, Any]] = {}
    for row in table:
        metrics = {k: v for k, v in row.items() if k not in ("dataset", "stage", "queries")}
        entry = results.setdefault(row["dataset"], {"queries": row.get("queries", 0)})
        entry[row["stage"]] = metrics
    for name, cost in (costs or {}).items():
        if name in results:
            results[name]["costs"] = {key: float(cost[key]) for key in COSTS if key in cost}
    return results


def _one_or_folder(files: dict[str, str], results_path: str | None) -> str | None:
    """The file itself for a one-dataset run, else the folder holding every `<dataset>.*` file."""
    if len(files) == 1:
        return next(iter(files.values()))
    if files:
        return str(Path(next(iter(files.values()))).parent)
    return str(Path(results_path).parent) if results_path else None


def record_eval_run(engine: Engine, job_id: int) -> EvalRun | None:
    """The EvalRun of a succeeded eval job (created on first call); None while the job has not
    succeeded or when its outputs hold no eval table (another command run as an eval job)."""
    with write_session(engine) as session:
        existing = session.exec(select(EvalRun).where(EvalRun.job_id == job_id)).first()
        if existing is not None:
            session.expunge(existing)
            return existing
        job = session.get(Job, job_id)
        outputs = (job.outputs or {}) if job is not None else {}
        if job is None or job.status != "succeeded" or "table" not in outputs:
            return None
        lineage = job.lineage or {}
        row = EvalRun(
            name=lineage.get("name") or f"eval job {job_id}",
            job_id=job_id,
            reranker_id=lineage.get("reranker_id"),
            config=job.config or {},
            reproduce=outputs.get("reproduce") or {},
            results=_results(outputs["table"], outputs.get("costs")),
            run_path=_one_or_folder(outputs.get("runs") or {}, outputs.get("results")),
            calls_path=_one_or_folder(outputs.get("calls") or {}, None),
        )
        session.add(row)
        session.flush()
        session.refresh(row)
        session.expunge(row)
        return row


def sync_eval_runs(engine: Engine) -> int:
    """Record every succeeded eval job that has no EvalRun yet; returns how many were added."""
    with read_session(engine) as session:
        recorded = select(EvalRun.job_id).where(EvalRun.job_id.is_not(None))
        pending = list(
            session.exec(select(Job.id).where(Job.kind == "eval", Job.status == "succeeded", Job.id.not_in(recorded)))
        )
    return sum(record_eval_run(engine, job_id) is not None for job_id in pending)


def list_eval_runs(engine: Engine) -> list[EvalRun]:
    with read_session(engine) as session:
        rows = list(session.exec(select(EvalRun).order_by(EvalRun.id.desc())))
        for row in rows:
            session.expunge(row)
        return rows


def leaderboard(engine: Engine, metric: str = "ndcg@10", dataset: str | None = None) -> list[LeaderboardRow]:
    """Every recorded run × dataset, best `metric` first (ties: the older run first)."""
    with read_session(engine) as session:
        names = {r.id: r.name for r in session.exec(select(Reranker))}
    rows = []
    for run in list_eval_runs(engine):
        reproduce = run.reproduce or {}
        reranker = names.get(run.reranker_id) or (reproduce.get("reranker") or {}).get("model") or "first stage only"
        # runs recorded before methods existed ran ReasonRank's sliding window
        method = (reproduce.get("method") or "reasonrank") if reproduce.get("reranker") else None
        for name, entry in run.results.items():
            if dataset is not None and name != dataset:
                continue
            first = (entry.get(FIRST_STAGE) or {}).get(metric)
            final = (entry.get(RERANKED) or {}).get(metric, first)
            if final is None:
                continue
            staged = entry.get(RERANKED) or entry.get(FIRST_STAGE) or {}
            rows.append(
                LeaderboardRow(
                    run.id,
                    run.name,
                    name,
                    reranker,
                    int(entry.get("queries", 0)),
                    float(final),
                    float(first if first is not None else final),
                    reproduce.get("window"),
                    reproduce.get("step"),
                    reproduce.get("top_k"),
                    run.job_id,
                    run.created_at,
                    method,
                    staged.get("recall@10"),
                    dict(entry.get("costs") or {}),
                )
            )
    return sorted(rows, key=lambda r: (-r.final, r.run_id))
