"""The Arena library (reasonrank.arena) with real parts: a tiny local transformers model, a real
OpenAI-compatible HTTP server that streams, BM25, and real TREC DL19 lists and judgments."""

from __future__ import annotations

import socket

import pytest
import pytrec_eval
from openai_server import Answer, OpenAIServer
from scripted_backend import window_passages

from reasonrank.arena import RerankerSpec, judged_metrics, run_arena
from reasonrank.arena_lanes import bm25_ranking, merged_ranking
from reasonrank.io import InputError
from reasonrank.types import CandidateList, GenerationParams, Label
from reasonrank.window import WindowConfig

CONFIG = WindowConfig(window=10, step=5, top_k=10, generation=GenerationParams(max_new_tokens=12))
REASONING = "Passage [1] is off topic while the last passage answers the query directly and well."


def reverse_responder(messages, request):
    """A reasoning model that prefers later passages: answers the window reversed."""
    n = len(window_passages(messages))
    order = " > ".join(f"[{i}]" for i in range(n, 0, -1))
    return Answer(content=f"<answer>{order}</answer>", reasoning_content=REASONING)


@pytest.fixture(scope="module")
def server():
    with OpenAIServer(responder=reverse_responder, stream_delay_s=0.02) as live:
        yield live


@pytest.fixture(scope="module")
def query(dl19) -> CandidateList:
    """A judged DL19 query with relevant passages in its BM25 top 10."""
    return next(cl for cl in dl19 if sum(cl.qrels.get(d, 0) > 0 for d in cl.docids[:10]) >= 3)


def openai_spec(url: str, name: str = "endpoint") -> RerankerSpec:
    return RerankerSpec(name, "openai", "test-model", {"base_url": url, "timeout_s": 5.0, "max_retries": 1})


def pytrec_figures(ranking: list[str], candidates: CandidateList) -> dict[str, float]:
    """trec_eval's nDCG@10, Recall@10 and MRR@10 (the reciprocal rank within the top 10)."""
    evaluator = pytrec_eval.RelevanceEvaluator({"q": candidates.qrels}, {"ndcg_cut.10", "recall.10", "recip_rank"})
    run = {"q": {docid: float(len(ranking) - i) for i, docid in enumerate(ranking)}}
    top10 = {"q": {docid: float(10 - i) for i, docid in enumerate(ranking[:10])}}
    scores, cut = evaluator.evaluate(run)["q"], evaluator.evaluate(top10)["q"]
    return {"ndcg@10": scores["ndcg_cut_10"], "recall@10": scores["recall_10"], "mrr@10": cut["recip_rank"]}


def dead_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def test_transformers_and_openai_stream_side_by_side(query, server, tiny_model_dir):
    server.reset()
    specs = [RerankerSpec("tiny", "transformers", str(tiny_model_dir), {"device": "cpu"}), openai_spec(server.base_url)]
    snapshots = list(run_arena(query, specs, CONFIG, tick_s=0.01))
    tiny, endpoint = snapshots[-1]

    assert [lane.status for lane in snapshots[-1]] == ["done", "done"], [lane.error for lane in snapshots[-1]]
    # streamed: reasoning was on screen while the endpoint lane was still running
    assert any(s[1].status == "running" and s[1].live_reasoning.startswith("Passage [1]") for s in snapshots)
    assert any(s[0].status == "running" and s[0].live_text for s in snapshots)
    assert endpoint.live_reasoning == REASONING and endpoint.first_delta_s < endpoint.seconds
    # the endpoint reverses the window; everything after top_k keeps first-stage order
    assert endpoint.ranking == query.docids[:10][::-1] + query.docids[10:]
    assert sorted(tiny.ranking) == sorted(query.docids)
    for lane in (tiny, endpoint):
        assert lane.metrics == pytest.approx(pytrec_figures(lane.ranking, query), abs=1e-9)
        assert len(lane.calls) == 1 and lane.windows_done == lane.windows_total == 1
        assert lane.tokens_in > 0 and lane.tokens_out > 0
    assert endpoint.calls[0].reasoning == REASONING and endpoint.calls[0].reasons == []
    assert endpoint.tokens_out == len(REASONING.split()) + 10 * 2 - 1  # the server counts words
    assert server.chat_requests[0].body["stream"] is True


def test_dead_endpoint_fails_in_its_own_lane(query):
    specs = [openai_spec(dead_url(), "down"), RerankerSpec("BM25", "bm25")]
    *_, (down, bm25) = run_arena(query, specs, CONFIG, tick_s=0.01)
    assert down.status == "error" and "cannot connect" in down.error and down.ranking is None
    assert bm25.status == "done" and bm25.error is None
    assert bm25.ranking == bm25_ranking(query, 10)
    assert bm25.metrics == pytest.approx(pytrec_figures(bm25.ranking, query), abs=1e-9)


def test_stored_label_lane_and_missing_label(query):
    label = Label(candidates=query, ranking=query.docids[:5][::-1], reasoning="[5] first.", model="teacher-x")
    found = run_arena(
        query,
        [RerankerSpec("stored labels", "labels")],
        CONFIG,
        labels=lambda cl: label if cl.query.qid == query.query.qid else None,
    )
    *_, (lane,) = found
    assert lane.status == "done" and lane.ranking == query.docids[:5][::-1] + query.docids[5:]
    assert lane.reasoning == "[5] first." and "teacher-x" in lane.live_text and "teacher-x" in lane.note
    answered = Label(candidates=query, ranking=query.docids, model="m", raw_output="[1] > [2]")
    *_, (shown,) = run_arena(query, [RerankerSpec("stored labels", "labels")], CONFIG, labels=lambda cl: answered)
    assert shown.live_text == "[1] > [2]"  # the label's recorded model answer, when it has one
    *_, (missing,) = run_arena(query, [RerankerSpec("stored labels", "labels")], CONFIG, labels=lambda cl: None)
    assert missing.status == "error" and missing.error == f"no stored label for this list/{query.query.qid}"


def test_bm25_ranking_reorders_top_k_by_query_terms():
    from reasonrank.types import Passage, Query

    cl = CandidateList(
        Query("q", "goldfish growth"),
        [
            Passage("a", "cats sleep"),
            Passage("b", "goldfish growth in ponds"),
            Passage("c", "a goldfish"),
            Passage("d", "goldfish growth goldfish"),
        ],
    )
    assert bm25_ranking(cl, 3) == ["b", "c", "a", "d"]  # d is beyond top_k: it keeps its place
    assert merged_ranking(["x", "c", "c"], ["a", "b", "c"]) == ["c", "a", "b"]


def test_metrics_drop_excluded_ids_and_need_judgments(query):
    best = max(query.qrels, key=query.qrels.get)
    excluded = CandidateList(query.query, query.candidates, qrels=query.qrels, excluded_ids=[best])
    ranking = [best] + [d for d in query.docids if d != best]
    without = {d: g for d, g in query.qrels.items() if d != best}
    assert judged_metrics(ranking, excluded)["ndcg@10"] == pytest.approx(
        pytrec_figures(ranking[1:], CandidateList(query.query, [], qrels=without))["ndcg@10"]
    )
    assert judged_metrics(ranking, CandidateList(query.query, query.candidates)) == {}


def test_bad_specs_are_refused_with_the_cause(query):
    with pytest.raises(InputError, match="pick 1 to 4"):
        next(run_arena(query, [RerankerSpec(f"r{i}", "bm25") for i in range(5)]))
    (first,) = next(run_arena(query, [RerankerSpec("r", "bm25")]))  # one is within the limits
    assert first.name == "r"
    with pytest.raises(InputError, match="each reranker may run once"):
        next(run_arena(query, [RerankerSpec("r", "bm25"), RerankerSpec("r", "bm25")]))
    with pytest.raises(InputError, match="unknown option.*api_key"):
        RerankerSpec("x", "openai", "m", {"api_key": "sk-1"}).backend_config()
    *_, (lane,) = run_arena(query, [RerankerSpec("x", "openai", "m", {"bogus": 1})], CONFIG)
    assert lane.status == "error" and "unknown option(s) bogus" in lane.error
