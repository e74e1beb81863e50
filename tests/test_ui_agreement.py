"""The admin Agreement tab through gradio_client against the running app: the pair table, the
server-side admin check, and adjudication of the conflicts seeded in ui_fixtures (dataset `agree`)."""

from __future__ import annotations

import pytest
from gradio_client import Client
from ui_fixtures import ADMIN, AGREE_USERS, PASSWORD, review_app  # noqa: F401 (fixture)

from db.agreement import agreement
from db.queue import get_item
from ui.agreement import ITEM_OUTPUTS, SETTLE_OUTPUTS, TABLE_OUTPUTS

FIRST, SECOND = AGREE_USERS


@pytest.fixture(scope="module")
def admin(review_app):
    url, _ = review_app
    return Client(url, auth=(ADMIN, PASSWORD), verbose=False)


def _named(names, out) -> dict:
    return dict(zip(names, out, strict=True))


def _settle(client, *values) -> dict:
    return _named(SETTLE_OUTPUTS, client.predict(*values, api_name="/adjudicate"))


def _conflict_id(engine, qid: str) -> int:
    return next(d.item_id for d in agreement(engine, "agree").disagreements if d.item_key == f"agree/{qid}")


def test_pair_table_equals_the_db_report_and_names_are_escaped(admin, review_app):
    _, engine = review_app
    out = _named(TABLE_OUTPUTS, admin.predict("agree", api_name="/agreement"))
    pairs = agreement(engine, "agree").pairs
    rows = out["pairs"]["data"]
    assert len(rows) == len(pairs) == 1
    for row, pair in zip(rows, pairs):
        assert row[:3] == [pair.annotator_a, pair.annotator_b, pair.items]
        assert pair.items == 3 and pair.same_outcome == pytest.approx(1 / 3)
        assert [float(x) for x in row[3:]] == pytest.approx([pair.same_outcome, pair.kendall_tau, pair.rbo], abs=1e-4)
    html = out["conflicts"]
    assert "agree/q0" in html and "agree/q2" in html and "agree/q1" not in html
    assert "ann&lt;i&gt;2" in html and SECOND not in html
    assert "rejected" in html and "2 item(s) with disagreement" in out["message"]


def test_an_annotator_is_refused_on_the_server(review_app):
    url, engine = review_app
    annotator = Client(url, auth=(FIRST, PASSWORD), verbose=False)
    item_id = _conflict_id(engine, "q0")
    before = get_item(engine, item_id)
    with pytest.raises(Exception, match="admins only"):
        annotator.predict("agree", api_name="/agreement")
    with pytest.raises(Exception, match="admins only"):
        annotator.predict(str(item_id), api_name="/conflict_item")
    with pytest.raises(Exception, match="admins only"):
        annotator.predict(str(item_id), before.version, "teacher", "", "", api_name="/adjudicate")
    after = get_item(engine, item_id)
    assert (after.status, after.version) == (before.status, before.version)


def test_admin_takes_one_annotators_order(admin, review_app):
    _, engine = review_app
    item_id = _conflict_id(engine, "q0")
    second_order = next(d for d in agreement(engine, "agree").disagreements if d.item_id == item_id).rankings[SECOND]
    shown = _named(ITEM_OUTPUTS, admin.predict(str(item_id), api_name="/conflict_item"))
    view = get_item(engine, item_id)
    assert int(shown["version"]) == view.version and view.status == "conflict"
    assert (
        "agree question 0" in shown["item_view"]
        and "ann&lt;i&gt;2" in shown["orders"]
        and "Kendall τ" in shown["orders"]
    )
    stale = _settle(admin, str(item_id), view.version - 1, f"annotator:{SECOND}", "", "")
    assert "saved by someone else" in stale["message"] and get_item(engine, item_id).status == "conflict"
    done = _settle(admin, str(item_id), view.version, f"annotator:{SECOND}", "", "")
    assert "Adjudicated" in done["message"], done["message"]
    after = get_item(engine, item_id)
    assert after.status == "fixed" and after.current_ranking == second_order != view.teacher_ranking
    assert int(done["version"]) == after.version == view.version + 1


def test_admin_rejects_only_with_a_note_or_types_an_order(admin, review_app):
    _, engine = review_app
    item_id = _conflict_id(engine, "q2")
    view = get_item(engine, item_id)
    refused = _settle(admin, str(item_id), view.version, "reject", "", "")
    assert "needs a reason" in refused["message"]
    refused = _settle(admin, str(item_id), view.version, f"annotator:{SECOND}", "", "")
    assert "rejected this item" in refused["message"]
    assert get_item(engine, item_id).status == "conflict"
    typed = [view.teacher_ranking[2]] + view.teacher_ranking[:2] + view.teacher_ranking[3:]
    done = _settle(admin, str(item_id), view.version, "typed", " > ".join(typed), "neither was right")
    assert "Adjudicated" in done["message"], done["message"]
    after = get_item(engine, item_id)
    assert (after.status, after.current_ranking) == ("fixed", typed)
    again = _settle(admin, str(item_id), after.version, "reject", "", "off topic after all")
    assert get_item(engine, item_id).status == "rejected", again["message"]
