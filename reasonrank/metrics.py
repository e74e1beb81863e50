"""Ranking metrics and the ReasonRank reward, in plain Python.

Why our own code rather than `pytrec_eval` and `rbo` at run time: the app and the GRPO reward
must import without compiled extras, and every number has to be explainable term by term in the
reward debugger. The semantics are nevertheless those of the reference tools, and the tests hold
every function to them (to 1e-9) on random cases and on the real TREC DL19 runs:

* nDCG@k, Recall@k and MRR@k follow `trec_eval` (`ndcg_cut`, `recall`, `recip_rank`): a run given
  as scores is ordered by score descending, ties by docid descending in string order; the gain of a
  document is its grade, only grades > 0 count (negative grades behave like 0), the ideal DCG is
  built from every judged document of the query, and a query without relevant documents scores 0.
  `relevance_level` (our `rel_level`) decides what Recall and MRR call relevant; nDCG ignores it.
* RBO follows `rbo.RankingSimilarity(a, b).rbo(k, p, ext)` (PyPI `rbo` 0.1.3, what ReasonRank
  trains with): both lists are cut to the shorter length; p = 1 gives the average overlap.
* The reward is docs/method.md §6.1: R = NDCG@10 + 0.2·Recall@10 + 0.1·RBO, −1 for a broken format and 0
  for an answer that does not list as many distinct ids as the teacher list.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from reasonrank.io import InputError

Ranking = Sequence[str]
Qrels = Mapping[str, int]
CompletionLike = str | Sequence[Mapping[str, str]]  # plain text or TRL conversational messages


# ----------------------------------------------------------------------------- run ordering
def rank_by_score(scores: Mapping[str, float]) -> list[str]:
    """Docids in trec_eval order: score descending, then docid descending (string order).

    trec_eval ignores the rank column and re-sorts by score, so tied scores are broken by docid;
    reproducing that is what makes our numbers identical to `pytrec_eval` on tied runs.
    """
    for docid, score in scores.items():
        if isinstance(score, float) and math.isnan(score):
            raise InputError(f"score of docid {docid!r} is NaN")
    return [docid for docid, _ in sorted(scores.items(), key=lambda item: (float(item[1]), item[0]), reverse=True)]


def _check_cutoff(k: int) -> None:
    if not isinstance(k, int) or k < 1:
        raise InputError(f"cutoff k must be a positive integer, got {k!r}")


def _check_rel_level(rel_level: int) -> None:
    # trec_eval accepts levels <= 0, but then unjudged documents start to count as relevant.
    if not isinstance(rel_level, int) or rel_level < 1:
        raise InputError(f"rel_level must be a positive integer grade, got {rel_level!r}")


# ----------------------------------------------------------------------------- per-query metrics
def ndcg_at_k(ranking: Ranking, qrels: Qrels, k: int) -> float:
    """trec_eval `ndcg_cut.k` of a ranked docid list: gain = grade (> 0 only), discount log2(rank+1)."""
    _check_cutoff(k)
    dcg = 0.0
    for index, docid in enumerate(ranking[:k]):
        gain = qrels.get(docid, 0)
        if gain > 0:
            dcg += gain / math.log2(index + 2)
    ideal_gains = sorted((grade for grade in qrels.values() if grade > 0), reverse=True)[:k]
    ideal = 0.0
    for index, gain in enumerate(ideal_gains):
        ideal += gain / math.log2(index + 2)
    return dcg / ideal if ideal > 0.0 else 0.0


def recall_at_k(ranking: Ranking, qrels: Qrels, k: int, rel_level: int = 1) -> float:
    """trec_eval `recall.k`: share of the judged documents with grade >= rel_level found in the top k."""
    _check_cutoff(k)
    _check_rel_level(rel_level)
    num_relevant = sum(1 for grade in qrels.values() if grade >= rel_level)
    if num_relevant == 0:
        return 0.0
    found = sum(1 for docid in ranking[:k] if qrels.get(docid, 0) >= rel_level)
    return found / num_relevant


def mrr_at_k(ranking: Ranking, qrels: Qrels, k: int, rel_level: int = 1) -> float:
    """trec_eval `recip_rank` of the run cut to its top k: 1/rank of the first relevant document."""
    _check_cutoff(k)
    _check_rel_level(rel_level)
    for index, docid in enumerate(ranking[:k]):
        if qrels.get(docid, 0) >= rel_level:
            return 1.0 / (index + 1)
    return 0.0


def rbo(a: Sequence, b: Sequence, p: float = 1.0, *, depth: int | None = None, ext: bool = False) -> float:
    """Rank-biased overlap with the semantics of `rbo.RankingSimilarity(a, b).rbo(depth, p, ext)`.

    Both lists are compared down to k = min(len(a), len(b), depth). With A_d the overlap of the
    two top-d prefixes divided by d: p = 1 returns the mean of A_1..A_k (average overlap, what
    ReasonRank's reward uses); 0 < p < 1 returns Σ_d (1−p)·p^(d−1)·A_d, plus A_k·p^k when `ext`.
    Two empty lists score 1, one empty list scores 0.
    """
    if not (p == 1.0 or 0.0 < p < 1.0):
        raise InputError(f"rbo p must be in (0, 1], got {p!r}")
    for name, items in (("a", a), ("b", b)):
        if len(set(items)) != len(items):
            raise InputError(f"rbo list {name} contains duplicate items")
    if not a and not b:
        return 1.0
    if not a or not b:
        return 0.0
    k = min(len(a), len(b))
    if depth is not None:
        if not isinstance(depth, int) or depth < 1:
            raise InputError(f"rbo depth must be a positive integer, got {depth!r}")
        k = min(k, depth)
    seen_a: set = set()
    seen_b: set = set()
    overlap = 0
    score = 0.0
    agreement = 0.0
    for d in range(k):
        item_a, item_b = a[d], b[d]
        if item_a == item_b:
            overlap += 1
        else:
            overlap += (item_a in seen_b) + (item_b in seen_a)
        seen_a.add(item_a)
        seen_b.add(item_b)
        agreement = overlap / (d + 1)
        score += agreement if p == 1.0 else (1.0 - p) * p**d * agreement
    if p == 1.0:
        return score / k
    return score + agreement * p**k if ext else score


def kendall_tau(a: Sequence, b: Sequence) -> float:
    """Kendall's tau-a between two orderings of the same items (best first), in [-1, 1].

    (concordant − discordant pairs) / (n·(n−1)/2): 1 for the same order, −1 for the reverse.
    Orderings are permutations, so there are no ties and tau-a equals scipy's default tau-b.
    A reviewer's fix is scored against the teacher list with it, so both must hold exactly
    the same items; fewer than two items give 1.0 (two orderings of one item agree).
    """
    position = {item: index for index, item in enumerate(b)}
    if len(position) != len(b) or len(set(a)) != len(a):
        raise InputError("kendall_tau orderings must not repeat an item")
    if set(a) != position.keys():
        raise InputError("kendall_tau needs two orderings of the same items")
    n = len(a)
    if n < 2:
        return 1.0
    ranks = [position[item] for item in a]
    discordant = sum(1 for i in range(n) for j in range(i + 1, n) if ranks[i] > ranks[j])
    pairs = n * (n - 1) // 2
    return (pairs - 2 * discordant) / pairs


# ----------------------------------------------------------------------------- whole runs
_METRIC_NAME = re.compile(r"(ndcg|recall|mrr)@([1-9][0-9]*)")
VALID_METRICS = "ndcg@K, recall@K, mrr@K (K a positive integer, e.g. ndcg@10)"


def parse_metric(name: str) -> tuple[str, int]:
    """'ndcg@10' → ('ndcg', 10); anything else is an InputError listing the valid forms."""
    match = _METRIC_NAME.fullmatch(name.strip().lower()) if isinstance(name, str) else None
    if match is None:
        raise InputError(f"unknown metric {name!r}; valid metrics: {VALID_METRICS}")
    return match.group(1), int(match.group(2))


def metric_value(name: str, ranking: Ranking, qrels: Qrels, rel_level: int = 1) -> float:
    """One named metric ('ndcg@10', 'recall@5', 'mrr@10') of one ranked list."""
    family, k = parse_metric(name)
    if family == "ndcg":
        return ndcg_at_k(ranking, qrels, k)
    if family == "recall":
        return recall_at_k(ranking, qrels, k, rel_level)
    return mrr_at_k(ranking, qrels, k, rel_level)


def _as_ranking(qid: str, entry: Mapping[str, float] | Sequence) -> list[str]:
    """A run entry as a docid list: a {docid: score} dict is sorted as trec_eval does; a list is
    taken in its order (items may be docids or `(docid, score)` pairs as `io.read_trec_run` gives,
    whose scores are then ignored)."""
    if isinstance(entry, Mapping):
        return rank_by_score(entry)
    if isinstance(entry, (str, bytes)) or not isinstance(entry, Sequence):
        raise InputError(f"run entry of query {qid!r} must be a {{docid: score}} dict or a docid list")
    ranking = [item[0] if isinstance(item, (tuple, list)) else item for item in entry]
    if len(set(ranking)) != len(ranking):
        raise InputError(f"run entry of query {qid!r} lists a docid more than once")
    return ranking


def evaluate_run(
    run: Mapping[str, Mapping[str, float]] | Mapping[str, Sequence[str]],
    qrels: Mapping[str, Mapping[str, int]],
    metrics: tuple[str, ...] = ("ndcg@1", "ndcg@5", "ndcg@10", "recall@10", "mrr@10"),
    rel_level: int = 1,
) -> dict[str, dict[str, float]]:
    """{qid: {metric: value}} for the queries `pytrec_eval` evaluates: those in the run that have
    at least one judgment in qrels (a query judged but absent from the run is skipped, as there)."""
    for name in metrics:
        parse_metric(name)
    _check_rel_level(rel_level)
    per_query: dict[str, dict[str, float]] = {}
    for qid, entry in run.items():
        judged = qrels.get(qid)
        if not judged:
            continue
        ranking = _as_ranking(qid, entry)
        per_query[qid] = {name: metric_value(name, ranking, judged, rel_level) for name in metrics}
    return per_query


def mean_metrics(per_query: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """Arithmetic mean of each metric over the evaluated queries (pytrec_eval's aggregate);
    an empty input gives an empty dict."""
    sums: dict[str, float] = {}
    for values in per_query.values():
        for name, value in values.items():
            sums[name] = sums.get(name, 0.0) + value
    return {name: total / len(per_query) for name, total in sums.items()}


# ----------------------------------------------------------------------------- GRPO reward (docs/method.md §6)
ANSWER_PATTERN = re.compile(r"<think>.*?</think>\s*<answer>(.*?)</answer>", re.DOTALL)
RECALL_WEIGHT = 0.2
RBO_WEIGHT = 0.1
REWARD_CUTOFF = 10
FORMAT_FAILURE_REWARD = -1.0
COUNT_FAILURE_REWARD = 0.0


@dataclass(frozen=True)
class RewardTerms:
    """Every term of one completion's reward, so a debugger or logger can show why it scored so."""

    format_ok: bool
    count_ok: bool
    ndcg10: float
    recall10: float
    rbo: float
    total: float


def completion_text(completion: CompletionLike) -> str:
    """The generated text of a TRL completion: a plain string, or a conversational list of
    messages whose last one holds the assistant's answer."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Sequence) and completion and isinstance(completion[-1], Mapping):
        content = completion[-1].get("content")
        if isinstance(content, str):
            return content
    raise InputError("completion must be a string or a list of {'role', 'content'} messages")


def teacher_window_ids(initial_list: Sequence[str], teacher_list: Sequence[str]) -> list[int]:
    """The teacher ranking as 1-based window-local ids (positions in `initial_list`)."""
    positions = {str(docid): index for index, docid in enumerate(initial_list, 1)}
    if len(positions) != len(initial_list):
        raise InputError("initial_list contains a docid more than once")
    if not teacher_list:
        raise InputError("teacher_list is empty")
    ids = []
    for docid in teacher_list:
        if str(docid) not in positions:
            raise InputError(f"teacher_list docid {docid!r} is not in initial_list")
        ids.append(positions[str(docid)])
    if len(set(ids)) != len(ids):
        raise InputError("teacher_list contains a docid more than once")
    return ids


def predicted_docids(id_groups: Sequence[str], initial_list: Sequence[str]) -> list[str]:
    """Map window ids (digit strings, 1-based) to docids, best first.

    Ids outside 1..N are dropped. The reference maps id 0 to the last passage (Python's index
    −1); we do not: 0 is not a window id, and honouring it would reward an answer that never
    named passage N as if it had ranked it. A docid reached twice (e.g. "01" and "1") keeps its
    first position.
    """
    docids: list[str] = []
    for group in id_groups:
        index = int(group)
        if 1 <= index <= len(initial_list):
            docid = str(initial_list[index - 1])
            if docid not in docids:
                docids.append(docid)
    return docids


def reward_terms(
    text: str, initial_list: Sequence[str], teacher_list: Sequence[str], relevant_docids: Sequence[str]
) -> RewardTerms:
    """The multi-view reward (docs/method.md §6.1) for one completion.

    −1 when the `<think>…</think> <answer>…</answer>` pattern (case-sensitive) is missing; 0 when
    the answer's digit groups are not as many, and as many distinct, as the teacher's ids;
    otherwise NDCG@10 + 0.2·Recall@10 against binary qrels from `relevant_docids` (the run is the
    predicted order, i.e. scores = −rank) + 0.1·RBO(p=1) of the predicted ids against the teacher's.
    A row without relevant docids scores 0 on NDCG and Recall (the reference would crash on it).
    """
    label = [str(i) for i in teacher_window_ids(initial_list, teacher_list)]
    match = ANSWER_PATTERN.search(text)
    if match is None:
        return RewardTerms(False, False, 0.0, 0.0, 0.0, FORMAT_FAILURE_REWARD)
    predicted = re.findall(r"\d+", match.group(1))
    if len(predicted) != len(label) or len(set(predicted)) != len(set(label)):
        return RewardTerms(True, False, 0.0, 0.0, 0.0, COUNT_FAILURE_REWARD)
    ranking = predicted_docids(predicted, initial_list)
    qrels = {str(docid): 1 for docid in relevant_docids}
    ndcg10 = ndcg_at_k(ranking, qrels, REWARD_CUTOFF)
    recall10 = recall_at_k(ranking, qrels, REWARD_CUTOFF)
    overlap = rbo(predicted, label, p=1.0)
    total = ndcg10 + RECALL_WEIGHT * recall10 + RBO_WEIGHT * overlap
    return RewardTerms(True, True, ndcg10, recall10, overlap, total)


def _check_columns(completions: Sequence, **columns: Sequence | None) -> None:
    """TRL passes one row per completion; a short column would silently misalign rewards."""
    for name, column in columns.items():
        if column is None or len(column) != len(completions):
            got = "nothing" if column is None else f"{len(column)} rows"
            raise InputError(f"reward column {name!r} must have one row per completion ({len(completions)}), got {got}")


def ranking_reward(
    completions: Sequence[CompletionLike],
    initial_list: Sequence[Sequence[str]],
    teacher_list: Sequence[Sequence[str]],
    relevant_docids: Sequence[Sequence[str]],
    **kwargs: object,
) -> list[float]:
    """TRL GRPOTrainer reward callable: dataset columns arrive as lists aligned with `completions`;
    the other keyword arguments TRL passes (prompts, trainer_state, …) are ignored."""
    _check_columns(completions, initial_list=initial_list, teacher_list=teacher_list, relevant_docids=relevant_docids)
    return [
        reward_terms(completion_text(completion), initial, teacher, relevant).total
        for completion, initial, teacher, relevant in zip(completions, initial_list, teacher_list, relevant_docids)
    ]


# ----------------------------------------------------------------------------- graded format reward
_LOOSE_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
_BRACKETED_LIST = re.compile(r"\s*\[\d+\](?:\s*>\s*\[\d+\])*\s*")


def format_checks(text: str, window_len: int) -> dict[str, bool]:
    """The format checks a tiny policy can pass one at a time, so GRPO sees a gradient long
    before it produces a fully valid answer (the main reward is a flat −1 until then)."""
    answer_match = _LOOSE_ANSWER.search(text)
    answer = answer_match.group(1) if answer_match else None
    ids = re.findall(r"\d+", answer) if answer is not None else []
    return {
        "has_think_open": "<think>" in text,
        "has_think_close": "</think>" in text,
        "has_answer_open": "<answer>" in text,
        "has_answer_close": "</answer>" in text,
        "think_then_answer": ANSWER_PATTERN.search(text) is not None,
        "bracketed_list": answer is not None and _BRACKETED_LIST.fullmatch(answer) is not None,
        "every_id_once": answer is not None
        and len(ids) == window_len
        and {int(i) for i in ids} == set(range(1, window_len + 1)),
    }


def format_score(checks: Mapping[str, bool]) -> float:
    """The graded format reward of one completion: the share of its `format_checks` passed (0..1)."""
    return sum(checks.values()) / len(checks)


def format_reward(
    completions: Sequence[CompletionLike], initial_list: Sequence[Sequence[str]], **kwargs: object
) -> list[float]:
    """TRL reward callable: the fraction of `format_checks` each completion passes (0..1);
    the window length is the length of its `initial_list` row."""
    _check_columns(completions, initial_list=initial_list)
    return [
        format_score(format_checks(completion_text(completion), len(initial)))
        for completion, initial in zip(completions, initial_list)
    ]
