"""Two reranking methods side by side in the Arena tab of the running app, on the tiny local model
and a bundled DL19 query: through gradio_client (each lane's method, its own view, its ranking)
and in headless Chromium as a person picks "tiny · rank1" and "tiny · rank-r1" (a screenshot)."""

from __future__ import annotations

import pytest
from browser_fixtures import ARTIFACTS, browser, login, needs_chromium  # noqa: F401 (fixture)
from gradio_client import Client
from ui_fixtures import PASSWORD, review_app  # noqa: F401 (fixture)

from db.registry import add_reranker
from ui.arena_queries import SAMPLES, sample_lists
from ui.arena_rerankers import reranker_choices

DL19 = next(iter(SAMPLES))
LANES = ["tiny · rank1", "tiny · rank-r1"]
TOP_K, MAX_NEW_TOKENS = 6, 8


@pytest.fixture(scope="module")
def arena(review_app, tiny_model_dir):
    url, engine = review_app
    add_reranker(engine, "tiny", "transformers", str(tiny_model_dir), {"device": "cpu"}, replace=True)
    return url, engine


@pytest.fixture(scope="module")
def dl19_query():
    return next(cl for cl in sample_lists(DL19) if any(cl.qrels.get(d, 0) > 0 for d in cl.docids[:TOP_K]))


def test_method_lanes_are_offered_for_model_entries_only(arena):
    choices = reranker_choices(arena[1], DL19)
    assert set(LANES) <= set(choices) and "tiny" in choices
    assert "tiny · reasonrank" not in choices and not any(c.startswith("BM25 · ") for c in choices)


def test_api_runs_rank1_and_rank_r1_side_by_side(arena, dl19_query):
    client = Client(arena[0], auth=("rev", PASSWORD), verbose=False)
    board, results, _, message, _ = client.predict(
        DL19, dl19_query.query.qid, "", "", "", LANES, TOP_K, 20, 10, MAX_NEW_TOKENS, "at once", api_name="/arena_run"
    )
    assert message.startswith("Done") and "Failed" not in message, message
    pointwise, setwise = results["lanes"]
    assert (pointwise["method"], setwise["method"]) == ("rank1", "rank-r1")
    top = dl19_query.docids[:TOP_K]
    for lane in (pointwise, setwise):
        assert lane["status"] == "done" and sorted(lane["ranking"]) == sorted(top) and lane["tokens_out"] > 0
    assert pointwise["windows"] in (1, 2) and setwise["windows"] >= 1  # rounds: rank1 one or two passes
    assert 'data-view="pointwise"' in board and 'data-view="setwise"' in board
    assert board.count('class="ar-score"') == TOP_K


@needs_chromium
def test_browser_two_methods_show_their_own_views(arena, browser):
    from playwright.sync_api import expect

    context, page = login(browser, arena[0], "web", PASSWORD)
    try:
        expect(page.locator("#arena-run")).to_be_visible(timeout=20_000)
        page.locator("#arena-rerankers .remove-all").click()  # the picker starts with BM25 + a recording
        picker = page.locator("#arena-rerankers input")
        for name in LANES:
            picker.click()
            picker.fill(name)
            picker.press("Enter")
        # the tiny random model never stops by itself: keep its lists and outputs short
        page.locator("#arena-topk input").fill(str(TOP_K))
        page.locator("#arena-max-tokens input").fill(str(MAX_NEW_TOKENS))
        page.locator("#arena-run").click()
        expect(page.locator("#arena-message")).to_contain_text("Done", timeout=120_000)
        expect(page.locator("#arena-message")).not_to_contain_text("Failed")
        board = page.locator("#arena-board")
        pointwise = board.locator('.ar-lane[data-lane="tiny · rank1"]')
        setwise = board.locator('.ar-lane[data-lane="tiny · rank-r1"]')
        expect(pointwise.locator(".ar-method")).to_have_text("rank1 · pointwise")
        expect(setwise.locator(".ar-method")).to_have_text("rank-r1 · setwise")
        expect(pointwise.locator(".ar-score")).to_have_count(TOP_K)
        scores = [float(text) for text in pointwise.locator(".ar-score").all_inner_texts()]
        assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)
        rounds = setwise.locator('[data-view="setwise"] tbody tr')
        expect(rounds.first).to_be_visible()
        assert rounds.count() >= 1 and setwise.locator(".ar-win").count() == rounds.count()
        expect(board.locator(".ar-ranks thead th")).to_have_count(4)  # #, first stage, two methods
        expect(board.locator(".ar-ranks tbody tr")).to_have_count(TOP_K)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "arena-two-methods.png"), full_page=True)
    finally:
        context.close()
