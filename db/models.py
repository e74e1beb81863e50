"""The tables of the label store (SQLModel), shared by SQLite and PostgreSQL.

An Item is one query's candidate list under review; its Labels are the rankings imported for it
(teacher, model or human) and `Item.label_id` names the one being reviewed. Reviews are
append-only: every decision, skip and adjudication is a new row, so the history of an item is
never rewritten. `Item.version` grows by one on every saved decision; saves name the version they
started from, which is how two reviewers are kept from overwriting each other.

Indexes follow the queue's access paths: it walks (status, id) and (dataset_id, status,
consistency, id); a single-column status index is far slower on PostgreSQL (docs/benchmarks.md,
"Costs behind design choices").
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from db.engine import utcnow

ITEM_STATUSES = ("pending", "accepted", "fixed", "rejected", "conflict")
DECISIONS = ("accept", "fix", "reject", "skip")
COUNTED_DECISIONS = ("accept", "fix", "reject")  # a skip is not a review
ROLES = ("admin", "annotator")
LABEL_SOURCES = ("teacher", "model", "human")


def _json(nullable: bool = False, default_factory: Any = None) -> Any:
    """A JSON column; Python None is stored as SQL NULL (not JSON 'null') so IS NULL finds it."""
    column_type = JSON(none_as_null=True)
    if default_factory is not None:
        return Field(
            default_factory=default_factory,
            sa_column=Column(column_type, nullable=nullable, default=lambda: default_factory()),
        )
    return Field(default=None, sa_column=Column(column_type, nullable=nullable))


class Dataset(SQLModel, table=True):
    __tablename__ = "dataset"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=200)
    created_at: datetime = Field(default_factory=utcnow)


class Query(SQLModel, table=True):
    __tablename__ = "query"
    __table_args__ = (UniqueConstraint("dataset_id", "qid", name="uq_query_dataset_qid"),)

    id: int | None = Field(default=None, primary_key=True)
    dataset_id: int = Field(foreign_key="dataset.id")
    qid: str = Field(max_length=500)
    text: str


class Passage(SQLModel, table=True):
    """A passage text, stored once per dataset and docid (items refer to docids)."""

    __tablename__ = "passage"
    __table_args__ = (UniqueConstraint("dataset_id", "docid", name="uq_passage_dataset_docid"),)

    id: int | None = Field(default=None, primary_key=True)
    dataset_id: int = Field(foreign_key="dataset.id")
    docid: str = Field(max_length=500)
    text: str
    title: str | None = None


class User(SQLModel, table=True):
    __tablename__ = "app_user"  # "user" is a reserved word in PostgreSQL

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=200)
    role: str = Field(max_length=20)
    password_hash: str
    created_at: datetime = Field(default_factory=utcnow)


class Item(SQLModel, table=True):
    """One query's candidate list in the review workflow (one per dataset and qid)."""

    __tablename__ = "item"
    __table_args__ = (
        Index("ix_item_status_id", "status", "id"),
        # id last: the queue orders by (consistency, id), and many items tie on consistency
        Index("ix_item_dataset_status_consistency", "dataset_id", "status", "consistency", "id"),
        Index("ix_item_status_consistency", "status", "consistency", "id"),
        Index("ix_item_claimed_by", "claimed_by"),  # "the item I hold" without a scan
    )

    id: int | None = Field(default=None, primary_key=True)
    dataset_id: int = Field(foreign_key="dataset.id")
    query_id: int = Field(foreign_key="query.id", unique=True)
    candidates: list[str] = _json()  # docids in first-stage order
    qrels: dict[str, int] | None = _json(nullable=True)
    excluded_ids: list[str] = _json(default_factory=list)
    status: str = Field(default="pending", max_length=20)
    version: int = 1
    required_reviews: int = 1
    claimed_by: int | None = Field(default=None, foreign_key="app_user.id")
    claimed_until: datetime | None = None
    # The label under review. No FK: Label already points at Item, and a cycle would need ALTERs.
    label_id: int | None = None
    consistency: float | None = None  # of the label under review
    final_ranking: list[str] | None = _json(nullable=True)  # set once accepted / fixed
    final_reasoning: str | None = None
    updated_at: datetime = Field(default_factory=utcnow)


class Label(SQLModel, table=True):
    """A ranking of an item by a teacher, a model or a person, as imported."""

    __tablename__ = "label"
    __table_args__ = (UniqueConstraint("item_id", "fingerprint", name="uq_label_item_fingerprint"),)

    id: int | None = Field(default=None, primary_key=True)
    item_id: int = Field(foreign_key="item.id", index=True)
    source: str = Field(max_length=20)
    model: str | None = Field(default=None, max_length=500)
    ranking: list[str] = _json()
    reasoning: str | None = None
    raw_output: str | None = None
    relevant_docids: list[str] | None = _json(nullable=True)
    consistency: float | None = None
    kept: bool = False  # consistency >= alpha at import time
    reasons: list[str] = _json(default_factory=list)
    tokens_in: int = 0
    tokens_out: int = 0
    fingerprint: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow)


class Review(SQLModel, table=True):
    """One decision by one person on one item (append-only audit trail)."""

    __tablename__ = "review"
    __table_args__ = (
        Index("ix_review_item_annotator", "item_id", "annotator_id"),
        Index("ix_review_annotator_item", "annotator_id", "item_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    item_id: int = Field(foreign_key="item.id")
    label_id: int | None = Field(default=None, foreign_key="label.id")
    annotator_id: int = Field(foreign_key="app_user.id")
    decision: str = Field(max_length=20)
    adjudication: bool = False  # an admin's final word on the item
    ranking: list[str] | None = _json(nullable=True)  # the fixed order (fix only)
    reasoning: str | None = None  # edited reasoning, when the reviewer changed it
    note: str | None = None
    kendall_tau: float | None = None  # fixed order vs the label's order
    item_version: int  # the version the reviewer saw
    created_at: datetime = Field(default_factory=utcnow)


class Export(SQLModel, table=True):
    __tablename__ = "export"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    kind: str = Field(max_length=20)
    filter: dict[str, Any] = _json(default_factory=dict)
    count: int
    sha256: str = Field(max_length=64)
    path: str
    created_by: int | None = Field(default=None, foreign_key="app_user.id")
    created_at: datetime = Field(default_factory=utcnow)


class Job(SQLModel, table=True):
    """A long-running subprocess (synthesis, training, evaluation) and where its output goes."""

    __tablename__ = "job"

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=40)
    config: dict[str, Any] = _json(default_factory=dict)
    status: str = Field(default="queued", max_length=20)
    pid: int | None = None
    log_path: str | None = None
    metrics_path: str | None = None
    lineage: dict[str, Any] = _json(default_factory=dict)
    created_by: int | None = Field(default=None, foreign_key="app_user.id")
    exit_code: int | None = None
    message: str | None = None  # the error line of a failed job, or a summary of a finished one
    outputs: dict[str, Any] = _json(default_factory=dict)  # what the job produced (paths, ids, figures)
    created_at: datetime = Field(default_factory=utcnow)
    started_at: datetime | None = None
    finished_at: datetime | None = None


class Reranker(SQLModel, table=True):
    """A named reranker the Arena and Eval can run: a backend, a model and its options.

    Trained models are registered here by the trainer's job (source "trained", with the job and
    the export that built them in `lineage`); API keys are never stored, only the name of the
    environment variable holding one (in `options`).
    """

    __tablename__ = "reranker"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=200)
    backend: str = Field(max_length=40)  # openai | transformers | vllm | bm25 | labels
    model: str = Field(default="", max_length=1000)
    options: dict[str, Any] = _json(default_factory=dict)
    source: str = Field(default="manual", max_length=20)  # manual | trained | builtin
    job_id: int | None = Field(default=None, foreign_key="job.id")
    lineage: dict[str, Any] = _json(default_factory=dict)
    created_at: datetime = Field(default_factory=utcnow)


class EvalRun(SQLModel, table=True):
    """One benchmark run: what was run (enough to reproduce it) and the per-task figures."""

    __tablename__ = "eval_run"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    job_id: int | None = Field(default=None, foreign_key="job.id")
    reranker_id: int | None = Field(default=None, foreign_key="reranker.id")
    config: dict[str, Any] = _json(default_factory=dict)
    reproduce: dict[str, Any] = _json(default_factory=dict)  # library versions, prompt hash, seed, ...
    results: dict[str, Any] = _json(default_factory=dict)  # task -> {metric: value}
    run_path: str | None = None
    calls_path: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
