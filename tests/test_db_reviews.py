"""Reviews on SQLite and PostgreSQL: version checks, overlap, adjudication, agreement, exports."""

from __future__ import annotations

import pytest
from db_fixtures import *  # noqa: F403  (engine fixtures, users, batch builders)
from db_fixtures import ADMIN, ANNOTATORS, make_batch, make_label
from sqlalchemy import func, select

from db.agreement import agreement
from db.engine import read_session
from db.exports import ExportFilter, list_exports, record_export, reviewed_items
from db.importer import import_batch
from db.models import Review
from db.queue import get_item, next_item
from db.reviews import VersionConflict, adjudicate, save_review
from reasonrank.export import sft_rows, write_export
from reasonrank.io import InputError

ALICE, BOB, CAROL = ANNOTATORS[:3]
TEACHER = ["a", "b", "c", "d"]


def reviews(engine) -> list[Review]:
    with read_session(engine) as session:
        return list(session.scalars(select(Review).order_by(Review.id)))


def one_item(engine, qid: str = "q1", required: int = 1):
    import_batch(engine, make_batch([make_label(qid, TEACHER, relevant=["a"])]), required_reviews=required)
    return next_item(engine, ALICE)


def test_stale_version_is_refused_and_writes_nothing(engine):
    view = one_item(engine)
    saved = save_review(engine, view.item_id, ALICE, "fix", view.version, ranking=["b", "a", "c", "d"])
    assert (saved.status, saved.version) == ("fixed", view.version + 1)
    with pytest.raises(VersionConflict, match="saved by someone else") as conflict:
        save_review(engine, view.item_id, BOB, "reject", view.version, note="off topic")
    assert conflict.value.current_version == view.version + 1
    assert [r.decision for r in reviews(engine)] == ["fix"]
    after = get_item(engine, view.item_id)
    assert (after.version, after.status, after.current_ranking) == (saved.version, "fixed", ["b", "a", "c", "d"])


def test_fix_records_kendall_tau_and_moved_ids(engine):
    view = one_item(engine)
    result = save_review(
        engine,
        view.item_id,
        ALICE,
        "fix",
        view.version,
        ranking=["d", "a", "b", "c"],
        reasoning="d answers it",
        note="d was buried",
    )
    # d jumps over three items: 3 discordant pairs of 6 -> (6 - 2*3) / 6 = 0
    assert result.kendall_tau == pytest.approx(0.0)
    assert result.moved_ids == ["d", "a", "b", "c"]
    (row,) = reviews(engine)
    assert (row.decision, row.ranking, row.reasoning, row.note, row.item_version) == (
        "fix",
        ["d", "a", "b", "c"],
        "d answers it",
        "d was buried",
        view.version,
    )
    assert row.kendall_tau == pytest.approx(0.0) and row.label_id == view.label_id
    mine = get_item(engine, view.item_id, ALICE)
    assert mine.current_ranking == ["d", "a", "b", "c"] and mine.current_reasoning == "d answers it"


def test_bad_decisions_are_input_errors(engine):
    view = one_item(engine)
    cases = [
        ("fix", {"ranking": ["a", "b", "c"]}, "exactly once"),
        ("fix", {"ranking": ["a", "a", "b", "c"]}, "exactly once"),
        ("fix", {}, "needs the new ranking"),
        ("reject", {"note": "  "}, "needs a reason"),
        ("reject", {"ranking": TEACHER, "note": "x"}, "goes with 'fix' only"),
        ("approve", {}, "is not one of"),
    ]
    for decision, extra, message in cases:
        with pytest.raises(InputError, match=message):
            save_review(engine, view.item_id, ALICE, decision, view.version, **extra)
    assert reviews(engine) == [] and get_item(engine, view.item_id).version == view.version
    save_review(engine, view.item_id, ALICE, "accept", view.version)
    with pytest.raises(InputError, match="is accepted, not pending"):
        save_review(engine, view.item_id, BOB, "accept", view.version + 1)


def test_overlap_two_agreeing_reviews_accept(engine):
    view = one_item(engine, required=2)
    first = save_review(engine, view.item_id, ALICE, "accept", view.version)
    assert (first.status, first.reviews_done, first.required_reviews) == ("pending", 1, 2)
    assert next_item(engine, ALICE) is None  # alice has reviewed it already
    second_view = next_item(engine, BOB)
    assert second_view.item_id == view.item_id and second_view.current_ranking == TEACHER
    # a "fix" that keeps the teacher's order agrees with an accept
    second = save_review(engine, view.item_id, BOB, "fix", second_view.version, ranking=TEACHER)
    assert (second.status, second.reviews_done) == ("accepted", 2)
    assert get_item(engine, view.item_id).current_ranking == TEACHER


def test_overlap_disagreement_is_a_conflict_only_an_admin_resolves(engine):
    view = one_item(engine, required=2)
    save_review(engine, view.item_id, ALICE, "fix", view.version, ranking=["b", "a", "c", "d"])
    bob_view = next_item(engine, BOB)
    result = save_review(engine, view.item_id, BOB, "reject", bob_view.version, note="no relevant passage")
    assert result.status == "conflict"
    conflicted = get_item(engine, view.item_id)
    with pytest.raises(PermissionError, match="not an admin"):
        adjudicate(engine, view.item_id, CAROL, "accept", conflicted.version)
    decided = adjudicate(
        engine,
        view.item_id,
        ADMIN,
        "fix",
        conflicted.version,
        ranking=["b", "a", "c", "d"],
        reasoning="b first",
        note="alice was right",
    )
    assert decided.status == "fixed" and decided.version == conflicted.version + 1
    final = get_item(engine, view.item_id)
    assert final.current_ranking == ["b", "a", "c", "d"] and final.status == "fixed"
    rows = reviews(engine)
    assert [(r.decision, r.adjudication) for r in rows] == [("fix", False), ("reject", False), ("fix", True)]


def test_agreement_on_a_hand_case(engine):
    labels = [make_label(q, ["a", "b", "c"], relevant=["a"]) for q in ("q1", "q2")]
    import_batch(engine, make_batch(labels), required_reviews=3)
    votes = {  # item -> annotator -> (decision, ranking)
        "q1": {ALICE: ("accept", None), BOB: ("fix", ["b", "a", "c"]), CAROL: ("accept", None)},
        "q2": {ALICE: ("accept", None), BOB: ("accept", None), CAROL: ("reject", None)},
    }
    for qid, by_person in votes.items():
        for person, (decision, ranking) in by_person.items():
            view = next_item(engine, person)
            assert view.qid == qid
            save_review(
                engine,
                view.item_id,
                person,
                decision,
                view.version,
                ranking=ranking,
                note="not relevant" if decision == "reject" else None,
            )
    report = agreement(engine, "toy")
    pairs = {(p.annotator_a, p.annotator_b): p for p in report.pairs}
    assert set(pairs) == {(ALICE, BOB), (ALICE, CAROL), (BOB, CAROL)}
    # alice-bob: q1 [a,b,c] vs [b,a,c]: tau = (3 - 2*1)/3 = 1/3; RBO p=0.9 ext:
    #   A1=0, A2=1, A3=1 -> 0.1*(0.9 + 0.81) + 1*0.9**3 = 0.9 ; q2 both accept: tau 1, RBO 1
    ab = pairs[(ALICE, BOB)]
    assert (ab.items, ab.same_outcome) == (2, 0.5)
    assert ab.kendall_tau == pytest.approx((1 / 3 + 1) / 2) and ab.rbo == pytest.approx((0.9 + 1) / 2)
    ac = pairs[(ALICE, CAROL)]  # q1 same, q2 accept vs reject (no ranking to compare)
    assert (ac.items, ac.same_outcome, ac.kendall_tau, ac.rbo) == (2, 0.5, 1.0, 1.0)
    bc = pairs[(BOB, CAROL)]
    assert (bc.items, bc.same_outcome) == (2, 0.0) and bc.kendall_tau == pytest.approx(1 / 3)
    assert [(d.item_key, d.status) for d in report.disagreements] == [("toy/q1", "conflict"), ("toy/q2", "conflict")]
    q1 = report.disagreements[0]
    assert q1.decisions == {ALICE: "accept", BOB: "fix", CAROL: "accept"}
    assert q1.rankings[BOB] == ["b", "a", "c"] and q1.rankings[ALICE] == ["a", "b", "c"]
    assert agreement(engine, "other").pairs == []


def test_reviewed_items_feed_exports(engine, tmp_path):
    positives = {"q1": "a", "q2": "b", "q3": "d", "q4": "a"}  # consistency 1.0, 0.63, 0.43, 1.0
    labels = [make_label(q, TEACHER, relevant=[d], reasoning=f"teacher on {q}") for q, d in positives.items()]
    import_batch(engine, make_batch(labels))
    decisions = {
        "q1": ("accept", {}),
        "q2": ("fix", {"ranking": ["c", "b", "a", "d"], "reasoning": "edited"}),
        "q3": ("reject", {"note": "bad teacher"}),
        "q4": ("skip", {}),
    }
    served = []
    while (view := next_item(engine, ALICE)) is not None:
        decision, extra = decisions[view.qid]
        save_review(engine, view.item_id, ALICE, decision, view.version, **extra)
        served.append(view.qid)
    assert served == ["q3", "q2", "q1", "q4"]
    items = reviewed_items(engine)
    assert [(i.item_key, i.decision) for i in items] == [("toy/q1", "accepted"), ("toy/q2", "fixed")]
    accepted, fixed = items
    assert accepted.label.ranking == TEACHER and accepted.label.reasoning == "teacher on q1"
    assert fixed.label.ranking == ["c", "b", "a", "d"] and fixed.label.reasoning == "edited"
    assert fixed.label.source == "human" and fixed.annotators == [ALICE]
    assert [p.text for p in fixed.label.candidates.candidates] == [f"text of {d}" for d in TEACHER]
    assert fixed.label.candidates.query.text == "query q2" and fixed.label.relevant_docids == ["b"]
    assert [i.item_key for i in reviewed_items(engine, ExportFilter(statuses=("fixed",)))] == ["toy/q2"]
    assert reviewed_items(engine, ExportFilter(datasets=("other",))) == []
    assert [i.item_key for i in reviewed_items(engine, ExportFilter(min_consistency=0.9))] == ["toy/q1"]
    with pytest.raises(InputError, match="export statuses"):
        ExportFilter(statuses=("rejected",))

    rows = sft_rows(items)
    written = write_export(rows, tmp_path, "toy sft")
    record = record_export(engine, "toy sft", "sft", ExportFilter(), written, created_by=ADMIN)
    assert (record.count, record.sha256, record.created_by) == (2, written.sha256, ADMIN)
    assert record.filter == {
        "statuses": ["accepted", "fixed"],
        "datasets": None,
        "min_consistency": None,
        "agreed_only": False,
    }
    assert [e.sha256 for e in list_exports(engine)] == [written.sha256]
    again = write_export(sft_rows(reviewed_items(engine)), tmp_path, "toy sft again")
    assert again.sha256 == written.sha256  # same reviews, same bytes


def test_agreed_only_leaves_adjudicated_items_out(engine):
    view = one_item(engine, required=2)
    save_review(engine, view.item_id, ALICE, "accept", view.version)
    bob_view = next_item(engine, BOB)
    save_review(engine, view.item_id, BOB, "fix", bob_view.version, ranking=["d", "c", "b", "a"])
    conflicted = get_item(engine, view.item_id)
    adjudicate(engine, view.item_id, ADMIN, "accept", conflicted.version)
    (item,) = reviewed_items(engine)
    assert item.decision == "accepted" and item.annotators == [ALICE, BOB, ADMIN]
    assert reviewed_items(engine, ExportFilter(agreed_only=True)) == []
    with read_session(engine) as session:
        assert session.scalar(select(func.count()).select_from(Review)) == 3
