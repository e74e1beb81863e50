"""The label metrics the store relies on: self-consistency (nDCG@10 of a label against its own
relevant passages or the qrels, checked against pytrec_eval) with the α line that keeps a label,
and Kendall τ between two orderings (checked against pair counting and scipy)."""

from __future__ import annotations

import itertools
import random

import pytest
import pytrec_eval
from release_fixtures import release_dir  # noqa: F401 (fixture)

from reasonrank.imports import ALPHA, label_consistency, self_consistency, validate_file
from reasonrank.io import InputError
from reasonrank.metrics import kendall_tau


def _trec_ndcg10(ranking, qrels):
    run = {"q": {d: float(len(ranking) - i) for i, d in enumerate(ranking)}}
    return pytrec_eval.RelevanceEvaluator({"q": qrels}, {"ndcg_cut.10"}).evaluate(run)["q"]["ndcg_cut_10"]


def test_self_consistency_hand_cases():
    ranking = [f"d{i}" for i in range(1, 21)]
    assert self_consistency(ranking, ["d1"]) == 1.0
    assert self_consistency(ranking, ["d3"]) == pytest.approx(0.5)  # 1 / log2(4)
    assert self_consistency(ranking, ["d11"]) == 0.0  # below the cut-off
    assert self_consistency(ranking, []) == 0.0  # judged, no positives
    assert self_consistency(ranking, None) is None and self_consistency(ranking, {}) is None
    graded = {"d1": 0, "d2": 2, "d3": 1, "d15": 3}
    assert self_consistency(ranking, graded) == pytest.approx(_trec_ndcg10(ranking, graded), abs=1e-12)
    assert self_consistency(ranking, ["d2", "d5"]) == pytest.approx(
        _trec_ndcg10(ranking, {"d2": 1, "d5": 1}), abs=1e-12
    )


def test_alpha_line():
    """α = 0.4 (docs/method.md §7): one positive at rank 3 is kept (0.5), at rank 6 dropped (1/log2 7 ≈ 0.356)."""
    assert ALPHA == 0.4
    ranking = [f"d{i}" for i in range(1, 21)]
    assert self_consistency(ranking, ["d3"]) >= ALPHA > self_consistency(ranking, ["d6"])


def test_label_consistency_on_imported_labels(release_dir, test_data):
    batch = validate_file(release_dir)
    scores = [label_consistency(label) for label in batch.labels]
    assert scores[0] == 1.0 and scores[2] == 1.0  # judged-first order
    assert 0 < scores[1] < 1 and 0 < scores[3] < 1  # an irrelevant passage first
    root = test_data / "trec-dl19"
    dl19 = validate_file(
        root / "rankvicuna7b_rerank_top20.run",
        candidates_path=root / "bm25_top100_with_text.json",
        run_depth=20,
        qrels_path=root / "qrels.txt",
    )
    label = dl19.labels[0]
    assert label.relevant_docids is None
    assert label_consistency(label) == pytest.approx(_trec_ndcg10(label.ranking, label.candidates.qrels), abs=1e-12)
    unjudged = validate_file(
        root / "rankvicuna7b_rerank_top20.run", candidates_path=root / "bm25_top100_with_text.json"
    )
    assert label_consistency(unjudged.labels[0]) is None


def _pair_count_tau(a, b):
    pos = {x: i for i, x in enumerate(b)}
    pairs = list(itertools.combinations(a, 2))
    sign = sum(1 if pos[x] < pos[y] else -1 for x, y in pairs)
    return sign / len(pairs)


def test_kendall_tau_against_pair_counting_and_scipy():
    rng = random.Random(3)
    cases = [(list("abcd"), list("abcd")), (list("abcd"), list("dcba")), (list("abcd"), list("bacd"))]
    for n in (2, 3, 5, 20, 100):
        for _ in range(20):
            a = [f"d{i}" for i in range(n)]
            b = a[:]
            rng.shuffle(b)
            cases.append((a, b))
    for a, b in cases:
        assert kendall_tau(a, b) == pytest.approx(_pair_count_tau(a, b), abs=1e-12)
    assert kendall_tau(list("abcd"), list("dcba")) == -1.0 and kendall_tau(["x"], ["x"]) == 1.0
    from scipy import stats  # installed with pytrec_eval-terrier: this half never silently skips

    for a, b in cases:
        expected = stats.kendalltau([a.index(x) for x in a], [b.index(x) for x in a]).statistic
        assert kendall_tau(a, b) == pytest.approx(expected, abs=1e-12)


def test_kendall_tau_refuses_different_items():
    with pytest.raises(InputError, match="same items"):
        kendall_tau(["a", "b"], ["a", "c"])
    with pytest.raises(InputError, match="repeat"):
        kendall_tau(["a", "a"], ["a", "b"])
    assert kendall_tau(["a", "b"], ["b", "a"]) == -1.0  # the same items in any order are fine
