"""`evaluate` with other methods: a perfect setwise chooser and a perfect pointwise judge on DL19
(grades written into the passages) reach the ideal nDCG@10 that pytrec_eval computes, with the
calls written per method."""

from __future__ import annotations

import statistics
from dataclasses import replace

import pytest
from methods_backend import PointwiseJudge, SetwiseChooser

from reasonrank.evaluate import EvalConfig, evaluate, write_report
from reasonrank.io import read_calls_jsonl, read_qrels, read_rank_llm_json, write_candidates_jsonl
from reasonrank.methods import with_defaults
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
    report = evaluate(config, backend=backend())
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
