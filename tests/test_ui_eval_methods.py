"""Two reranking methods side by side in the Eval tab: real `reasonrank eval` jobs with the tiny
local model (Rank1 pointwise, Rank-R1 setwise) on the bundled DL19 set, their costs per query on the
leaderboard checked against the model calls the jobs wrote, the quality–cost frontier drawn from
them, and in headless Chromium the method picker, the command it gives and the frontier as drawn."""

from __future__ import annotations

import html
import json
import os
import time
from collections import defaultdict
from pathlib import Path

import pytest
from browser_fixtures import ARTIFACTS, browser, login, needs_chromium  # noqa: F401 (fixture)
from gradio_client import Client
from ui_fixtures import ADMIN, PASSWORD, review_app  # noqa: F401 (fixture)

from db.jobs import JobView, refresh_job
from db.registry import add_reranker
from ui.evaluate import RESULT_OUTPUTS

METHODS = ("rank1", "rank-r1")
TOP_K, MAX_NEW, PASSAGE = 3, 4, 32
DL19_QUERIES = 43


def _form(method: str) -> list:
    # dataset, BRIGHT dir, tasks, first stage, run file, reranker, window, step, top-k, seed, max new, passage, method
    return ["dl19", "", [], "BM25", "", "tiny-eval", 20, 10, TOP_K, "", str(MAX_NEW), str(PASSAGE), method]


@pytest.fixture(scope="module")
def admin(review_app, tiny_model_dir, tmp_path_factory):
    url, engine = review_app
    saved = os.environ.get("REASONRANK_DATA")
    os.environ["REASONRANK_DATA"] = str(tmp_path_factory.mktemp("eval-methods"))
    add_reranker(engine, "tiny-eval", "transformers", str(tiny_model_dir), {"device": "cpu"}, replace=True)
    yield Client(url, auth=(ADMIN, PASSWORD), verbose=False)
    if saved is None:
        os.environ.pop("REASONRANK_DATA", None)
    else:
        os.environ["REASONRANK_DATA"] = saved


@pytest.fixture(scope="module")
def runs(admin, review_app) -> dict[str, tuple[int, JobView, dict]]:
    """method -> (job id, job view, /eval_results outputs by name). The job is watched through the
    label store (the job view's JSON names the bundled candidate file, which the API will not serve)."""
    admin.predict(api_name="/eval_refresh")
    found = {}
    for method in METHODS:
        job_id = int(admin.predict(*_form(method), f"dl19 tiny {method}", api_name="/eval_start"))
        deadline = time.monotonic() + 300
        while not (view := refresh_job(review_app[1], job_id)).finished:
            assert time.monotonic() < deadline, f"eval job {job_id} still {view.status}"
            time.sleep(0.5)
        assert view.status == "succeeded", view.message
        found[method] = (job_id, view, dict(zip(RESULT_OUTPUTS, admin.predict(job_id, api_name="/eval_results"))))
    return found


def expected_costs(calls_file: str) -> dict[str, float]:
    """Calls, rounds and tokens per query, counted from the written calls.jsonl."""
    per_query: dict[str, list[dict]] = defaultdict(list)
    for line in Path(calls_file).read_text(encoding="utf-8").splitlines():
        call = json.loads(line)
        per_query[call["qid"]].append(call)
    assert len(per_query) == DL19_QUERIES
    return {
        "calls / query": sum(map(len, per_query.values())) / DL19_QUERIES,
        "rounds / query": sum(len({(c["pass_index"], c["position"]) for c in calls}) for calls in per_query.values())
        / DL19_QUERIES,
        "tokens in / query": sum(c["tokens_in"] for calls in per_query.values() for c in calls) / DL19_QUERIES,
        "tokens out / query": sum(c["tokens_out"] for calls in per_query.values() for c in calls) / DL19_QUERIES,
    }


def test_each_method_runs_and_its_costs_reach_the_leaderboard(admin, runs):
    board = admin.predict(api_name="/eval_refresh")[1]
    rows = {row[board["headers"].index("job")]: dict(zip(board["headers"], row)) for row in board["data"]}
    for method, (job_id, view, outputs) in runs.items():
        reproduce = view.outputs["reproduce"]
        assert reproduce["method"] == method and reproduce["method_source"].startswith("github.com/")
        assert f"--method {method}" in " ".join(view.argv)
        assert f"method {method}" in html.unescape(outputs["reproduce"])  # inert text, see ui.render.md_text
        row = rows[job_id]
        assert row["method"] == method and row["dataset"] == "trec-dl19" and row["queries"] == DL19_QUERIES
        assert row["Recall@10"] is not None and 0 <= row["nDCG@10"] <= 100
        expected = expected_costs(outputs["calls_file"])
        for column, value in expected.items():
            digits = 2 if column in ("calls / query", "rounds / query") else 1
            assert row[column] == round(value, digits), column
        assert row["reasoning tokens / query"] >= 0 and row["s / query"] > 0
    # pointwise: one judgement per passage, a second one-token pass for the undecided ones
    rank1 = rows[runs["rank1"][0]]
    assert TOP_K <= rank1["calls / query"] <= 2 * TOP_K and rank1["rounds / query"] in (1.0, 2.0)
    # setwise heapsort over 3 passages with 19 children: all three, then the remaining two
    assert rows[runs["rank-r1"][0]]["calls / query"] == 2.0


def test_frontier_plots_every_reranked_run(admin, runs):
    frontier = admin.predict(api_name="/eval_refresh")[3]
    board = admin.predict(api_name="/eval_refresh")[1]
    rows = [dict(zip(board["headers"], row)) for row in board["data"] if row[board["headers"].index("method")] != "–"]
    assert frontier.count('class="rr-point"') == len(rows) >= 2
    for method in METHODS:
        assert f'data-series="{method}"' in frontier
    row = next(r for r in rows if r["job"] == runs["rank1"][0])
    assert f'data-x="{row["tokens out / query"]:g}" data-y="{row["nDCG@10"]:g}"' in frontier


@needs_chromium
def test_browser_method_picker_and_frontier_as_drawn(admin, runs, review_app, browser):
    from playwright.sync_api import expect

    context, page = login(browser, review_app[0], ADMIN, PASSWORD)
    try:
        page.get_by_role("tab", name="Eval").click()
        expect(page.locator("#rr-eval-cmd")).to_contain_text("reasonrank eval")
        page.locator("#rr-eval-reranker input").click()
        page.get_by_role("option", name="tiny-eval").click()
        page.locator("#rr-eval-method input").click()
        page.get_by_role("option", name="rank-r1 —").first.click()
        expect(page.locator("#rr-eval-cmd")).to_contain_text("--method rank-r1")
        frontier = page.locator("#rr-eval-frontier")
        points = frontier.locator("circle.rr-point")
        expect(points.first).to_be_visible()
        series = set(points.evaluate_all("els => els.map(e => e.dataset.series)"))
        assert set(METHODS) <= series
        xs = [float(x) for x in points.evaluate_all("els => els.map(e => e.dataset.x)")]
        ticks = [
            float(t) for t in frontier.locator("text.rr-tick-x").evaluate_all("els => els.map(e => e.textContent)")
        ]
        assert ticks[0] <= min(xs) and ticks[-1] >= max(xs)
        boxes = [points.nth(i).bounding_box() for i in range(points.count())]
        assert all(box and box["width"] > 0 for box in boxes)  # drawn, not just present
        expect(page.locator("#rr-eval-leaderboard")).to_contain_text("rank-r1")
        ARTIFACTS.mkdir(exist_ok=True)
        page.locator("#rr-eval-frontier").scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / "eval-frontier.png"), full_page=True)
    finally:
        context.close()
