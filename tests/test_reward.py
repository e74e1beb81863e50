"""The multi-view GRPO reward (docs/method.md §6) and the graded format reward, against a
transcription of the reference computed with pytrec_eval and the `rbo` package."""

from __future__ import annotations

import math
import random

import pytest
from rbo import RankingSimilarity
from trec_reference import rank_scores, trec_eval

from reasonrank.io import InputError
from reasonrank.metrics import format_checks, format_reward, ranking_reward, reward_terms

TOL = 1e-9


INITIAL = ["d1", "d2", "d3"]
TEACHER = ["d2", "d1", "d3"]  # window ids [2] > [1] > [3]


def answer(ids, think="the second passage answers it"):
    return f"<think>{think}</think>\n<answer>{' > '.join(f'[{i}]' for i in ids)}</answer>"


@pytest.mark.parametrize(
    "text",
    [
        "[2] > [1] > [3]",
        "<THINK>x</THINK><answer>[2] > [1] > [3]</answer>",
        "<think>x</think> so: <answer>[2] > [1] > [3]</answer>",
        "<think>x</think><answer>[2] > [1] > [3]",
        "<answer>[2] > [1] > [3]</answer><think>x</think>",
    ],
)
def test_reward_format_failure_is_minus_one(text):
    terms = reward_terms(text, INITIAL, TEACHER, ["d2"])
    assert terms.total == -1.0 and not terms.format_ok and not terms.count_ok


@pytest.mark.parametrize("ids", [[2, 1], [2, 1, 3, 3], [2, 2, 1], [], [2, 1, 3, 4]])
def test_reward_count_failure_is_zero(ids):
    terms = reward_terms(answer(ids), INITIAL, TEACHER, ["d2"])
    assert terms.total == 0.0 and terms.format_ok and not terms.count_ok


def test_reward_full_cases_by_hand():
    terms = reward_terms(answer([2, 3, 1]), INITIAL, TEACHER, ["d2"])
    assert (terms.ndcg10, terms.recall10) == (1.0, 1.0)
    assert terms.rbo == pytest.approx((1 + 1 / 2 + 1) / 3)
    assert terms.total == pytest.approx(1 + 0.2 + 0.1 * (2.5 / 3))

    terms = reward_terms(answer([3, 1, 2]), INITIAL, TEACHER, ["d2"])
    assert terms.ndcg10 == pytest.approx(1 / math.log2(4))
    assert terms.rbo == pytest.approx((0 + 1 / 2 + 1) / 3)
    assert terms.total == pytest.approx(0.5 + 0.2 + 0.05)

    initial = [f"p{i}" for i in range(1, 13)]
    terms = reward_terms(answer(range(1, 13)), initial, initial, ["p1", "p12"])
    assert terms.ndcg10 == pytest.approx(1 / (1 + 1 / math.log2(3)))
    assert terms.recall10 == 0.5 and terms.rbo == 1.0
    assert terms.total == pytest.approx(terms.ndcg10 + 0.1 + 0.1)


def test_reward_drops_out_of_range_ids_including_zero():
    # id 0 would be the last passage (d3) under the reference's index −1 quirk; we drop it.
    terms = reward_terms(answer([0, 2, 1]), INITIAL, TEACHER, ["d3"])
    assert terms.count_ok and terms.ndcg10 == 0.0 and terms.recall10 == 0.0
    assert terms.rbo == pytest.approx((0 + 1 / 2 + 2 / 3) / 3)
    terms = reward_terms(answer([4, 3, 1]), INITIAL, TEACHER, ["d3"])
    assert terms.ndcg10 == 1.0  # [4] dropped, so d3 is ranked first


def test_reward_rejects_teacher_docids_outside_the_window():
    with pytest.raises(InputError, match="'zz' is not in initial_list"):
        reward_terms(answer([1, 2, 3]), INITIAL, ["d1", "zz", "d3"], ["d1"])


def reference_reward(text, initial_list, teacher_list, relevant_docids):
    """docs/method.md §6.1 computed with pytrec_eval and the rbo package (for ids 1..N+k, never 0)."""
    import re

    match = re.search(r"<think>.*?</think>\s*<answer>(.*?)</answer>", text, re.DOTALL)
    if not match:
        return -1.0
    pred = re.findall(r"\d+", match.group(1))
    label = [str(initial_list.index(d) + 1) for d in teacher_list]
    if len(pred) != len(label) or len(set(pred)) != len(set(label)):
        return 0.0
    docids = [initial_list[int(i) - 1] for i in pred if int(i) <= len(initial_list)]
    values = trec_eval(
        {"1": {d: 1 for d in relevant_docids}}, {"1": rank_scores(docids)}, ["ndcg_cut.10", "recall.10"]
    )["1"]
    return values["ndcg_cut_10"] + 0.2 * values["recall_10"] + 0.1 * RankingSimilarity(pred, label).rbo()


def random_reward_rows(seed, n):
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        size = rng.choice([20, 20, 20, 7])
        initial = [f"doc{rng.randint(0, 10**6)}-{i}" for i in range(size)]
        teacher = rng.sample(initial, size)
        relevant = rng.sample(initial, rng.randint(1, 5)) + ["not-in-window"] * (rng.random() < 0.2)
        ids = rng.sample(range(1, size + 1), size)
        roll = rng.random()
        if roll < 0.1:
            ids[rng.randrange(size)] = size + rng.randint(1, 9)  # out of range, dropped
        elif roll < 0.2:
            ids = ids[:-1]  # count failure
        elif roll < 0.25:
            ids[0] = ids[1]  # duplicate
        text = answer(ids, think=rng.choice(["short", "multi\nline [3] reasoning", ""]))
        if rng.random() < 0.1:
            text = text.replace("</think>", "")
        rows.append((text, initial, teacher, relevant))
    return rows


def test_reward_total_equals_pytrec_eval_and_rbo_computation():
    rows = random_reward_rows(seed=5, n=400)
    totals = [reward_terms(*row).total for row in rows]
    expected = [reference_reward(*row) for row in rows]
    assert totals == pytest.approx(expected, abs=TOL)
    assert {-1.0, 0.0} <= set(totals) and max(totals) > 1.0


def test_ranking_reward_trl_style_call():
    rows = random_reward_rows(seed=9, n=16)
    completions = [[{"role": "assistant", "content": text}] for text, *_ in rows]
    columns = {
        "initial_list": [r[1] for r in rows],
        "teacher_list": [r[2] for r in rows],
        "relevant_docids": [r[3] for r in rows],
        "dataset": ["msmarco"] * len(rows),
    }
    rewards = ranking_reward(
        prompts=[[{"role": "user", "content": "q"}]] * len(rows),
        completions=completions,
        completion_ids=[[1, 2]] * len(rows),
        trainer_state=None,
        **columns,
    )
    assert rewards == pytest.approx([reference_reward(*row) for row in rows], abs=TOL)
    assert ranking_reward([r[0] for r in rows], **columns) == rewards
    with pytest.raises(InputError, match="'teacher_list' must have one row per completion"):
        ranking_reward(completions, columns["initial_list"], columns["teacher_list"][:3], columns["relevant_docids"])


def test_graded_format_reward():
    perfect = answer([2, 1, 3])
    assert all(format_checks(perfect, 3).values())
    assert format_reward([perfect, "", [{"role": "assistant", "content": perfect}]], [INITIAL] * 3) == [1.0, 0.0, 1.0]
    # no </think> and id 3 missing: 4 of the 7 checks pass
    checks = format_checks("<think>hmm <answer>[2] > [1]</answer>", 3)
    assert checks == {
        "has_think_open": True,
        "has_think_close": False,
        "has_answer_open": True,
        "has_answer_close": True,
        "think_then_answer": False,
        "bracketed_list": True,
        "every_id_once": False,
    }
    assert format_reward(["<think>hmm <answer>[2] > [1]</answer>"], [INITIAL]) == [4 / 7]
