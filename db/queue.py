"""The review queue: hand each reviewer the next item to look at, never the same one to two people.

Lowest self-consistency first (the labels most likely wrong, docs/method.md §7), items without a score
last. A served item is claimed for a while (CLAIM_TTL) so that a second reviewer gets a
different one; the claim lapses by itself if the reviewer walks away, and saving or skipping
releases it.

What leaves this module is a plain ItemView with everything the review screen shows, so a UI
handler never touches a session.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from sqlalchemy import Connection, Engine, bindparam, case, exists, func, or_, select, update

from db.engine import is_sqlite, read_connection, read_session, utcnow, write_connection
from db.models import (
    COUNTED_DECISIONS,
    ITEM_STATUSES,
    LABEL_SOURCES,
    Dataset,
    Item,
    Label,
    Passage,
    Query,
    Review,
    User,
)
from db.users import user_ref, user_row
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
    if filters.source is not None and filters.source not in LABEL_SOURCES:
        raise InputError(f"label source {filters.source!r} is not one of {', '.join(LABEL_SOURCES)}")


# The queue's statements are Core statements on the tables, built once per filter shape with
# bound parameters: a claim and its view are ~8 indexed lookups whose SQL takes microseconds,
# while building ORM statements and loading ORM objects for them cost ~8 ms per next item.
_ITEM, _LABEL, _REVIEW = Item.__table__, Label.__table__, Review.__table__
_DATASET, _QUERY, _PASSAGE, _USER = Dataset.__table__, Query.__table__, Passage.__table__, User.__table__
_CLAIMER = _USER.alias("claimer")

# Who is asking, in one statement: the user's id, the filter's dataset id (NULL: no such
# dataset, or no filter) and the item they hold a live claim on, found through the claimed_by
# index (see _queue_statements for why it is not looked up together with the filters).
_ASKER = select(
    _USER.c.id,
    select(_DATASET.c.id).where(_DATASET.c.name == bindparam("dataset")).scalar_subquery(),
    select(_ITEM.c.id)
    .where(_ITEM.c.claimed_by == _USER.c.id, _ITEM.c.claimed_until > bindparam("now"))
    .limit(1)
    .scalar_subquery(),
).where(_USER.c.name == bindparam("name"))
_RELEASE = update(_ITEM).where(_ITEM.c.claimed_by == bindparam("user_id")).values(claimed_by=None, claimed_until=None)
# Claim the item and release any other the user holds, in one statement.
_CLAIM = (
    update(_ITEM)
    .where(or_(_ITEM.c.id == bindparam("item_id"), _ITEM.c.claimed_by == bindparam("user_id")))
    .values(
        claimed_by=case((_ITEM.c.id == bindparam("item_id"), bindparam("user_id")), else_=None),
        claimed_until=case((_ITEM.c.id == bindparam("item_id"), bindparam("until")), else_=None),
    )
)
_VIEW = (
    select(
        _ITEM.c.id,
        _ITEM.c.dataset_id,
        _ITEM.c.candidates,
        _ITEM.c.qrels,
        _ITEM.c.status,
        _ITEM.c.version,
        _ITEM.c.required_reviews,
        _ITEM.c.claimed_until,
        _ITEM.c.label_id,
        _ITEM.c.consistency,
        _ITEM.c.final_ranking,
        _DATASET.c.name.label("dataset"),
        _QUERY.c.qid,
        _QUERY.c.text.label("query"),
        _LABEL.c.source,
        _LABEL.c.model,
        _LABEL.c.ranking,
        _LABEL.c.reasoning,
        _LABEL.c.raw_output,
        _LABEL.c.kept,
        _CLAIMER.c.name.label("claimer"),
    )
    .select_from(
        _ITEM.join(_DATASET, _DATASET.c.id == _ITEM.c.dataset_id)
        .join(_QUERY, _QUERY.c.id == _ITEM.c.query_id)
        .outerjoin(_LABEL, _LABEL.c.id == _ITEM.c.label_id)
        .outerjoin(_CLAIMER, _CLAIMER.c.id == _ITEM.c.claimed_by)
    )
    .where(_ITEM.c.id == bindparam("item_id"))
)
_PASSAGES = select(_PASSAGE.c.docid, _PASSAGE.c.text, _PASSAGE.c.title).where(
    _PASSAGE.c.dataset_id == bindparam("dataset_id"), _PASSAGE.c.docid.in_(bindparam("docids", expanding=True))
)
_LABEL_REVIEWS = (
    select(
        _REVIEW.c.annotator_id,
        _REVIEW.c.decision,
        _REVIEW.c.adjudication,
        _REVIEW.c.ranking,
        _REVIEW.c.reasoning,
        _REVIEW.c.note,
    )
    .where(_REVIEW.c.item_id == bindparam("item_id"), _REVIEW.c.label_id == bindparam("label_id"))
    .order_by(_REVIEW.c.id)
)


@lru_cache(maxsize=64)
def _queue_statements(shape: tuple[bool, bool, bool, bool], locking: bool) -> tuple:
    """(still eligible, [pick scored, pick unscored]) for the filters present in `shape` (dataset, source,
    min, max consistency). The picks are two queries rather than one NULLS LAST sort, so each
    walks an index in order and stops at the first row instead of sorting every pending item."""
    item = _ITEM.c
    reviewed = exists().where(
        _REVIEW.c.item_id == item.id,
        _REVIEW.c.annotator_id == bindparam("user_id"),
        _REVIEW.c.label_id == item.label_id,
    )
    conditions = [
        item.status == bindparam("status"),
        item.label_id.is_not(None),
        ~reviewed,
        or_(item.claimed_by.is_(None), item.claimed_by == bindparam("user_id"), item.claimed_until <= bindparam("now")),
    ]
    by_dataset, by_source, low, high = shape
    if by_dataset:
        conditions.append(item.dataset_id == bindparam("dataset_id"))
    if by_source:
        conditions.append(exists().where(_LABEL.c.id == item.label_id, _LABEL.c.source == bindparam("source")))
    if low:
        conditions.append(item.consistency >= bindparam("low"))
    if high:
        conditions.append(item.consistency <= bindparam("high"))
    # The user's live claim is looked up by id (_ASKER, through the claimed_by index) and only
    # then tested against the filters: given both at once, the planner walks the dataset/status
    # index and tests every pending item (milliseconds per thousand items).
    still_eligible = select(item.id).where(item.id == bindparam("held"), *conditions)
    picks = []
    for extra, order in (
        ((item.consistency.is_not(None),), (item.consistency, item.id)),
        ((item.consistency.is_(None),), (item.id,)),
    ):
        pick = select(item.id).where(*conditions, *extra).order_by(*order).limit(1)
        picks.append(pick.with_for_update(skip_locked=True, of=_ITEM) if locking else pick)
    return still_eligible, picks


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
    does not lock a second item), and claiming another releases the old one. The claim is taken
    inside a write transaction that cannot interleave with another claim: BEGIN IMMEDIATE on
    SQLite, SELECT … FOR UPDATE SKIP LOCKED on PostgreSQL.
    """
    filters = filters or QueueFilter()
    _check_filter(filters)
    now = now or utcnow()
    with write_connection(engine) as connection:
        asker = connection.execute(_ASKER, {"name": user, "dataset": filters.dataset, "now": now}).first()
        if asker is None:
            raise InputError(f"no user named {user!r}")
        user_id, dataset_id, held = asker
        if filters.dataset is not None and dataset_id is None:
            raise InputError(f"no dataset named {filters.dataset!r}")
        params = {
            "user_id": user_id,
            "status": filters.status,
            "now": now,
            "dataset_id": dataset_id,
            "source": filters.source,
            "low": filters.min_consistency,
            "high": filters.max_consistency,
        }
        shape = (
            filters.dataset is not None,
            filters.source is not None,
            filters.min_consistency is not None,
            filters.max_consistency is not None,
        )
        still_eligible, picks = _queue_statements(shape, not is_sqlite(engine))
        item_id = None if held is None else connection.scalar(still_eligible, {**params, "held": held})
        for pick in picks:
            if item_id is not None:
                break
            item_id = connection.scalar(pick, params)
        if item_id is None:
            connection.execute(_RELEASE, {"user_id": user_id})
            return None
        connection.execute(_CLAIM, {"item_id": item_id, "user_id": user_id, "until": now + claim_ttl})
        return _item_view(connection, item_id, user_id)


def get_item(engine: Engine, item_id: int, user: str | None = None) -> ItemView:
    """Reload one item (after a version conflict, or to show it to an admin); claims nothing."""
    with read_connection(engine) as connection:
        user_id = user_ref(connection, user).id if user is not None else None
        return _item_view(connection, item_id, user_id)


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


def _item_view(connection: Connection, item_id: int, user_id: int | None) -> ItemView:
    """Build the view of an item inside an open transaction."""
    row = connection.execute(_VIEW, {"item_id": item_id}).first()
    if row is None:
        raise InputError(f"no item with id {item_id}")
    candidates = list(row.candidates)
    texts = {
        docid: (text, title)
        for docid, text, title in connection.execute(_PASSAGES, {"dataset_id": row.dataset_id, "docids": candidates})
    }
    labelled = row.source is not None
    teacher = list(row.ranking) if labelled else candidates
    prompt_ids = {docid: index + 1 for index, docid in enumerate(candidates)}
    grades = row.qrels or {}
    passages = [
        PassageView(docid, texts[docid][0], texts[docid][1], grades.get(docid), prompt_ids[docid]) for docid in teacher
    ]
    mine, deciders = None, set()
    if labelled:
        for review in connection.execute(_LABEL_REVIEWS, {"item_id": item_id, "label_id": row.label_id}):
            if review.annotator_id == user_id and review.decision != "skip":
                mine = review  # the latest, as they come in id order
            if not review.adjudication and review.decision in COUNTED_DECISIONS:
                deciders.add(review.annotator_id)
    current = mine.ranking if mine and mine.ranking else row.final_ranking or teacher
    return ItemView(
        item_id=row.id,
        item_key=f"{row.dataset}/{row.qid}",
        dataset=row.dataset,
        qid=row.qid,
        query=row.query,
        status=row.status,
        version=row.version,
        required_reviews=row.required_reviews,
        reviews_done=len(deciders),
        label_id=row.label_id,
        source=row.source,
        model=row.model,
        reasoning=row.reasoning,
        consistency=row.consistency,
        kept=row.kept,
        teacher_ranking=teacher,
        initial_ranking=candidates,
        passages=passages,
        current_ranking=list(current),
        current_reasoning=mine.reasoning if mine else None,
        my_decision=mine.decision if mine else None,
        claimed_by=row.claimer,
        claimed_until=row.claimed_until,
        raw_output=row.raw_output,
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
