"""Reward debugger: why one completion scores what it scores, and what GRPO makes of a group.

Why: a GRPO run whose reward stays flat is usually a format problem (a missing `</think>`, one
id too many) that only shows when the terms are laid out for a concrete completion. Every number
here comes from the functions the trainer itself calls (`reward_terms`, `format_checks`, TRL's
group normalisation as in reasonrank.train.grpo), so the debugger cannot disagree with training.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reasonrank.io import InputError
from reasonrank.metrics import RewardTerms, format_checks, format_score, reward_terms
from reasonrank.parse import ParsedRanking, parse_ranking
from reasonrank.train.config import GRPORunConfig

#: TRL adds this to the group's standard deviation before dividing (grpo_trainer, scale_rewards)
ADVANTAGE_EPSILON = 1e-4
#: sampling length of a debugged group: GRPO's completion budget (the paper presets')
DEFAULT_MAX_NEW_TOKENS = GRPORunConfig.max_completion_length


@dataclass(frozen=True)
class CompletionReport:
    """One completion taken apart: the inference parse, each reward term and the totals."""

    text: str
    parsed: ParsedRanking  # what reranking would make of it (repairs included)
    ranked_docids: list[str]  # the parse's order as docids
    terms: RewardTerms  # the multi-view ranking reward, term by term
    format_checks: dict[str, bool]
    format_score: float  # share of format checks passed (the graded format reward)
    reward: float  # what GRPO optimises: terms.total + format_weight × format_score


@dataclass(frozen=True)
class GroupReport:
    """A GRPO group: each completion's report and the advantage TRL would give it."""

    completions: list[CompletionReport]
    rewards: list[float]
    mean: float
    std: float
    advantages: list[float]


def _columns(row: Mapping[str, Any]) -> tuple[list[str], list[str], list[str]]:
    missing = [key for key in ("initial_list", "teacher_list", "relevant_docids") if key not in row]
    if missing:
        raise InputError(f"not an RL row: missing {', '.join(missing)}")
    return (
        [str(d) for d in row["initial_list"]],
        [str(d) for d in row["teacher_list"]],
        [str(d) for d in row["relevant_docids"]],
    )


def debug_completion(text: str, row: Mapping[str, Any], format_weight: float = 0.0) -> CompletionReport:
    """Score `text` against an RL export row exactly as the GRPO reward functions do."""
    initial, teacher, relevant = _columns(row)
    terms = reward_terms(text, initial, teacher, relevant)
    checks = format_checks(text, len(initial))
    score = format_score(checks)
    parsed = parse_ranking(text, len(initial))
    return CompletionReport(
        text=text,
        parsed=parsed,
        ranked_docids=[initial[i] for i in parsed.order],
        terms=terms,
        format_checks=checks,
        format_score=score,
        reward=terms.total + format_weight * score,
    )


def group_advantages(rewards: Sequence[float], scale: bool = True) -> tuple[float, float, list[float]]:
    """TRL's GRPO advantages for one group: (r − mean) / (std + 1e-4), std with Bessel's
    correction; `scale=False` (scale_rewards "none") keeps r − mean. Returns (mean, std, advantages)."""
    if len(rewards) < 2:
        raise InputError("a GRPO group needs at least two completions")
    mean = sum(rewards) / len(rewards)
    std = math.sqrt(sum((r - mean) ** 2 for r in rewards) / (len(rewards) - 1))
    advantages = [(r - mean) / (std + ADVANTAGE_EPSILON) if scale else r - mean for r in rewards]
    return mean, std, advantages


def debug_group(texts: Sequence[str], row: Mapping[str, Any], format_weight: float = 0.0) -> GroupReport:
    """Every completion of one prompt's group, with the advantages GRPO would train on."""
    reports = [debug_completion(text, row, format_weight) for text in texts]
    rewards = [report.reward for report in reports]
    mean, std, advantages = group_advantages(rewards)
    return GroupReport(completions=reports, rewards=rewards, mean=mean, std=std, advantages=advantages)


def as_generated(completion: Any) -> str:
    """The completion as the model wrote it: a server's reasoning parser (vLLM serve, DeepSeek)
    returns the <think> text apart, but the reward scores the whole generation, tags included,
    as GRPO's own rollouts see it."""
    if completion.reasoning is None or "<think>" in completion.text:
        return completion.text
    return f"<think>{completion.reasoning}</think>\n{completion.text.lstrip()}"


def sample_completions(
    row: Mapping[str, Any],
    backend: Any,
    n: int,
    temperature: float = 1.0,
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
    seed: int | None = None,
) -> list[str]:
    """`n` completions of the row's prompt from a backend (a policy under test), as a group."""
    from reasonrank.types import GenerationParams, Message

    prompt = row.get("prompt")
    if not isinstance(prompt, list) or not prompt:
        raise InputError("not an RL row: no prompt messages")
    if n < 1:
        raise InputError(f"ask for at least one sample, got {n}")
    messages = [Message(role=m["role"], content=m["content"]) for m in prompt]
    params = GenerationParams(max_new_tokens=max_new_tokens, temperature=temperature, seed=seed)
    return [as_generated(completion) for completion in backend.generate([messages] * n, params)]
