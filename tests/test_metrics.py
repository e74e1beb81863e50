"""reasonrank.metrics against the reference tools: pytrec_eval (trec_eval) and the `rbo` package.

Random cases are seeded and built to hit the corners where re-implementations usually drift:
tied scores (trec_eval breaks them by docid descending, so "9" beats "10"), retrieved documents
that are not judged, queries without relevant documents, negative grades, lists of different
lengths. The real TREC DL19 runs check the same equalities per query and on the mean.
"""

from __future__ import annotations

import functools
import json
import math
import random

import pytest
from rbo import RankingSimilarity
from trec_reference import rank_scores, trec_eval

from reasonrank.io import InputError, read_qrels, read_rank_llm_json, read_trec_run
from reasonrank.metrics import (
    evaluate_run,
    mean_metrics,
    mrr_at_k,
    ndcg_at_k,
    rank_by_score,
    rbo,
    recall_at_k,
)

TOL = 1e-9
CUTOFFS = (1, 5, 10)


# ----------------------------------------------------------------------------- helpers
def _trec_eval_compare(x, y):
    """trec_eval's qsort comparator, written out: higher score first, then larger docid."""
    (doc_x, score_x), (doc_y, score_y) = x, y
    if score_x != score_y:
        return -1 if score_x > score_y else 1
    return (doc_x < doc_y) - (doc_x > doc_y)


def truncate_run(run, k):
    """The run cut to its top k in trec_eval order (pytrec_eval has no recip_rank cutoff)."""
    return {
        qid: dict(sorted(scores.items(), key=functools.cmp_to_key(_trec_eval_compare))[:k])
        for qid, scores in run.items()
    }


def assert_matches_trec_eval(ours, run, qrels, rel_level, recall_cutoffs=(5, 10)):
    """ours: evaluate_run output for `run` with ndcg@1/5/10, recall@5/10 and mrr@1/5/10."""
    measures = [f"ndcg_cut.{','.join(map(str, CUTOFFS))}", f"recall.{','.join(map(str, recall_cutoffs))}"]
    reference = trec_eval(qrels, run, measures, rel_level)
    assert set(ours) == set(reference)
    mismatches = []
    for qid, values in reference.items():
        for k in CUTOFFS:
            if abs(ours[qid][f"ndcg@{k}"] - values[f"ndcg_cut_{k}"]) > TOL:
                mismatches.append((qid, f"ndcg@{k}", ours[qid][f"ndcg@{k}"], values[f"ndcg_cut_{k}"]))
        for k in recall_cutoffs:
            if abs(ours[qid][f"recall@{k}"] - values[f"recall_{k}"]) > TOL:
                mismatches.append((qid, f"recall@{k}", ours[qid][f"recall@{k}"], values[f"recall_{k}"]))
    for k in CUTOFFS:
        cut = trec_eval(qrels, truncate_run(run, k), ["recip_rank"], rel_level)
        for qid, values in cut.items():
            if abs(ours[qid][f"mrr@{k}"] - values["recip_rank"]) > TOL:
                mismatches.append((qid, f"mrr@{k}", ours[qid][f"mrr@{k}"], values["recip_rank"]))
    assert not mismatches, mismatches[:10]
    means = mean_metrics(ours)
    for k in CUTOFFS:
        expected = sum(v[f"ndcg_cut_{k}"] for v in reference.values()) / len(reference)
        assert means[f"ndcg@{k}"] == pytest.approx(expected, abs=TOL)
    return means


ALL_METRICS = tuple(f"ndcg@{k}" for k in CUTOFFS) + ("recall@5", "recall@10") + tuple(f"mrr@{k}" for k in CUTOFFS)


def random_collection(seed, n_queries, grades=(0, 0, 0, 1, 1, 2, 3)):
    """Seeded qrels + a run with tied scores, unjudged retrieved docs, queries without relevant
    documents, and queries present on only one side.

    Left out on purpose, because trec_eval's own behaviour there is undefined (uninitialised or
    freed memory in form_res_rels.c, seen as crashes or NDCG > 1 in pytrec_eval): topics whose
    judgments are all negative, topics with an empty judgment dict, and empty rankings. Those
    are checked by hand in `test_degenerate_queries`."""
    rng = random.Random(seed)
    qrels, run = {}, {}
    for q in range(n_queries):
        qid = f"q{q}"
        # numeric docids of different lengths make string order differ from numeric order
        pool = [str(n) for n in rng.sample(range(1, 400), 60)]
        judged = rng.sample(pool, rng.randint(1, 30))
        if rng.random() < 0.15:
            qrels[qid] = {d: min(0, g) for d, g in ((d, rng.choice(grades)) for d in judged)}
        else:
            qrels[qid] = {d: rng.choice(grades) for d in judged}
        if max(qrels[qid].values()) < 0:
            qrels[qid][judged[0]] = 0  # trec_eval crashes on topics judged only below 0
        retrieved = rng.sample(pool, rng.randint(1, 40))
        if rng.random() < 0.5:
            run[qid] = {d: float(rng.randint(0, 4)) * 0.5 for d in retrieved}  # many ties
        else:
            run[qid] = {d: rng.uniform(-5, 5) for d in retrieved}
    for extra in range(5):
        run[f"run_only{extra}"] = {"1": 1.0}
        qrels[f"qrels_only{extra}"] = {"1": 1}
    return qrels, run


# ----------------------------------------------------------------------------- trec_eval equality
@pytest.mark.parametrize("rel_level", [1, 2])
def test_random_runs_with_ties_match_trec_eval(rel_level):
    qrels, run = random_collection(seed=20250811 + rel_level, n_queries=1200)
    ours = evaluate_run(run, qrels, ALL_METRICS, rel_level=rel_level)
    assert len(ours) == 1200
    tied = sum(1 for scores in run.values() if len(set(scores.values())) < len(scores))
    assert tied > 300
    assert_matches_trec_eval(ours, run, qrels, rel_level)


def test_negative_grades_match_trec_eval():
    qrels, run = random_collection(seed=7, n_queries=300, grades=(-2, -1, 0, 1, 2, 3))
    for rel_level in (1, 2):
        ours = evaluate_run(run, qrels, ALL_METRICS, rel_level=rel_level)
        assert_matches_trec_eval(ours, run, qrels, rel_level)


def test_list_runs_are_rank_order():
    qrels, score_run = random_collection(seed=11, n_queries=200)
    rng = random.Random(3)
    list_run = {qid: rng.sample(sorted(scores), len(scores)) for qid, scores in score_run.items()}
    ours = evaluate_run(list_run, qrels, ALL_METRICS)
    assert_matches_trec_eval(ours, {q: rank_scores(r) for q, r in list_run.items()}, qrels, 1)


def test_ties_break_by_docid_descending_in_string_order():
    assert rank_by_score({"9": 1.0, "10": 1.0, "a": 2.0, "b": 0.5}) == ["a", "9", "10", "b"]
    qrels = {"q": {"10": 1}}
    run = {"q": {"9": 1.0, "10": 1.0}}
    assert evaluate_run(run, qrels, ("mrr@10",))["q"]["mrr@10"] == 0.5
    assert trec_eval(qrels, run, ["recip_rank"])["q"]["recip_rank"] == 0.5


def test_hand_computed_graded_ndcg_recall_mrr():
    qrels = {"a": 3, "b": 2, "c": 0, "d": 1, "e": -1}
    ranking = ["x", "b", "c", "a"]
    dcg = 2 / math.log2(3) + 3 / math.log2(5)
    ideal = 3 + 2 / math.log2(3) + 1 / math.log2(4)
    assert ndcg_at_k(ranking, qrels, 10) == pytest.approx(dcg / ideal)
    assert ndcg_at_k(ranking, qrels, 1) == 0.0
    assert recall_at_k(ranking, qrels, 10, rel_level=2) == 1.0
    assert recall_at_k(ranking, qrels, 2, rel_level=1) == pytest.approx(1 / 3)
    assert mrr_at_k(ranking, qrels, 10, rel_level=3) == 0.25
    assert mrr_at_k(ranking, qrels, 3, rel_level=3) == 0.0
    assert recall_at_k(ranking, {"a": 0}, 10) == 0.0 and ndcg_at_k(ranking, {"a": 0}, 10) == 0.0


def test_degenerate_queries():
    qrels = {"judged_empty": {}, "only_negative": {"a": -2, "b": -1}, "nothing_retrieved": {"a": 2}}
    run = {"judged_empty": {"a": 1.0}, "only_negative": ["a", "b"], "nothing_retrieved": {}, "unjudged": ["a"]}
    per_query = evaluate_run(run, qrels, ALL_METRICS)
    assert sorted(per_query) == ["nothing_retrieved", "only_negative"]
    assert all(v == 0.0 for values in per_query.values() for v in values.values())


def test_bad_metric_arguments_say_what_is_valid():
    with pytest.raises(ValueError, match=r"unknown metric 'map@10'.*ndcg@K, recall@K, mrr@K"):
        evaluate_run({"q": ["a"]}, {"q": {"a": 1}}, ("ndcg@10", "map@10"))
    with pytest.raises(ValueError, match="unknown metric 'ndcg@0'"):
        evaluate_run({"q": ["a"]}, {"q": {"a": 1}}, ("ndcg@0",))
    with pytest.raises(InputError, match="rel_level"):
        evaluate_run({"q": ["a"]}, {"q": {"a": 1}}, rel_level=0)
    with pytest.raises(InputError, match="query 'q' lists a docid more than once"):
        evaluate_run({"q": ["a", "a"]}, {"q": {"a": 1}})
    assert mean_metrics({}) == {}


# ----------------------------------------------------------------------------- rbo package equality
def test_rbo_matches_package_on_random_lists():
    rng = random.Random(42)
    checked = 0
    for _ in range(1500):
        pool = list(range(rng.randint(1, 40)))
        a = rng.sample(pool, rng.randint(0, len(pool)))
        b = rng.sample(pool, rng.randint(0, len(pool)))
        if rng.random() < 0.3:
            a = [str(x) for x in a]  # disjoint item types: zero overlap
        p = rng.choice([1.0, 1.0, 0.5, 0.9, 0.98, rng.uniform(0.01, 0.99)])
        ext = rng.random() < 0.5
        depth = rng.choice([None, None, rng.randint(1, 30)])
        expected = RankingSimilarity(a, b).rbo(k=depth, p=p, ext=ext)
        assert rbo(a, b, p=p, depth=depth, ext=ext) == pytest.approx(expected, abs=TOL), (a, b, p, depth, ext)
        checked += 1
    assert checked >= 1000


def test_rbo_average_overlap_by_hand_and_errors():
    assert rbo(["a", "b", "c"], ["b", "a", "c"]) == pytest.approx((0 + 1 + 1) / 3)
    assert rbo(["a", "b", "c", "d"], ["a", "x"]) == pytest.approx((1 + 0.5) / 2)
    assert rbo([], []) == 1.0 and rbo(["a"], []) == 0.0
    with pytest.raises(InputError, match="p must be"):
        rbo(["a"], ["a"], p=0.0)
    with pytest.raises(InputError, match="duplicate"):
        rbo(["a", "a"], ["a"])


# ----------------------------------------------------------------------------- real TREC DL19 runs
@pytest.fixture(scope="session")
def dl19(test_data):
    folder = test_data / "trec-dl19"
    qrels = read_qrels(folder / "qrels.txt")
    bm25_lists = read_rank_llm_json(folder / "bm25_top100_with_text.json")
    with (folder / "bm25_top100_with_text.json").open(encoding="utf-8") as handle:
        raw = json.load(handle)
    bm25_scores = {str(e["hits"][0]["qid"]): {str(h["docid"]): float(h["score"]) for h in e["hits"]} for e in raw}
    runs = {"bm25": ({cl.query.qid: cl.docids for cl in bm25_lists}, bm25_scores)}
    for name, file in (("rankvicuna", "rankvicuna7b_rerank_top20.run"), ("rankgpt35", "rankgpt35_rerank_top100.run")):
        pairs = read_trec_run(folder / file)
        runs[name] = (
            {q: [d for d, _ in hits] for q, hits in pairs.items()},
            {q: dict(hits) for q, hits in pairs.items()},
        )
    return qrels, runs


@pytest.mark.parametrize("rel_level", [1, 2])
@pytest.mark.parametrize("name", ["bm25", "rankvicuna", "rankgpt35"])
def test_dl19_runs_match_trec_eval(dl19, name, rel_level):
    qrels, runs = dl19
    list_run, score_run = runs[name]
    by_rank = evaluate_run(list_run, qrels, ALL_METRICS, rel_level=rel_level)
    assert len(by_rank) == 43
    means = assert_matches_trec_eval(by_rank, {q: rank_scores(r) for q, r in list_run.items()}, qrels, rel_level)
    by_score = evaluate_run(score_run, qrels, ALL_METRICS, rel_level=rel_level)
    assert_matches_trec_eval(by_score, score_run, qrels, rel_level)
    assert 0.3 < means["ndcg@10"] < 0.8


def test_dl19_rerankers_beat_bm25(dl19):
    qrels, runs = dl19
    ndcg10 = {
        name: mean_metrics(evaluate_run(lists, qrels, ("ndcg@10",)))["ndcg@10"] for name, (lists, _) in runs.items()
    }
    assert ndcg10["rankvicuna"] > ndcg10["bm25"] + 0.1
    assert ndcg10["rankgpt35"] > ndcg10["bm25"] + 0.1
