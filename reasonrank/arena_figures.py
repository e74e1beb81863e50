"""The figures an Arena lane shows against the judgments (`METRICS`), with one relevance
convention per dataset: TREC DL counts grade >= 2 as relevant for Recall and MRR (trec_eval
-l 2, as Eval runs it), every other set grade >= 1; nDCG uses every grade."""

from __future__ import annotations

from collections.abc import Sequence

from reasonrank.metrics import metric_value
from reasonrank.retrieve import judged_without
from reasonrank.types import CandidateList

#: the figures each lane shows against the judgments
METRICS = ("ndcg@10", "recall@10", "mrr@10")
#: datasets whose binary metrics count only grade >= 2 as relevant (the TREC DL convention)
TREC_GRADED = ("trec-dl19", "trec-dl20", "dl19", "dl20")


def rel_level_for(dataset: str | None) -> int:
    """The lowest grade Recall and MRR count as relevant on `dataset` (nDCG uses every grade)."""
    return 2 if dataset in TREC_GRADED else 1


def relevance_note(dataset: str | None) -> str:
    """The convention in words, for a caption under the figures."""
    level = rel_level_for(dataset)
    why = " (TREC DL convention, as Eval's --rel-level 2)" if level == 2 else ""
    return f"Recall and MRR count grade ≥ {level} as relevant{why}; nDCG uses the graded judgments."


def judged_metrics(ranking: Sequence[str], candidates: CandidateList) -> dict[str, float]:
    """METRICS against the list's qrels; {} when it has none. Excluded ids leave the ranking and
    the qrels first (BRIGHT's rule), as in benchmark runs; relevance as `rel_level_for`."""
    if not candidates.qrels:
        return {}
    excluded = set(candidates.excluded_ids)
    kept = [docid for docid in ranking if docid not in excluded]
    qrels = judged_without(candidates.qrels, excluded)
    level = rel_level_for(candidates.dataset)
    return {name: metric_value(name, kept, qrels, level) for name in METRICS}
