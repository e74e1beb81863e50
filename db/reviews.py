"""Saving decisions: optimistic versions, append-only reviews, overlap, adjudication.

A save names the item version the reviewer loaded; `UPDATE item … WHERE id = ? AND version = ?`
either bumps it or touches no row, in which case someone else saved first and nothing at all is
written (VersionConflict), so no edit is ever overwritten silently. Each decision is a new Review
row. An item that needs N reviews is decided when N people have accepted, fixed or rejected its
current label: the same outcome from all of them resolves it, anything else marks it `conflict`
for an admin to adjudicate. Two decisions agree when they lead to the same result: accept and a
"fix" that keeps the teacher's order agree; two fixes agree only on the same order.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, insert, select, update

from db.engine import utcnow, write_connection
from db.models import COUNTED_DECISIONS, DECISIONS, Item, Label, Review, User
from db.users import UserRef, user_ref
from reasonrank.io import InputError
from reasonrank.metrics import kendall_tau

FINAL_DECISIONS = ("accept", "fix", "reject")


class VersionConflict(Exception):
    """Another save reached the item first; nothing was written. Reload and decide again."""

    def __init__(self, message: str, current_version: int):
        super().__init__(message)
        self.current_version = current_version


@dataclass(frozen=True)
class ReviewResult:
    review_id: int
    item_id: int
    decision: str
    status: str  # the item's status after this save
    version: int  # the item's new version
    reviews_done: int
    required_reviews: int
    kendall_tau: float | None  # fix: the new order against the label's order
    moved_ids: list[str] = field(default_factory=list)  # fix: docids whose rank changed


def outcome(review, teacher: list[str]) -> tuple | None:
    """What a decision (a Review, or a row with its decision and ranking) amounts to: ('reject',)
    or ('rank', order); a skip amounts to nothing."""
    if review.decision == "reject":
        return ("reject",)
    if review.decision == "accept":
        return ("rank", tuple(teacher))
    if review.decision == "fix":
        return ("rank", tuple(review.ranking))
    return None


# A save runs as Core statements on the tables, built once with bound parameters: its SQL takes
# microseconds, while building ORM statements and flushing ORM objects cost ~4 ms per save.
_ITEM, _LABEL, _REVIEW, _USER = Item.__table__, Label.__table__, Review.__table__, User.__table__
_BUMP = (
    update(_ITEM)
    .where(_ITEM.c.id == bindparam("item_id"), _ITEM.c.version == bindparam("expected"))
    .values(version=_ITEM.c.version + 1, updated_at=bindparam("now"))
)
_UPDATE_ITEM = update(_ITEM).where(_ITEM.c.id == bindparam("locked_id"))  # SET: the parameters' columns
_INSERT_REVIEW = insert(_REVIEW)
_VERSION = select(_ITEM.c.version).where(_ITEM.c.id == bindparam("item_id"))
# The item row under the write lock, with its current label's id, ranking and reasoning.
_LOCKED = (
    select(
        _ITEM.c.id,
        _ITEM.c.label_id,
        _ITEM.c.candidates,
        _ITEM.c.status,
        _ITEM.c.version,
        _ITEM.c.required_reviews,
        _ITEM.c.claimed_by,
        _ITEM.c.claimed_until,
        _LABEL.c.id.label("label_row_id"),
        _LABEL.c.ranking.label("label_ranking"),
        _LABEL.c.reasoning.label("label_reasoning"),
    )
    .select_from(_ITEM.outerjoin(_LABEL, _LABEL.c.id == _ITEM.c.label_id))
    .where(_ITEM.c.id == bindparam("item_id"))
)
_HOLDER = select(_USER.c.name).where(_USER.c.id == bindparam("user_id"))
_DECIDING = (
    select(_REVIEW.c.id, _REVIEW.c.annotator_id, _REVIEW.c.decision, _REVIEW.c.ranking, _REVIEW.c.reasoning)
    .where(
        _REVIEW.c.item_id == bindparam("item_id"),
        _REVIEW.c.label_id == bindparam("label_id"),
        _REVIEW.c.adjudication.is_(False),
        _REVIEW.c.decision.in_(COUNTED_DECISIONS),
    )
    .order_by(_REVIEW.c.id)
)


@dataclass
class _Locked:
    """The item row read under the write lock (its version already bumped), and what this save
    changes of it: `changes` are written in one UPDATE at the end."""

    id: int
    label_id: int | None
    candidates: list[str]
    status: str
    version: int
    required_reviews: int
    claimed_by: int | None
    claimed_until: datetime | None
    changes: dict = field(default_factory=dict)

    def set(self, **values) -> None:
        self.changes.update(values)
        if "status" in values:
            self.status = values["status"]


_LOCKED_FIELDS = tuple(f.name for f in fields(_Locked) if f.name != "changes")  # columns of _LOCKED


@dataclass(frozen=True)
class _Saved:
    """The review this save appended."""

    id: int
    annotator_id: int
    decision: str
    ranking: list[str] | None
    reasoning: str | None
    kendall_tau: float | None


def _check_request(
    item: _Locked, label, decision: str, ranking: list[str] | None, note: str | None, allowed: tuple[str, ...]
) -> None:
    if decision not in allowed:
        raise InputError(f"decision {decision!r} is not one of {', '.join(allowed)}")
    if decision == "fix":
        if not ranking:
            raise InputError("a fix needs the new ranking (a list of docids, best first)")
        if len(ranking) != len(set(ranking)) or set(ranking) != set(item.candidates):
            raise InputError(
                f"the fixed ranking must order each of the item's {len(item.candidates)} passages exactly once"
            )
    elif ranking is not None and (decision != "accept" or list(ranking) != list(label.ranking)):
        raise InputError(f"a ranking goes with 'fix' only, not with {decision!r}")
    if decision == "reject" and not (note or "").strip():
        raise InputError("a reject needs a reason in the note")


def _claim_version(connection: Connection, item_id: int, expected_version: int) -> None:
    bumped = connection.execute(_BUMP, {"item_id": item_id, "expected": expected_version, "now": utcnow()})
    if bumped.rowcount == 1:
        return
    current = connection.scalar(_VERSION, {"item_id": item_id})
    if current is None:
        raise InputError(f"no item with id {item_id}")
    raise VersionConflict(
        f"item {item_id} was saved by someone else (version {current}, you had "
        f"{expected_version}); reload it: your edit was not saved",
        current,
    )


@dataclass(frozen=True)
class _LabelRow:
    id: int
    ranking: list[str]
    reasoning: str | None


def _locked_item(connection: Connection, item_id: int) -> tuple[_Locked, _LabelRow]:
    row = connection.execute(_LOCKED, {"item_id": item_id}).one()._mapping
    if row["label_row_id"] is None:
        raise InputError(f"item {item_id} has no label to review")
    item = _Locked(**{name: row[name] for name in _LOCKED_FIELDS})
    return item, _LabelRow(row["label_row_id"], row["label_ranking"], row["label_reasoning"])


def _record(
    connection: Connection,
    item: _Locked,
    label,
    annotator: UserRef,
    decision: str,
    expected_version: int,
    ranking: list[str] | None,
    reasoning: str | None,
    note: str | None,
    adjudication: bool,
) -> _Saved:
    tau = kendall_tau(ranking, label.ranking) if decision == "fix" else None
    edited = reasoning if decision in ("accept", "fix") and reasoning and reasoning != label.reasoning else None
    fixed = list(ranking) if decision == "fix" else None
    inserted = connection.execute(
        _INSERT_REVIEW,
        {
            "item_id": item.id,
            "label_id": label.id,
            "annotator_id": annotator.id,
            "decision": decision,
            "adjudication": adjudication,
            "ranking": fixed,
            "reasoning": edited,
            "note": (note or "").strip() or None,
            "kendall_tau": tau,
            "item_version": expected_version,
            "created_at": utcnow(),
        },
    )
    if item.claimed_by == annotator.id or adjudication:
        item.set(claimed_by=None, claimed_until=None)
    return _Saved(inserted.inserted_primary_key[0], annotator.id, decision, fixed, edited, tau)


def _resolve(item: _Locked, label, deciding: list) -> None:
    """Set the item's status (and target) from the reviews that decide it."""
    outcomes = {outcome(review, label.ranking) for review in deciding}
    if len(outcomes) > 1:
        item.set(status="conflict", final_ranking=None, final_reasoning=None)
        return
    (result,) = outcomes
    edited = [review.reasoning for review in sorted(deciding, key=lambda r: r.id) if review.reasoning]
    final_reasoning = edited[-1] if edited and result[0] == "rank" else None
    if result[0] == "reject":
        item.set(status="rejected", final_ranking=None, final_reasoning=final_reasoning)
    else:
        order = list(result[1])
        status = "accepted" if order == list(label.ranking) else "fixed"
        item.set(status=status, final_ranking=order, final_reasoning=final_reasoning)


def _latest_per_annotator(connection: Connection, item: _Locked) -> list:
    """Each person's latest accept / fix / reject of the item's current label (no adjudications)."""
    latest: dict[int, Any] = {}
    for review in connection.execute(_DECIDING, {"item_id": item.id, "label_id": item.label_id}):
        latest[review.annotator_id] = review
    return list(latest.values())


def _write_changes(connection: Connection, item: _Locked) -> None:
    if item.changes:
        connection.execute(_UPDATE_ITEM, {"locked_id": item.id, **item.changes})


def _result(item: _Locked, label, review: _Saved, done: int) -> ReviewResult:
    moved = []
    if review.decision == "fix":
        teacher_rank = {docid: index for index, docid in enumerate(label.ranking)}
        moved = [docid for index, docid in enumerate(review.ranking) if teacher_rank[docid] != index]
    return ReviewResult(
        review_id=review.id,
        item_id=item.id,
        decision=review.decision,
        status=item.status,
        version=item.version,
        reviews_done=done,
        required_reviews=item.required_reviews,
        kendall_tau=review.kendall_tau,
        moved_ids=moved,
    )


def _check_claim(connection: Connection, item: _Locked, annotator: UserRef) -> None:
    """Only the holder of a live claim (or an admin) may decide a claimed item; a lapsed claim
    (CLAIM_TTL) holds no one back. Raising here rolls back the version bump: nothing is written."""
    if item.claimed_by in (None, annotator.id) or annotator.role == "admin" or item.claimed_until is None:
        return
    until = item.claimed_until if item.claimed_until.tzinfo else item.claimed_until.replace(tzinfo=timezone.utc)
    if until <= utcnow():
        return
    holder = connection.scalar(_HOLDER, {"user_id": item.claimed_by})
    raise InputError(
        f"item {item.id} is claimed by {holder or 'another reviewer'} until {until:%H:%M} UTC; take the next item instead"
    )


def save_review(
    engine: Engine,
    item_id: int,
    user: str,
    decision: str,
    expected_version: int,
    ranking: list[str] | None = None,
    reasoning: str | None = None,
    note: str | None = None,
) -> ReviewResult:
    """Record one decision (accept | fix | reject | skip) on a pending item.

    Raises VersionConflict when the item moved past `expected_version` (nothing written), and
    InputError for a decision that does not fit the item (bad ranking, reject without a reason,
    an item that is no longer pending).
    """
    with write_connection(engine) as connection:
        annotator = user_ref(connection, user)
        _claim_version(connection, item_id, expected_version)
        item, label = _locked_item(connection, item_id)
        _check_claim(connection, item, annotator)
        _check_request(item, label, decision, ranking, note, DECISIONS)
        if item.status != "pending":
            raise InputError(f"item {item_id} is {item.status}, not pending; an admin can adjudicate it")
        review = _record(
            connection, item, label, annotator, decision, expected_version, ranking, reasoning, note, adjudication=False
        )
        deciding = _latest_per_annotator(connection, item)
        if decision != "skip" and len(deciding) >= item.required_reviews:
            _resolve(item, label, deciding)
        _write_changes(connection, item)
        return _result(item, label, review, len(deciding))


def adjudicate(
    engine: Engine,
    item_id: int,
    admin: str,
    decision: str,
    expected_version: int,
    ranking: list[str] | None = None,
    reasoning: str | None = None,
    note: str | None = None,
) -> ReviewResult:
    """An admin's final decision on an item in any status (usually `conflict`).

    Raises PermissionError for a user who is not an admin, VersionConflict as save_review does.
    """
    with write_connection(engine) as connection:
        judge = user_ref(connection, admin)
        if judge.role != "admin":
            raise PermissionError(f"user {admin!r} is not an admin; only admins adjudicate")
        _claim_version(connection, item_id, expected_version)
        item, label = _locked_item(connection, item_id)
        _check_request(item, label, decision, ranking, note, FINAL_DECISIONS)
        review = _record(
            connection, item, label, judge, decision, expected_version, ranking, reasoning, note, adjudication=True
        )
        _resolve(item, label, [review])
        _write_changes(connection, item)
        return _result(item, label, review, len(_latest_per_annotator(connection, item)))
