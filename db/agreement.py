"""Annotator agreement: pairwise Kendall τ and RBO between the people who decided the same items,
and the items whose reviewers disagree (the Agreement tab's tables and its adjudication queue).

Only each item's current label counts, and adjudications are left out: agreement is between
reviewers, not with the admin who settled a conflict. Two decisions agree when they lead to the
same result (db.reviews: accept and a fix that keeps the teacher's order agree).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from statistics import fmean

from sqlalchemy import Engine, select

from db.engine import read_session
from db.models import COUNTED_DECISIONS, Dataset, Item, Label, Query, Review, User
from db.reviews import outcome
from reasonrank.metrics import kendall_tau, rbo

RBO_P = 0.9  # persistence for annotator agreement: the top ~10 ranks carry most of the weight


@dataclass(frozen=True)
class PairAgreement:
    annotator_a: str
    annotator_b: str
    items: int  # items both decided
    same_outcome: float  # share of those items where they reached the same result
    kendall_tau: float | None  # mean over items both ranked (None when no such item)
    rbo: float | None  # mean RBO (p = RBO_P, extrapolated) over the same items


@dataclass(frozen=True)
class Disagreement:
    item_id: int
    item_key: str
    status: str  # conflict, or the adjudicated result
    version: int
    decisions: dict[str, str]  # annotator -> accept | fix | reject
    rankings: dict[str, list[str] | None]  # annotator -> the order they stand for (None: reject)


@dataclass(frozen=True)
class AgreementReport:
    pairs: list[PairAgreement]
    disagreements: list[Disagreement]


def agreement(engine: Engine, dataset: str | None = None) -> AgreementReport:
    """Pairwise Kendall τ / RBO between annotators on the items they both decided, and the items
    whose reviewers disagree (current labels only; adjudications excluded)."""
    with read_session(engine) as session:
        query = (
            select(Review, User.name, Item, Label.ranking, Dataset.name, Query.qid)
            .join(User, User.id == Review.annotator_id)
            .join(Item, Item.id == Review.item_id)
            .join(Label, Label.id == Item.label_id)
            .join(Dataset, Dataset.id == Item.dataset_id)
            .join(Query, Query.id == Item.query_id)
            .where(
                Review.label_id == Item.label_id, Review.adjudication.is_(False), Review.decision.in_(COUNTED_DECISIONS)
            )
            .order_by(Review.id)
        )
        if dataset is not None:
            query = query.where(Dataset.name == dataset)
        per_item: dict[int, dict[str, tuple]] = {}
        about: dict[int, tuple] = {}
        for review, name, item, teacher, dataset_name, qid in session.execute(query).tuples():
            per_item.setdefault(item.id, {})[name] = (review.decision, outcome(review, teacher))
            about[item.id] = (f"{dataset_name}/{qid}", item.status, item.version)
    return AgreementReport(
        pairs=_pairs(per_item),
        disagreements=[
            Disagreement(
                item_id=item_id,
                item_key=about[item_id][0],
                status=about[item_id][1],
                version=about[item_id][2],
                decisions={n: d for n, (d, _) in sorted(votes.items())},
                rankings={n: list(o[1]) if o[0] == "rank" else None for n, (_, o) in sorted(votes.items())},
            )
            for item_id, votes in sorted(per_item.items())
            if len(votes) > 1 and len({outcome for _, outcome in votes.values()}) > 1
        ],
    )


def _pairs(per_item: dict[int, dict[str, tuple]]) -> list[PairAgreement]:
    shared: dict[tuple[str, str], list[tuple[tuple, tuple]]] = {}
    for votes in per_item.values():
        for a, b in combinations(sorted(votes), 2):
            shared.setdefault((a, b), []).append((votes[a][1], votes[b][1]))
    pairs = []
    for (a, b), outcomes in sorted(shared.items()):
        ranked = [(x[1], y[1]) for x, y in outcomes if x[0] == "rank" and y[0] == "rank"]
        pairs.append(
            PairAgreement(
                annotator_a=a,
                annotator_b=b,
                items=len(outcomes),
                same_outcome=sum(x == y for x, y in outcomes) / len(outcomes),
                kendall_tau=fmean(kendall_tau(x, y) for x, y in ranked) if ranked else None,
                rbo=fmean(rbo(x, y, p=RBO_P, ext=True) for x, y in ranked) if ranked else None,
            )
        )
    return pairs
