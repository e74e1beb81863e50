"""The Arena tab of the running app: through gradio_client (a tiny local transformers model and a
real local OpenAI-compatible server on a DL19 query; a dead endpoint; the registry panel) and in
headless Chromium (two columns, reasoning on screen before the run ends, a screenshot)."""

from __future__ import annotations

import socket

import pytest
import pytrec_eval
from browser_fixtures import ARTIFACTS, browser, login, needs_chromium  # noqa: F401 (fixture)
from gradio_client import Client
from openai_server import Answer, OpenAIServer
from scripted_backend import window_passages
from ui_fixtures import ADMIN, PASSWORD, review_app  # noqa: F401 (fixture)

from db.registry import add_reranker, list_rerankers
from reasonrank.arena_lanes import bm25_ranking
from ui.arena_queries import SAMPLES, chosen_list

DL19 = next(iter(SAMPLES))
THOUGHT = (
    "Passage [1] mentions the words of the query but not its intent, and the last passages "
    "answer it best, so the order runs from the back of the window to the front."
)
SETTINGS = {"top_k": 10, "window": 10, "step": 5, "max_new_tokens": 12}


def reverse_responder(messages, request):
    n = len(window_passages(messages))
    return Answer(
        content="<answer>" + " > ".join(f"[{i}]" for i in range(n, 0, -1)) + "</answer>", reasoning_content=THOUGHT
    )


@pytest.fixture(scope="module")
def endpoint():
    with OpenAIServer(responder=reverse_responder) as server:
        yield server


@pytest.fixture(scope="module")
def arena(review_app, endpoint, tiny_model_dir):
    """(url, engine) with three rerankers registered: the tiny model, the live server, a dead one."""
    url, engine = review_app
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/v1"
    add_reranker(engine, "tiny", "transformers", str(tiny_model_dir), {"device": "cpu"}, replace=True)
    add_reranker(
        engine, "endpoint", "openai", "test-model", {"base_url": endpoint.base_url, "timeout_s": 10.0}, replace=True
    )
    add_reranker(engine, "down", "openai", "test-model", {"base_url": dead, "timeout_s": 2.0}, replace=True)
    return url, engine


@pytest.fixture(scope="module")
def client(arena):
    return Client(arena[0], auth=("rev", PASSWORD), verbose=False)


@pytest.fixture(scope="module")
def dl19_query():
    """The first bundled DL19 query with a relevant passage in its top 10."""
    from ui.arena_queries import sample_lists

    return next(cl for cl in sample_lists(DL19) if any(cl.qrels.get(d, 0) > 0 for d in cl.docids[:10]))


def run(client, names, qid="", source=DL19, pace="at once", **paste):
    board, results, _, message, _ = client.predict(
        source,
        qid,
        paste.get("query", ""),
        paste.get("passages", ""),
        paste.get("qrels", ""),
        names,
        SETTINGS["top_k"],
        SETTINGS["window"],
        SETTINGS["step"],
        SETTINGS["max_new_tokens"],
        pace,
        api_name="/arena_run",
    )
    return board, results, message


def trec_figures(ranking, qrels, rel_level=1):
    """trec_eval's figures; `rel_level` as `trec_eval -l` (DL19 is scored with -l 2)."""
    evaluator = pytrec_eval.RelevanceEvaluator(
        {"q": qrels}, {"ndcg_cut.10", "recall.10", "recip_rank"}, relevance_level=rel_level
    )
    top10 = ranking[:10]  # MRR@10: the reciprocal rank within the top 10
    scores = evaluator.evaluate({"q": {d: float(len(ranking) - i) for i, d in enumerate(ranking)}})["q"]
    cut = evaluator.evaluate({"q": {d: float(len(top10) - i) for i, d in enumerate(top10)}})["q"]
    return {"ndcg@10": scores["ndcg_cut_10"], "recall@10": scores["recall_10"], "mrr@10": cut["recip_rank"]}


def test_two_rerankers_fill_their_columns_with_core_metrics(client, endpoint, dl19_query):
    endpoint.reset()
    board, results, message = run(client, ["tiny", "endpoint"], dl19_query.query.qid)
    tiny, served = results["lanes"]
    assert message.startswith("Done") and "Failed" not in message
    assert (tiny["status"], served["status"]) == ("done", "done"), (tiny["error"], served["error"])
    top10 = dl19_query.docids[:10]
    assert results["docids"] == top10 and served["ranking"] == top10[::-1]
    assert sorted(tiny["ranking"]) == sorted(top10)
    for lane in (tiny, served):
        assert lane["metrics"] == pytest.approx(trec_figures(lane["ranking"], dl19_query.qrels, 2), abs=1e-9)
        assert lane["tokens_out"] > 0 and lane["seconds"] > 0 and lane["windows"] == 1
    assert endpoint.chat_requests[0].body["stream"] is True
    assert board.count('class="ar-lane"') == 2 and "Passage [1] mentions" in board
    assert f'data-docid="{top10[-1]}"' in board and "ar-gold" in board  # judged passages shaded


def test_dead_endpoint_shows_its_error_and_the_other_completes(client, dl19_query):
    board, results, message = run(client, ["down", "BM25"], dl19_query.query.qid)
    down, bm25 = results["lanes"]
    assert down["status"] == "error" and "cannot connect" in down["error"] and down["ranking"] is None
    assert bm25["status"] == "done" and bm25["ranking"] == bm25_ranking(
        chosen_list(DL19, dl19_query.query.qid, "", "", "", 10), 10
    )
    assert "Failed: down" in message and "cannot connect" in board


def test_pasted_passages_and_refused_inputs(client, dl19_query):
    passages = "a\tgoldfish grow larger in big ponds\nb\tcats sleep all day\nc\tgoldfish"
    _, results, _ = run(
        client,
        ["BM25", "endpoint"],
        source="Paste your own",
        query="do goldfish grow",
        passages=passages,
        qrels="a 2\nb 0",
    )
    bm25, served = results["lanes"]
    assert bm25["ranking"][0] == "a" and served["ranking"] == ["c", "b", "a"]
    assert bm25["metrics"]["ndcg@10"] == pytest.approx(1.0) and served["metrics"]["recall@10"] == 1.0
    qid = dl19_query.query.qid
    _, _, message = run(client, ["BM25"], qid)
    assert "pick 2 to 4 rerankers, got 1" in message
    _, _, message = run(client, ["BM25", "endpoint"], "no-such-qid")
    assert "no query 'no-such-qid'" in message
    _, _, message = run(client, ["BM25", "nobody"], qid)
    assert "no reranker named 'nobody'" in message
    _, _, message = run(client, ["BM25", "endpoint"], source="Paste your own", query="q", passages="only one")
    assert "at least two passages" in message


def test_bright_mini_query_keeps_excluded_ids_out(client, test_data, monkeypatch):
    from ui.arena_queries import BRIGHT_MINI, sample_lists

    lists = sample_lists(BRIGHT_MINI)
    assert len(lists) == 194 and all(cl.dataset == "theoremqa_questions" for cl in lists)
    query = next(cl for cl in lists if cl.excluded_ids and any(cl.qrels.get(d) for d in cl.docids[:10]))
    _, results, message = run(client, ["BM25", "endpoint"], query.query.qid, source=BRIGHT_MINI)
    assert message.startswith("Done"), message
    for lane in results["lanes"]:
        assert not set(lane["ranking"]) & set(query.excluded_ids)
        assert lane["metrics"] == pytest.approx(trec_figures(lane["ranking"], query.qrels, 1), abs=1e-9)


def test_registry_panel_is_for_admins_and_checks_options(arena):
    url, engine = arena
    admin = Client(url, auth=(ADMIN, PASSWORD), verbose=False)
    form = ("http://h:8000/v1", "RR_TEST_UNSET_KEY", "", "", "")  # base URL, key variable, device, adapter, dtype
    table, message = admin.predict("served-7b", "openai", "reasonrank-7B", *form, api_name="/add_reranker")
    assert message.startswith("✓") and "served-7b" in [row.name for row in list_rerankers(engine)]
    assert "RR_TEST_UNSET_KEY is not set" in message  # the key variable is unset where the app runs
    row = next(row for row in table["data"] if row[0] == "served-7b")
    assert '"api_key_env": "RR_TEST_UNSET_KEY"' in row[3] and "is not set" in row[5]
    _, message = admin.predict("bad", "transformers", "m", "", "", "", "", "float77", api_name="/add_reranker")
    assert message.startswith("✓")  # dtype is passed through to the backend, which checks it on load
    admin.predict("bad", api_name="/remove_reranker")
    for name in ("BM25", "RankVicuna-7B (recorded)"):
        _, message = admin.predict(name, "openai", "m", "", "", "", "", "", api_name="/add_reranker")
        assert "builtin" in message
    with pytest.raises(Exception, match="not an admin"):
        Client(url, auth=("rev", PASSWORD), verbose=False).predict(
            "x", "openai", "m", "", "", "", "", "", api_name="/add_reranker"
        )
    _, message = admin.predict("served-7b", api_name="/remove_reranker")
    assert message.startswith("✓") and "served-7b" not in [row.name for row in list_rerankers(engine)]


@needs_chromium
def test_browser_streams_reasoning_before_the_run_ends(arena, endpoint, browser):
    from playwright.sync_api import expect

    endpoint.reset()
    endpoint.stream_delay_s = 0.15  # ~20 chunks: the run lasts a few seconds
    url, _ = arena
    context, page = login(browser, url, "web", PASSWORD)
    try:
        expect(page.locator("#arena-run")).to_be_visible(timeout=20_000)
        page.locator("#arena-rerankers .remove-all").click()  # the picker starts with BM25 + a recording
        picker = page.locator("#arena-rerankers input")
        for name in ("tiny", "endpoint"):
            picker.click()
            picker.fill(name)
            picker.press("Enter")
        for elem_id, value in (
            ("arena-topk", "10"),
            ("arena-window", "10"),
            ("arena-step", "5"),
            ("arena-max-tokens", "12"),
        ):
            page.locator(f"#{elem_id} input").fill(value)
        page.locator("#arena-run").click()
        # reasoning text is on screen while its column still says "running"
        page.wait_for_function(
            """() => { const lane = document.querySelector('#arena-board .ar-lane[data-lane="endpoint"]');
                       return lane && lane.querySelector('.ar-running')
                              && lane.querySelector('.ar-live').textContent.includes('Passage [1]'); }""",
            timeout=30_000,
        )
        expect(page.locator("#arena-message")).to_contain_text("Done", timeout=60_000)
        expect(page.locator("#arena-board .ar-lane")).to_have_count(2)
        expect(page.locator("#arena-board .ar-ranks thead th")).to_have_count(4)  # #, first stage, 2 rerankers
        expect(page.locator('#arena-board .ar-lane[data-lane="endpoint"] .ar-live')).to_contain_text("</answer>")
        page.get_by_text("Window inspector").click()  # filled for the first reranker when the run ends
        expect(page.locator("#arena-inspector .ar-window")).to_have_count(1)
        expect(page.locator("#arena-inspector")).to_contain_text("applied permutation")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "arena-two-columns.png"), full_page=True)
        # Gradio's run history is off (ui.LAUNCH_OPTIONS): nothing of the run was copied into browser storage
        stored = page.evaluate("() => Object.keys(localStorage).filter(key => key.startsWith('gradio:run-history'))")
        assert stored == []
    finally:
        endpoint.stream_delay_s = 0.0
        context.close()
