"""Reward debugger: its terms are the core reward's, its advantages TRL's group normalisation."""

from __future__ import annotations

import math

import pytest

from reasonrank.io import InputError
from reasonrank.metrics import format_reward, ranking_reward, reward_terms
from reasonrank.train.debugger import debug_completion, debug_group, group_advantages

ROW = {
    "initial_list": ["d1", "d2", "d3", "d4"],
    "teacher_list": ["d3", "d1", "d4", "d2"],
    "relevant_docids": ["d3", "d4"],
    "prompt": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}],
}
CASES = [
    "<think>[3] names it.</think>\n<answer>[3] > [1] > [4] > [2]</answer>",  # the teacher's order
    "<think>hm</think> <answer>[2] > [1] > [4] > [3]</answer>",  # valid, poor order
    "<think>hm</think><answer>[3] > [1]</answer>",  # too few ids: 0
    "[3] > [1] > [4] > [2]",  # no tags: -1
    "<think>open only <answer>[1] > [2] > [3] > [4]</answer>",  # no </think>: -1
]


@pytest.mark.parametrize("text", CASES)
def test_terms_equal_the_core_reward(text):
    report = debug_completion(text, ROW, format_weight=0.5)
    core = reward_terms(text, ROW["initial_list"], ROW["teacher_list"], ROW["relevant_docids"])
    assert report.terms == core
    trl_total = ranking_reward([text], [ROW["initial_list"]], [ROW["teacher_list"]], [ROW["relevant_docids"]])[0]
    trl_format = format_reward([text], [ROW["initial_list"]])[0]
    assert report.terms.total == trl_total
    assert report.format_score == trl_format
    assert report.reward == pytest.approx(trl_total + 0.5 * trl_format)


def test_fixed_values():
    best = debug_completion(CASES[0], ROW)
    ndcg = (1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3))  # relevant d3, d4 at ranks 1 and 3
    assert best.terms.ndcg10 == pytest.approx(ndcg) and best.terms.recall10 == 1.0 and best.terms.rbo == 1.0
    assert best.reward == pytest.approx(ndcg + 0.2 + 0.1)
    assert best.ranked_docids == ["d3", "d1", "d4", "d2"]
    assert [debug_completion(text, ROW).reward for text in CASES[2:]] == [0.0, -1.0, -1.0]
    assert debug_completion(CASES[2], ROW).parsed.reasons  # the inference parse repaired the short answer


def test_group_advantages_follow_trl():
    torch = pytest.importorskip("torch")
    group = debug_group(CASES, ROW, format_weight=0.2)
    rewards = torch.tensor(group.rewards, dtype=torch.float64)
    expected = (rewards - rewards.mean()) / (rewards.std(unbiased=True) + 1e-4)
    assert group.advantages == pytest.approx(expected.tolist(), abs=1e-9)
    assert group.std == pytest.approx(float(rewards.std(unbiased=True)))
    assert sum(group.advantages) == pytest.approx(0.0, abs=1e-9)
    mean, std, flat = group_advantages([0.7, 0.7, 0.7])
    assert [mean, std, *flat] == pytest.approx([0.7, 0.0, 0.0, 0.0, 0.0], abs=1e-9)  # a flat group: no signal
    assert group_advantages([1.0, 0.0], scale=False)[2] == [0.5, -0.5]
    assert math.isclose(group_advantages([1.0, 0.0])[2][0], 0.5 / (math.sqrt(0.5) + 1e-4))


def test_bad_rows_and_groups():
    with pytest.raises(InputError, match="missing teacher_list"):
        debug_completion("x", {"initial_list": ["a"], "relevant_docids": []})
    with pytest.raises(InputError, match="at least two"):
        group_advantages([1.0])
