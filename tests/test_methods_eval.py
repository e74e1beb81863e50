"""`evaluate` with other methods: a perfect setwise chooser and a perfect pointwise judge on DL19
(grades written into the passages) reach the ideal nDCG@10 that pytrec_eval computes, with the
calls written per method."""

from __future__ import annotations

import json
import statistics
from dataclasses import replace

import pytest
from methods_backend import PointwiseJudge, SetwiseChooser

from reasonrank.evaluate import EvalConfig, evaluate, query_costs, write_report
from reasonrank.io import read_calls_jsonl, read_qrels, read_rank_llm_json, write_candidates_jsonl
from reasonrank.methods import get_method, with_defaults
from reasonrank.methods.rank_r1 import PROMPT_V01
from reasonrank.retrieve import CandidateSource
from reasonrank.types import Passage
from reasonrank.window import WindowConfig


@pytest.fixture(scope="module")
def graded(test_data, tmp_path_factory):
    root = test_data / "trec-dl19"
    qrels = read_qrels(root / "qrels.txt")
    lists = read_rank_llm_json(root / "bm25_top100_with_text.json", qrels=qrels)
    for cl in lists:
        cl.candidates = [
            Passage(p.docid, f"{p.text} relevance {3 * cl.qrels.get(p.docid, 0)}") for p in cl.candidates[:30]
        ]
    path = tmp_path_factory.mktemp("graded") / "graded.jsonl"
    write_candidates_jsonl(lists, path)
    return path, lists, qrels


@pytest.mark.parametrize(
    ("name", "backend"), [("rank-r1", lambda: SetwiseChooser(PROMPT_V01)), ("rank1", PointwiseJudge)]
)
def test_evaluate_reaches_the_ideal_ndcg(graded, tmp_path, name, backend):
    pytrec_eval = pytest.importorskip("pytrec_eval")
    path, lists, qrels = graded
    window = replace(with_defaults(name, WindowConfig()), top_k=30)
    config = EvalConfig(trec=CandidateSource(name="dl19", candidates=str(path)), window=window)
    steps: list[tuple[int, int]] = []
    report = evaluate(config, backend=backend(), on_step=lambda done, total: steps.append((done, total)))
    assert steps and steps[-1][0] == steps[-1][1]  # the method's own steps, the last one complete
    ideal = {
        cl.query.qid: {
            p.docid: float(30 - i) for i, p in enumerate(sorted(cl.candidates, key=lambda p: -cl.qrels.get(p.docid, 0)))
        }
        for cl in lists
    }
    reference = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10"}).evaluate(ideal)
    first, reranked = report.scores
    assert reranked.mean["ndcg@10"] == pytest.approx(statistics.mean(v["ndcg_cut_10"] for v in reference.values()))
    assert reranked.mean["ndcg@10"] > first.mean["ndcg@10"]
    write_report(report, config, tmp_path / "out")
    calls = read_calls_jsonl(tmp_path / "out" / "dl19.calls.jsonl")
    assert calls and all(c.method == name for c in calls)
    # costs per query: calls, sequential rounds and tokens as the written calls count them
    costs = report.costs["dl19"]
    per_query: dict[str, list] = {}
    for call in calls:
        per_query.setdefault(call.qid, []).append(call)
    count = len(lists)
    assert costs["calls"] == pytest.approx(len(calls) / count)
    rounds = sum(len({(c.pass_index, c.position) for c in own}) for own in per_query.values())
    assert costs["rounds"] == pytest.approx(rounds / count)
    assert costs["tokens_out"] == pytest.approx(sum(c.tokens_out for c in calls) / count)
    assert costs["seconds"] > 0
    reproduce = json.loads((tmp_path / "out" / "results.json").read_text())["reproduce"]
    assert reproduce["method"] == name and reproduce["method_source"] == get_method(name).source
    assert (reproduce["num_child"], reproduce["sort_k"]) == (window.num_child, window.sort_k)


def test_query_costs_count_rounds_and_reasoning_tokens():
    from reasonrank.types import RankResult, WindowCall

    def call(qid, position, reasoning, tokens_out=5, tokens_reasoning=None):
        return WindowCall(
            qid, 0, position, 0, 2, [], "", reasoning, [], [], [], [], 7, tokens_out, tokens_reasoning=tokens_reasoning
        )

    results = [
        RankResult("a", [], [call("a", 0, "one two three"), call("a", 0, None), call("a", 1, "x", 3, 11)]),
        RankResult("b", [], [call("b", 0, "four five")]),
    ]
    costs = query_costs(results, 0.5, None)  # no tokenizer: whitespace words
    assert costs == {
        "tokens_in": 14.0,
        "tokens_out": 9.0,
        "tokens_reasoning": (3 + 0 + 11 + 2) / 2,
        "calls": 2.0,
        "rounds": 1.5,
        "seconds": 0.5,
    }
