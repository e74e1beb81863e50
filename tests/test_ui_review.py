"""Every Review-tab action through gradio_client against the running app, login included."""

from __future__ import annotations

import pytest
from gradio_client import Client
from ui_fixtures import ADMIN, PASSWORD, review_app  # noqa: F401 (fixture)

from db.queue import get_item
from db.reviews import save_review
from ui.review import ITEM_OUTPUTS, SAVE_OUTPUTS

FILTERS = ("uitest", "pending", "", 0.0, 1.0)


@pytest.fixture(scope="module")
def client(review_app):
    url, _ = review_app
    return Client(url, auth=("rev", PASSWORD), verbose=False)


def _item(out) -> dict:
    """/next_item's and /open_item's outputs by name."""
    return dict(zip(ITEM_OUTPUTS, out, strict=True))


def _next(client, filters=FILTERS) -> dict:
    out = _item(client.predict(*filters, api_name="/next_item"))
    assert out["item_id"], out["message"]
    return out


def _save(client, decision, out, order=None, reasoning=None, note="") -> dict:
    saved = client.predict(
        out["item_id"],
        out["version"],
        order if order is not None else out["order"],
        reasoning if reasoning is not None else out["reasoning"],
        note,
        api_name=f"/{decision}",
    )
    return dict(zip(SAVE_OUTPUTS, saved, strict=True))


def test_wrong_password_is_refused(review_app):
    url, _ = review_app
    with pytest.raises(Exception, match="(?i)login|credentials|auth"):
        Client(url, auth=("rev", "not the password"), verbose=False)


def test_queue_serves_lowest_consistency_first_and_accept_resolves(client, review_app):
    _, engine = review_app
    out = _next(client)
    view = get_item(engine, int(out["item_id"]))
    # the fixture's last item has its only relevant passage lowest: the least consistent label
    assert view.qid == "q7" and view.consistency is not None
    assert "uitest question 7" in out["item_view"] and "rr-mention" in out["item_view"]
    assert out["order"].split(", ") == view.teacher_ranking
    saved = _save(client, "accept", out)
    assert "Saved accept" in saved["message"]
    after = get_item(engine, int(out["item_id"]))
    assert after.status == "accepted" and after.version == int(out["version"]) + 1 == int(saved["version"])
    nxt = _next(client)
    assert int(nxt["item_id"]) != int(out["item_id"])
    assert get_item(engine, int(nxt["item_id"])).consistency >= view.consistency


def test_fix_stores_the_new_order_and_shows_the_diff(client, review_app):
    _, engine = review_app
    out = _next(client)
    teacher = out["order"].split(", ")
    new_order = [teacher[2], teacher[0], teacher[1]] + teacher[3:]
    saved = _save(client, "fix", out, order=" > ".join(new_order), reasoning="edited: [3] is best")
    assert "Saved fix" in saved["message"], saved["message"]
    assert "Kendall τ" in saved["diff"] and teacher[2] in saved["diff"]
    view = get_item(engine, int(out["item_id"]), "rev")
    assert view.status == "fixed"
    assert view.current_ranking == new_order
    assert view.current_reasoning == "edited: [3] is best"


def test_fix_ranking_endpoint_takes_a_plain_list(client, review_app):
    _, engine = review_app
    out = _next(client)
    new_order = list(reversed(out["order"].split(", ")))
    result = client.predict(int(out["item_id"]), int(out["version"]), new_order, "", api_name="/fix_ranking")
    assert result["status"] == "fixed" and result["kendall_tau"] == pytest.approx(-1.0)
    assert get_item(engine, int(out["item_id"])).current_ranking == new_order


def test_reject_needs_a_reason_then_stores_it(client, review_app):
    _, engine = review_app
    out = _next(client)
    refused = _save(client, "reject", out, note="")
    assert "needs a reason" in refused["message"]
    assert get_item(engine, int(out["item_id"])).status == "pending"
    saved = _save(client, "reject", out, note="passages are off topic")
    assert "Saved reject" in saved["message"]
    assert get_item(engine, int(out["item_id"])).status == "rejected"


def test_skip_moves_on_without_deciding(client, review_app):
    _, engine = review_app
    out = _next(client)
    saved = _save(client, "skip", out)
    assert "Saved skip" in saved["message"]
    assert get_item(engine, int(out["item_id"])).status == "pending"
    assert int(_next(client)["item_id"]) != int(out["item_id"])


def test_version_conflict_is_reported_and_nothing_is_overwritten(client, review_app):
    _, engine = review_app
    out = _next(client)
    item_id, stale = int(out["item_id"]), int(out["version"])
    save_review(engine, item_id, ADMIN, "accept", stale)  # only an admin may decide an item someone holds
    before = get_item(engine, item_id)
    new_order = list(reversed(out["order"].split(", ")))
    saved = _save(client, "fix", out, order=", ".join(new_order))
    assert "saved by someone else" in saved["message"] and "still on screen" in saved["message"]
    with pytest.raises(Exception, match="saved by someone else"):
        client.predict(item_id, stale, new_order, "", api_name="/fix_ranking")
    after = get_item(engine, item_id)
    assert (after.status, after.version, after.current_ranking) == ("accepted", before.version, before.teacher_ranking)


def test_open_item_shows_a_model_label_without_reasoning_as_text(client, review_app):
    _, engine = review_app
    out = _next(client, ("xss", "pending", "", 0.0, 1.0))
    assert "no reasoning text" in out["item_view"] and "<script>" not in out["item_view"]
    # the passage text travels as data to the list, whose template escapes it (the browser test)
    assert any(item["text"].startswith("<script>") for item in out["drag"])
    reopened = _item(client.predict(out["item_id"], api_name="/open_item"))
    assert int(reopened["item_id"]) == int(out["item_id"])
    assert "Saved skip" in _save(client, "skip", reopened)["message"]  # releases the claim for the browser test


def test_render_escapes_text_and_links_mentions():
    from ui.render import diff_html, moved_ids, reasoning_html

    out = reasoning_html("<b>x</b> [2] beats [1]; [9] is not a passage", {1: "d1", 2: 'd"2'})
    assert "&lt;b&gt;x&lt;/b&gt;" in out and "<b>" not in out
    assert 'data-docid="d&quot;2"' in out and out.count("rr-mention") == 2 and "[9]" in out
    assert "no reasoning text" in reasoning_html(None, {}, "rankvicuna")
    # without reasoning, a recorded answer is shown as what it is, its [n] linked
    answer = reasoning_html(None, {1: "d1", 2: "d2"}, "RankVicuna-7B", "[2] > [1] <i>")
    assert "no reasoning text" in answer and "recorded answer" in answer
    assert answer.count("rr-mention") == 2 and "&lt;i&gt;" in answer
    assert moved_ids(["a", "b", "c", "d"], ["b", "a", "c", "d"]) == ["b", "a"]
    assert "-1.000" in diff_html(["a", "b", "c"], ["c", "b", "a"])


def test_empty_item_fields_mean_not_set(client):
    """Nothing loaded: the id and version boxes are empty, and an action says what to do first."""
    opened = _item(client.predict("", api_name="/open_item"))
    assert "type an item id first" in opened["message"]
    typed = _item(client.predict("seven", api_name="/open_item"))
    assert "item id" in typed["message"] and "not a number" in typed["message"]
    saved = dict(zip(SAVE_OUTPUTS, client.predict("", "", "", "", "", api_name="/accept"), strict=True))
    assert "load an item first" in saved["message"]
    unknown = _item(client.predict("no-such-dataset", "pending", "", 0.0, 1.0, api_name="/next_item"))
    assert "no dataset named 'no-such-dataset'" in unknown["message"]
    empty = _item(client.predict("uitest", "conflict", "", 0.0, 1.0, api_name="/next_item"))
    assert (empty["item_id"], empty["version"]) == ("", "") and "queue is empty" in empty["message"]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (("uitest", "done", "", 0.0, 1.0), "queue status 'done' is not one of"),
        (("uitest", "pending", "robot", 0.0, 1.0), "label source 'robot' is not one of"),
        (("uitest", "pending", "", "abc", 1.0), "min consistency: 'abc' is not a number"),
        (("uitest", "pending", "", 0.0, 7), "max consistency: 7 is more than 1"),
        (("uitest", "pending", "", None, None), "Claimed uitest/"),
    ],
    ids=["status", "source", "min consistency", "max consistency", "empty range"],
)
def test_next_item_checks_filters_a_raw_caller_sends(client, filters, expected):
    """The review events skip Gradio's component preprocessing (no Dropdown choice check, no
    Number conversion), so the handler itself refuses what the form could not have sent."""
    out = _item(client.predict(*filters, api_name="/next_item"))
    assert expected in out["message"]
