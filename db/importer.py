"""Write a validated ImportBatch into the store: one transaction, all or nothing, idempotent.

reasonrank.imports finds every problem inside the files; this module adds the checks only the
database can make (a docid or qid already stored with a different text) and refuses the whole
batch before writing anything. Items are keyed by (dataset, qid) and labels by a fingerprint of
their content, so importing the same file twice adds no rows. Rows are written with bulk
INSERTs, not one ORM object at a time, because a 100k-item import must stay within seconds.
They go through SQLAlchemy Core on the tables, not ORM-enabled bulk statements: the ORM splits an
executemany wherever a row's set of non-null keys changes and splices the RETURNING results of
every piece into one, which made the store quadratic in practice (a 20k-label file: 5,000 pieces).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import Engine

from db.engine import write_session
from db.import_outcome import ImportRefused, ImportSummary
from db.import_writer import DatasetEntry, DatasetWriter
from reasonrank.gc_pause import paused_gc
from reasonrank.imports import ALPHA
from reasonrank.io import InputError

if TYPE_CHECKING:
    from reasonrank.imports import ImportBatch

#: import_batch and what it reports
__all__ = ["ImportRefused", "ImportSummary", "import_batch"]


def _group_by_dataset(batch: ImportBatch) -> dict[str, list[DatasetEntry]]:
    groups: dict[str, list[DatasetEntry]] = {}
    entries = [DatasetEntry(label.candidates, label) for label in batch.labels]
    entries += [DatasetEntry(candidates, None) for candidates in batch.candidates]
    for entry in entries:
        groups.setdefault(entry.candidates.dataset or batch.dataset, []).append(entry)
    if batch.qrels:
        groups.setdefault(batch.dataset, [])
    return groups


def import_batch(
    engine: Engine, batch: ImportBatch, alpha: float = ALPHA, *, required_reviews: int = 1
) -> ImportSummary:
    """Store a validated batch in one transaction; a batch with issues writes nothing.

    New items get `required_reviews` (the overlap: how many people must review each). A new
    label for an existing item becomes the one under review and sends the item back to pending.
    """
    if batch.issues:
        raise ImportRefused([str(issue) for issue in batch.issues])
    if required_reviews < 1:
        raise InputError(f"required_reviews must be at least 1, got {required_reviews}")
    with paused_gc():  # row dicts for millions of values, none of them cyclic garbage
        groups = _group_by_dataset(batch)
        summary = ImportSummary(datasets=sorted(groups))
        with write_session(engine) as session:
            writers = [DatasetWriter(session, name, alpha, required_reviews, summary) for name in summary.datasets]
            problems = [problem for writer in writers for problem in writer.text_problems(groups[writer.name])]
            if problems:
                raise ImportRefused(problems)  # rolls back the transaction: not even a dataset row stays
            for writer in writers:
                writer.write(groups[writer.name], batch.qrels if writer.name == batch.dataset else {})
    return summary
