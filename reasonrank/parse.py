"""Turn a model's free-text answer into a window permutation, repairing what the model got wrong.

The rules are ReasonRank's (docs/method.md §3), reproduced exactly because they decide the ranking of
every real run: a model that forgets a passage, repeats one or stops mid-reasoning still yields
a full permutation. What had to be repaired is reported as reasons, so the UI and the run log
can show how often a model's output was malformed instead of silently fixing it.

Extraction, in order:
  1. `<think>.*?</think>\\s*<answer>(.*?)</answer>` on the lower-cased response -> group 1.
  2. else, if the original response contains `<answer>` -> everything after the last `<answer>`.
  3. else the whole response (typically reasoning cut off by the token limit).
Then every non-digit character becomes a space, each digit group `x` gives the 0-based id
`int(x) - 1`, duplicates are dropped (first occurrence wins), ids outside the window are dropped,
and the ids never mentioned are appended in their original window order.

Reasons (a subset of REASONS, in this order, each at most once):
  - "reasoning_truncated": a `<think>` was opened and never closed and no complete
    think/answer block was found (steps 2 and 3); the generation most likely hit its limit.
  - "no_answer_tag": step 3 — no `<answer>` tag, the ids came from the whole response.
  - "duplicate_ids": an id was listed more than once.
  - "out_of_range": an id outside [1, window_len] was listed.
  - "missing_ids": at least one id was not listed and was appended.
Step 2 alone adds no extraction reason: an unclosed `<answer>` is still read, and any id lost to
the cut shows up as "missing_ids".

Deliberate details:
  - A digit group holding a digit character `int()` rejects (e.g. "²", which `str.isdigit`
    accepts) makes the reference keep the window unchanged (its ValueError branch); here that is
    the empty id list, so every id is appended in window order and "missing_ids" is reported.
  - Digit groups too long to be a window id are treated as out of range without converting
    them, so a 10,000-digit number neither hits Python's int-conversion limit nor costs time.
  - Step 1 is implemented as an equivalent linear scan instead of the backtracking regex,
    whose worst case is polynomial in the number of tags.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from reasonrank.io import InputError

REASONS = ("no_answer_tag", "reasoning_truncated", "missing_ids", "duplicate_ids", "out_of_range")

_THINK_OPEN = "<think>"
_ANSWER_OPEN = "<answer>"
_ANSWER_CLOSE = "</answer>"
_CLOSE_THINK_THEN_ANSWER = re.compile(r"</think>\s*<answer>")
_THINK_SPAN = re.compile(r"<think>(.*?)(</think>|\Z)", re.DOTALL | re.IGNORECASE)
# Digit groups longer than this are never converted whole (they may only be padded with zeros).
_MAX_PLAIN_DIGITS = 64


@dataclass
class ParsedRanking:
    """A window permutation plus what had to be repaired to get it."""

    order: list[int]  # 0-based permutation of range(window_len), best first
    reasons: list[str] = field(default_factory=list)
    reasoning: str | None = None  # text inside <think>…</think>, original case
    answer: str | None = None  # the text the ids were read from; None when no <answer> tag


def _tagged_answer(lowered: str) -> str | None:
    """Group 1 of the reference's think/answer regex, found in linear time.

    Why this is equivalent: any '</think>' that completes a match for a later '<think>' also
    completes one for the first, so the match starts at the first '<think>'; the lazy '.*?'
    then takes the first '</think>\\s*<answer>' after it, and that one succeeds exactly when
    some '</answer>' follows (a later candidate would only start further right).
    """
    start = lowered.find(_THINK_OPEN)
    if start < 0:
        return None
    bridge = _CLOSE_THINK_THEN_ANSWER.search(lowered, start + len(_THINK_OPEN))
    if bridge is None:
        return None
    end = lowered.find(_ANSWER_CLOSE, bridge.end())
    if end < 0:
        return None
    return lowered[bridge.end() : end]


def tagged_answer(lowered: str) -> str | None:
    """Group 1 of `<think>.*?</think>\\s*<answer>(.*?)</answer>` (DOTALL) in `lowered`, or None;
    the regex every R1-style reranker reads its answer with, in linear time."""
    return _tagged_answer(lowered)


def _extract(response: str, think: re.Match[str] | None) -> tuple[str, str | None, list[str]]:
    """(text to read ids from, answer text or None, extraction reasons); `think` is the
    response's first <think> span, used to tell a truncated reasoning apart."""
    tagged = _tagged_answer(response.lower())
    if tagged is not None:
        return tagged, tagged.strip(), []
    reasons = ["reasoning_truncated"] if think is not None and not think.group(2) else []
    if _ANSWER_OPEN in response:
        after = response.split(_ANSWER_OPEN)[-1]
        return after, after.strip(), reasons
    return response, None, reasons + ["no_answer_tag"]


def split_reasoning(response: str) -> tuple[str | None, str | None]:
    """(reasoning, answer): the text inside <think>…</think> and the extracted answer text.

    An unclosed `<think>` yields the text after it (the truncated reasoning). Either part is
    None when absent; the answer is None when the response has no `<answer>` tag at all.
    """
    think = _THINK_SPAN.search(response)
    _, answer, _ = _extract(response, think)
    return _reasoning(think), answer


def _reasoning(think: re.Match[str] | None) -> str | None:
    return think.group(1).strip() if think is not None else None


def _digit_groups(text: str) -> list[str]:
    """Every maximal run of `str.isdigit` characters, as the reference splits them."""
    return "".join(c if c.isdigit() else " " for c in text).split()


def _group_number(group: str) -> int | str:
    """The number a digit group spells; a string of its digits when too long to be a window id.

    Raises ValueError for groups `int()` rejects, like the reference.
    """
    if not group.isdecimal():
        raise ValueError(group)
    if len(group) <= _MAX_PLAIN_DIGITS:
        return int(group)
    digits = "".join(str(unicodedata.decimal(c)) for c in group).lstrip("0")
    return int(digits or "0") if len(digits) <= _MAX_PLAIN_DIGITS else digits


def parse_ranking(response: str, window_len: int) -> ParsedRanking:
    """Read a permutation of range(window_len) from a model response; never fails on text."""
    if window_len < 0:
        raise InputError(f"window length must be >= 0, got {window_len}")
    think = _THINK_SPAN.search(response)
    source, answer, reasons = _extract(response, think)

    try:
        numbers = [_group_number(g) for g in _digit_groups(source)]
    except ValueError:
        numbers = []  # the reference keeps the window unchanged

    seen: set[int | str] = set()
    order: list[int] = []
    duplicate = out_of_range = False
    for number in numbers:
        if number in seen:
            duplicate = True
            continue
        seen.add(number)
        if isinstance(number, str) or not 1 <= number <= window_len:
            out_of_range = True
            continue
        order.append(number - 1)
    missing = [i for i in range(window_len) if i + 1 not in seen]

    if duplicate:
        reasons.append("duplicate_ids")
    if out_of_range:
        reasons.append("out_of_range")
    if missing:
        reasons.append("missing_ids")
    return ParsedRanking(order=order + missing, reasons=reasons, reasoning=_reasoning(think), answer=answer)
