"""Synthesized teacher labels in the store: which items to label, and storing each label at once.

Exactly-once labelling rests on one rule: a synthesized label's fingerprint names the teacher
configuration that wrote it (model, prompt, decoding), not its content. The (item, fingerprint)
unique constraint then holds at most one label per item and teacher configuration, so a rerun
skips what is done, a run killed with SIGKILL loses only the requests in flight (each stored
label was its own committed transaction), and two runs racing on one item store one label.
(Imported labels keep content fingerprints, see db.label_rows; the two never collide, the
synthesized ones are hashed under a "synth" key.)
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, exists, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from db.engine import chunks, read_session, utcnow, write_session
from db.exports import passages_for
from db.label_rows import BACK_TO_REVIEW, label_row
from db.models import ITEM_STATUSES, Dataset, Item, Label, Query
from reasonrank.io import InputError
from reasonrank.types import CandidateList
from reasonrank.types import Label as LabelData
from reasonrank.types import Query as QueryData

PAGE = 256  # candidate lists loaded per query while a run streams through its items


@dataclass(frozen=True)
class ItemSelection:
    """Which items a run labels: a dataset, a review status (None: any), optional qids, a limit."""

    dataset: str | None = None
    status: str | None = "pending"
    qids: tuple[str, ...] | None = None
    limit: int | None = None

    def __post_init__(self) -> None:
        if self.status is not None and self.status not in ITEM_STATUSES:
            raise InputError(f"unknown item status {self.status!r}; choose one of: {', '.join(ITEM_STATUSES)}")
        if self.limit is not None and self.limit < 1:
            raise InputError(f"limit must be at least 1, got {self.limit}")


def dataset_names(engine: Engine) -> list[str]:
    """Every dataset in the store, by name (the choices of the Synthesize tab)."""
    with read_session(engine) as session:
        return list(session.scalars(select(Dataset.name).order_by(Dataset.name)))


def items_to_label(engine: Engine, selection: ItemSelection, fingerprint: str) -> list[int]:
    """Ids of the selected items that hold no label with `fingerprint`, in id order."""
    done = exists().where(Label.item_id == Item.id, Label.fingerprint == fingerprint)
    statement = select(Item.id).where(~done).order_by(Item.id)
    with read_session(engine) as session:
        if selection.dataset is not None:
            dataset_id = session.scalar(select(Dataset.id).where(Dataset.name == selection.dataset))
            if dataset_id is None:
                names = ", ".join(dataset_names(engine)) or "(none)"
                raise InputError(f"no dataset named {selection.dataset!r} in the store; datasets: {names}")
            statement = statement.where(Item.dataset_id == dataset_id)
        if selection.status is not None:
            statement = statement.where(Item.status == selection.status)
        if selection.qids is None:
            return list(session.scalars(statement.limit(selection.limit)))
        found: list[int] = []
        for chunk in chunks(sorted(set(selection.qids))):
            found += session.scalars(statement.join(Query, Query.id == Item.query_id).where(Query.qid.in_(chunk)))
        return sorted(found)[: selection.limit]


def count_labelled(engine: Engine, fingerprint: str) -> int:
    """How many labels this teacher configuration has stored."""
    with read_session(engine) as session:
        return session.scalar(select(func.count()).select_from(Label).where(Label.fingerprint == fingerprint))


def iter_lists(engine: Engine, item_ids: Sequence[int], page: int = PAGE) -> Iterator[tuple[int, CandidateList]]:
    """(item id, candidate list with texts and qrels) for each id, loading `page` items at a time."""
    for chunk in chunks(list(item_ids), page):
        with read_session(engine) as session:
            rows = (
                session.execute(
                    select(
                        Item.id,
                        Item.dataset_id,
                        Item.candidates,
                        Item.qrels,
                        Item.excluded_ids,
                        Query.qid,
                        Query.text,
                        Dataset.name,
                    )
                    .join(Query, Query.id == Item.query_id)
                    .join(Dataset, Dataset.id == Item.dataset_id)
                    .where(Item.id.in_(chunk))
                )
                .tuples()
                .all()
            )
            wanted: dict[int, set[str]] = {}
            for row in rows:
                wanted.setdefault(row[1], set()).update(row[2])
            texts = passages_for(session, wanted)
        by_id = {row[0]: row for row in rows}
        for item_id in chunk:
            _, dataset_id, docids, qrels, excluded, qid, query, dataset = by_id[item_id]
            yield (
                item_id,
                CandidateList(
                    QueryData(qid, query),
                    [texts[dataset_id][d] for d in docids],
                    qrels=qrels,
                    excluded_ids=list(excluded),
                    dataset=dataset,
                ),
            )


def store_label(
    engine: Engine, item_id: int, label: LabelData, consistency: float | None, kept: bool, fingerprint: str
) -> bool:
    """Store one synthesized label and make it the item's label under review, in one transaction.

    Returns False, writing nothing, when the item already holds a label of this teacher
    configuration (the unique constraint refuses it). Like an import, a label replacing another
    sends the item back to review.
    """
    try:
        with write_session(engine) as session:
            label_id = session.scalar(
                insert(Label)
                .values(label_row(label, item_id, consistency, kept, fingerprint, utcnow()))
                .returning(Label.id)
            )
            previous = session.scalar(select(Item.label_id).where(Item.id == item_id))
            values: dict[str, Any] = {"label_id": label_id, "consistency": consistency}
            if previous is not None:  # what reviewers judged changed: back to the queue
                values.update(BACK_TO_REVIEW)
            session.execute(
                update(Item).where(Item.id == item_id).values(version=Item.version + 1, updated_at=utcnow(), **values)
            )
    except IntegrityError:  # another run stored this teacher's label for the item first
        return False
    return True
