"""The review queue: hand each reviewer the next item to look at, never the same one to two people.

Lowest self-consistency first (the labels most likely wrong, docs/method.md §7), items without a score
last. A served item is claimed for a while (CLAIM_TTL) so that a second reviewer gets a
different one; the claim lapses by itself if the reviewer walks away, and saving or skipping
releases it. The claim is taken inside a write transaction that cannot interleave with another
claim: BEGIN IMMEDIATE on SQLite, SELECT … FOR UPDATE SKIP LOCKED on PostgreSQL.

What leaves this module is a plain ItemView with everything the review screen shows, so a UI
handler never touches a session.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, exists, func, or_, select, update
from sqlmodel import Session

from db.engine import is_sqlite, read_session, utcnow, write_session
from db.models import COUNTED_DECISIONS, ITEM_STATUSES, Dataset, Item, Label, Passage, Query, Review, User
from db.users import user_row
from reasonrank.io import InputError

CLAIM_TTL = timedelta(minutes=30)


@dataclass(frozen=True)
class QueueFilter:
    dataset: str | None = None
    status: str = "pending"
    source: str | None = None  # of the label under review: teacher | model | human
    min_consistency: float | None = None
    max_consistency: float | None = None


@dataclass(frozen=True)
class PassageView:
    docid: str
    text: str
    title: str | None
    grade: int | None  # from the item's qrels, when judged
    prompt_id: int  # 1-based position in first-stage order: the [n] the teacher's reasoning cites


@dataclass(frozen=True)
class ItemView:
    """One item as the review screen shows it; detached from the database."""

    item_id: int
    item_key: str  # "<dataset>/<qid>"
    dataset: str
    qid: str
    query: str
    status: str
    version: int  # pass back to save_review as expected_version
    required_reviews: int
    reviews_done: int  # distinct people who accepted, fixed or rejected the current label
    label_id: int | None
    source: str | None
    model: str | None
    reasoning: str | None  # the teacher's, as imported
    consistency: float | None
    kept: bool | None
    teacher_ranking: list[str]
    initial_ranking: list[str]  # first-stage order
    passages: list[PassageView]  # in the teacher's order
    current_ranking: list[str]  # this reviewer's saved order, else the resolved one, else the teacher's
    current_reasoning: str | None  # this reviewer's edited reasoning, when there is one
    my_decision: str | None  # this reviewer's latest decision on the current label
    claimed_by: str | None
    claimed_until: datetime | None
    raw_output: str | None = None  # the label's model output as recorded (shown when it has no reasoning)
    my_note: str | None = None  # the note of this reviewer's latest decision (a reject's reason)


@dataclass(frozen=True)
class DatasetProgress:
    dataset: str
    total: int
    pending: int
    accepted: int
    fixed: int
    rejected: int
    conflict: int
    mine: int  # items this user accepted, fixed or rejected


def _check_filter(filters: QueueFilter) -> None:
    if filters.status not in ITEM_STATUSES:
        raise InputError(f"queue status {filters.status!r} is not one of {', '.join(ITEM_STATUSES)}")


def _reviewed_by(user_id: int):
    """EXISTS: this user already left a decision (or a skip) on the item's current label."""
    return exists().where(Review.item_id == Item.id, Review.annotator_id == user_id, Review.label_id == Item.label_id)


def _candidates(session: Session, user_id: int, filters: QueueFilter, now: datetime):
    conditions = [
        Item.status == filters.status,
        Item.label_id.is_not(None),
        ~_reviewed_by(user_id),
        or_(Item.claimed_by.is_(None), Item.claimed_by == user_id, Item.claimed_until <= now),
    ]
    if filters.dataset is not None:
        dataset_id = session.scalar(select(Dataset.id).where(Dataset.name == filters.dataset))
        if dataset_id is None:
            raise InputError(f"no dataset named {filters.dataset!r}")
        conditions.append(Item.dataset_id == dataset_id)
    if filters.source is not None:
        conditions.append(exists().where(Label.id == Item.label_id, Label.source == filters.source))
    if filters.min_consistency is not None:
        conditions.append(Item.consistency >= filters.min_consistency)
    if filters.max_consistency is not None:
        conditions.append(Item.consistency <= filters.max_consistency)
    return conditions


def _pick(session: Session, conditions: list, locking: bool) -> int | None:
    """The first matching item id: scored items by consistency, then unscored ones by id.

    Two queries rather than one NULLS LAST sort, so each walks an index in order and stops at
    the first row instead of sorting every pending item.
    """
    for extra, order in (
        ((Item.consistency.is_not(None),), (Item.consistency, Item.id)),
        ((Item.consistency.is_(None),), (Item.id,)),
    ):
        query = select(Item.id).where(*conditions, *extra).order_by(*order).limit(1)
        if locking:
            query = query.with_for_update(skip_locked=True, of=Item)
        found = session.scalar(query)
        if found is not None:
            return found
    return None


def next_item(
    engine: Engine,
    user: str,
    filters: QueueFilter | None = None,
    *,
    claim_ttl: timedelta = CLAIM_TTL,
    now: datetime | None = None,
) -> ItemView | None:
    """Claim and return the next item for `user`, or None when nothing is left for them.

    A user holds at most one claim: the item they already hold is served again (a page reload
    does not lock a second item), and claiming another releases the old one.
    """
    filters = filters or QueueFilter()
    _check_filter(filters)
    now = now or utcnow()
    with write_session(engine) as session:
        user_id = user_row(session, user).id
        conditions = _candidates(session, user_id, filters, now)
        held = session.scalar(
            select(Item.id).where(*conditions, Item.claimed_by == user_id, Item.claimed_until > now).limit(1)
        )
        item_id = held or _pick(session, conditions, locking=not is_sqlite(engine))
        session.execute(
            update(Item)
            .where(Item.claimed_by == user_id, Item.id != item_id)
            .values(claimed_by=None, claimed_until=None)
        )
        if item_id is None:
            return None
        session.execute(
            update(Item).where(Item.id == item_id).values(claimed_by=user_id, claimed_until=now + claim_ttl)
        )
        return _item_view(session, item_id, user_id)


def get_item(engine: Engine, item_id: int, user: str | None = None) -> ItemView:
    """Reload one item (after a version conflict, or to show it to an admin); claims nothing."""
    with read_session(engine) as session:
        user_id = user_row(session, user).id if user is not None else None
        return _item_view(session, item_id, user_id)


def find_item(engine: Engine, dataset: str, qid: str) -> ItemView | None:
    """The item of a dataset's query, by names (the Arena's "stored labels" reranker)."""
    with read_session(engine) as session:
        item_id = session.scalar(
            select(Item.id)
            .join(Query, Query.id == Item.query_id)
            .join(Dataset, Dataset.id == Item.dataset_id)
            .where(Dataset.name == dataset, Query.qid == qid)
        )
    return None if item_id is None else get_item(engine, item_id)


def _item_view(session: Session, item_id: int, user_id: int | None) -> ItemView:
    """Build the view of an item inside an open session."""
    item = session.get(Item, item_id, populate_existing=True)
    if item is None:
        raise InputError(f"no item with id {item_id}")
    dataset = session.scalar(select(Dataset.name).where(Dataset.id == item.dataset_id))
    query = session.get(Query, item.query_id)
    label = session.get(Label, item.label_id) if item.label_id is not None else None
    texts = {
        p.docid: p
        for p in session.scalars(
            select(Passage).where(Passage.dataset_id == item.dataset_id, Passage.docid.in_(item.candidates))
        )
    }
    teacher = list(label.ranking) if label else list(item.candidates)
    prompt_ids = {docid: index + 1 for index, docid in enumerate(item.candidates)}
    grades = item.qrels or {}
    passages = [
        PassageView(docid, texts[docid].text, texts[docid].title, grades.get(docid), prompt_ids[docid])
        for docid in teacher
    ]
    mine = None
    if user_id is not None and label is not None:
        mine = session.scalar(
            select(Review)
            .where(
                Review.item_id == item.id,
                Review.annotator_id == user_id,
                Review.label_id == label.id,
                Review.decision != "skip",
            )
            .order_by(Review.id.desc())
            .limit(1)
        )
    done = (
        session.scalar(
            select(func.count(func.distinct(Review.annotator_id))).where(
                Review.item_id == item.id,
                Review.label_id == item.label_id,
                Review.adjudication.is_(False),
                Review.decision.in_(COUNTED_DECISIONS),
            )
        )
        if label
        else 0
    )
    claimer = session.scalar(select(User.name).where(User.id == item.claimed_by)) if item.claimed_by else None
    current = mine.ranking if mine and mine.ranking else item.final_ranking or teacher
    return ItemView(
        item_id=item.id,
        item_key=f"{dataset}/{query.qid}",
        dataset=dataset,
        qid=query.qid,
        query=query.text,
        status=item.status,
        version=item.version,
        required_reviews=item.required_reviews,
        reviews_done=done,
        label_id=item.label_id,
        source=label.source if label else None,
        model=label.model if label else None,
        reasoning=label.reasoning if label else None,
        consistency=item.consistency,
        kept=label.kept if label else None,
        teacher_ranking=teacher,
        initial_ranking=list(item.candidates),
        passages=passages,
        current_ranking=list(current),
        current_reasoning=mine.reasoning if mine else None,
        my_decision=mine.decision if mine else None,
        claimed_by=claimer,
        claimed_until=item.claimed_until,
        raw_output=label.raw_output if label else None,
        my_note=mine.note if mine else None,
    )


def progress(engine: Engine, user: str) -> list[DatasetProgress]:
    """Per dataset: items by status, and how many this user has decided."""
    with read_session(engine) as session:
        user_id = user_row(session, user).id
        counts: dict[str, dict[str, int]] = {}
        for name, status, count in session.execute(
            select(Dataset.name, Item.status, func.count())
            .join(Item, Item.dataset_id == Dataset.id)
            .group_by(Dataset.name, Item.status)
        ).tuples():
            counts.setdefault(name, {})[status] = count
        mine = dict(
            session.execute(
                select(Dataset.name, func.count(func.distinct(Review.item_id)))
                .join(Item, Item.id == Review.item_id)
                .join(Dataset, Dataset.id == Item.dataset_id)
                .where(Review.annotator_id == user_id, Review.decision.in_(COUNTED_DECISIONS))
                .group_by(Dataset.name)
            )
            .tuples()
            .all()
        )
    return [
        DatasetProgress(
            dataset=name,
            total=sum(by_status.values()),
            **{status: by_status.get(status, 0) for status in ITEM_STATUSES},
            mine=mine.get(name, 0),
        )
        for name, by_status in sorted(counts.items())
    ]
