"""A deterministic Backend for tests and benchmarks: a perfect (or deliberately faulty) ranker.

It reads the `[i] passage` lines of the ReasonRank user prompt, scores each passage with a key
function (by default the number after "relevance" in the passage text) and answers in the
model's format, `<think>…</think>\n<answer>[a] > [b] > …</answer>`. Because the answer is a pure
function of the prompt, a test can predict the exact result of a sliding-window rerank, and a
benchmark can attribute all remaining wall time to the orchestration around the model.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Literal

from reasonrank.backends.base import Backend, TokenizerLike
from reasonrank.types import Completion, GenerationParams, Message

Fault = Literal["drop_best", "duplicate", "truncated", "short_batch"]

_PASSAGE_START = re.compile(r"^\[(\d+)\] ", re.MULTILINE)
_RELEVANCE = re.compile(r"relevance (\d+)")
_BODY_END = "\nSearch Query: "


def relevance_in_text(text: str) -> float:
    """Default key: the number after "relevance" in the passage, -1 when there is none."""
    match = _RELEVANCE.search(text)
    return float(match.group(1)) if match else -1.0


def window_passages(messages: list[Message]) -> list[str]:
    """The passage texts of a ReasonRank prompt, in window order ([1], [2], …)."""
    user = messages[-1]["content"]
    body = user[: user.rfind(_BODY_END)]
    starts = list(_PASSAGE_START.finditer(body))
    texts = []
    for k, match in enumerate(starts):
        stop = starts[k + 1].start() if k + 1 < len(starts) else len(body)
        texts.append(body[match.end() : stop].rstrip("\n"))
    return texts


class ScriptedBackend(Backend):
    """Ranks every window by `key(passage text)`, descending, ties by window order.

    - `latency_s`: sleep this long per generate call (a stand-in for model time).
    - `fault`: answer wrongly on purpose — "drop_best" leaves out the best id, "duplicate"
      repeats the best id at the end, "truncated" stops inside <think> (as a model that ran out
      of tokens would), "short_batch" returns one completion fewer than prompts.
    - `separate_reasoning`: put the reasoning in `Completion.reasoning` and only the
      `<answer>` in `text`, as servers with a reasoning parser do.

    Every call is recorded: `batches` holds the prompt lists as received (not copied),
    `call_seconds` the wall time of each call (sleep included) and `call_cpu_seconds` the CPU
    time of the process during it, so a benchmark can separate its own CPU work from waiting.
    """

    name = "scripted"

    def __init__(
        self,
        key: Callable[[str], float] = relevance_in_text,
        *,
        latency_s: float = 0.0,
        fault: Fault | None = None,
        separate_reasoning: bool = False,
        tokenizer: TokenizerLike | None = None,
    ) -> None:
        self.key = key
        self.latency_s = latency_s
        self.fault = fault
        self.separate_reasoning = separate_reasoning
        self.tokenizer = tokenizer
        self.batches: list[list[list[Message]]] = []
        self.call_seconds: list[float] = []
        self.call_cpu_seconds: list[float] = []

    @property
    def calls(self) -> list[int]:
        """Number of prompts in each generate call, in call order."""
        return [len(batch) for batch in self.batches]

    def generate(self, prompts: list[list[Message]], params: GenerationParams) -> list[Completion]:
        began, began_cpu = time.perf_counter(), time.process_time()
        self.batches.append(prompts)
        if self.latency_s:
            time.sleep(self.latency_s)
        answers = [self._answer(messages) for messages in prompts]
        if self.fault == "short_batch":
            answers = answers[:-1]
        seconds = time.perf_counter() - began
        self.call_seconds.append(seconds)
        self.call_cpu_seconds.append(time.process_time() - began_cpu)
        share = seconds / max(len(answers), 1)
        for completion in answers:
            completion.seconds = share
        return answers

    def ranking_for(self, messages: list[Message]) -> list[int]:
        """The 1-based ids a perfect ranker would answer for this prompt."""
        texts = window_passages(messages)
        scored = sorted(range(len(texts)), key=lambda i: (-self.key(texts[i]), i))
        return [i + 1 for i in scored]

    def _answer(self, messages: list[Message]) -> Completion:
        ids = self.ranking_for(messages)
        if self.fault == "drop_best":
            ids = ids[1:]
        elif self.fault == "duplicate":
            ids = ids + ids[:1]
        reasoning = "Ordered the passages by the relevance each one states."
        answer = " > ".join(f"[{i}]" for i in ids)
        tokens_in = sum(len(m["content"].split()) for m in messages)
        if self.fault == "truncated":
            text = f"<think>{reasoning} So far {answer}"
            return Completion(text, None, tokens_in, len(text.split()), "length")
        if self.separate_reasoning:
            text = f"<answer>{answer}</answer>"
            return Completion(text, reasoning, tokens_in, len(text.split()), "stop")
        text = f"<think>{reasoning}</think>\n<answer>{answer}</answer>"
        return Completion(text, None, tokens_in, len(text.split()), "stop")
