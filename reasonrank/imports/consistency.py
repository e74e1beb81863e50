"""Self-consistency of teacher labels (docs/method.md §7): nDCG@10 of a ranking against the teacher's own
positives. It lives beside the importers because a label's score is what decides, at import and
at export, whether the label is trusted enough to train on (ALPHA is the cut-off)."""

from __future__ import annotations

from reasonrank.metrics import ndcg_at_k
from reasonrank.types import Label

ALPHA = 0.4  # docs/method.md §7: teacher labels with self-consistency nDCG@10 below this are dropped
CONSISTENCY_CUTOFF = 10


def self_consistency(ranking: list[str], relevant: list[str] | dict[str, int] | None) -> float | None:
    """nDCG@10 of a teacher ranking against the teacher's own positives (docs/method.md §7).

    `relevant` is a list of relevant docids (binary, as `relevant_docids` in the release) or a
    {docid: grade} qrels dict (graded, trec_eval semantics). None or an empty dict means no
    judgments: the score is unknown (None). An empty list means "judged, no positives": 0.0.
    """
    if relevant is None:
        return None
    if isinstance(relevant, dict):
        if not relevant:
            return None
        return ndcg_at_k(ranking, relevant, CONSISTENCY_CUTOFF)
    return ndcg_at_k(ranking, {docid: 1 for docid in relevant}, CONSISTENCY_CUTOFF)


def label_consistency(label: Label) -> float | None:
    """A label's self-consistency: against its relevant_docids, else its list's qrels."""
    if label.relevant_docids is not None:
        return self_consistency(label.ranking, label.relevant_docids)
    return self_consistency(label.ranking, label.candidates.qrels)
