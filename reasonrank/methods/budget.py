"""Reasoning budget: cap a method's thinking tokens, closing the thought the method's own way, or
run it think-free where the model's chat template has a switch for that.

Budget forcing (as in s1, Muennighoff et al. 2025): each prompt is generated for at most `budget`
tokens; a completion that stopped there without closing its thought gets the method's closing
string appended (`Thinking.close`: ReasonRank's "\\n</think>\\n<answer>", Rank-R1's
" </think> <answer>", …) and is continued for at most `Thinking.answer_tokens` more tokens, so
the model answers from what it thought so far. One whose thought closed inside the budget but
whose answer was cut is continued without any forced text. Both steps are batched across every
prompt of the call. The appended string is the harness's, not the model's: each call records it
in `WindowCall.forced`, with the budget and the thinking tokens (`tokens_reasoning`).

Think-free: the prompt is rendered with the chat template's `enable_thinking=False` (Qwen3's
empty `<think>\\n\\n</think>` block, which its template writes itself); a template without that
switch is refused, since a model not trained to answer without thinking has no such mode.

Continuing a chat prompt needs its rendered text, so both modes render prompts here (chat
template, then ftfy when the method asks for it, as `prompts.render_prompt`) and drive the
backend's raw-text `complete`. A transformers backend tokenizes raw text with its special tokens,
so a model whose tokenizer adds a BOS (Llama) would see it twice; Qwen-based models add none.
Rank1 feeds the model raw text already and has its own forced second pass (reasonrank.methods.rank1),
so it applies the budget itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from reasonrank.backends.base import Backend, BackendError
from reasonrank.io import InputError
from reasonrank.types import Completion, GenerationParams, Message, RankResult

if TYPE_CHECKING:
    from reasonrank.methods.base import Method
    from reasonrank.types import CandidateList
    from reasonrank.window import WindowConfig

BUDGET_FORCED = "reasoning_budget_forced"


@dataclass(frozen=True)
class Thinking:
    """How a method's model ends a thought and begins its answer.

    `end` is the tag that closes the thought (seen in an output: the thought is over); `close`
    the string appended when the budget cuts the thought; `answer_tokens` the new tokens allowed
    for the answer after it.
    """

    end: str
    close: str
    answer_tokens: int


def supports_think_free(tokenizer: object) -> bool:
    """Whether the chat template has Qwen3's `enable_thinking` switch."""
    template = getattr(tokenizer, "chat_template", None)
    return isinstance(template, str) and "enable_thinking" in template


def render(messages: list[Message], tokenizer: object, fix: bool, think_free: bool) -> str:
    """The text a local model is fed for `messages` (chat template with the generation prompt,
    ftfy when `fix`), think-free through the template's own switch."""
    from reasonrank.prompts import fix_text

    extra = {"enable_thinking": False} if think_free else {}
    rendered = tokenizer.apply_chat_template(  # type: ignore[attr-defined]
        messages, tokenize=False, add_generation_prompt=True, **extra
    )
    return fix_text(rendered) if fix else rendered


@dataclass
class Forced:
    """What the harness did to one completion: the appended text and the thought's tokens."""

    forced: str | None
    tokens_reasoning: int | None


class BudgetBackend(Backend):
    """`inner` seen through a reasoning budget or the think-free switch (see the module doc)."""

    def __init__(self, inner: Backend, thinking: Thinking, budget: int | None, think_free: bool) -> None:
        if getattr(inner, "tokenizer", None) is None or not hasattr(inner.tokenizer, "apply_chat_template"):
            raise BackendError(
                f"a reasoning budget or think-free run continues the rendered chat prompt, which needs the "
                f"model's tokenizer; the {inner.name} backend has none (give --tokenizer)"
            )
        if think_free and not supports_think_free(inner.tokenizer):
            raise InputError(
                "this model's chat template has no think-free switch (enable_thinking, as Qwen3's); "
                "run it with a reasoning budget instead"
            )
        self.inner, self.thinking, self.budget, self.think_free = inner, thinking, budget, think_free
        self.name = inner.name
        self.tokenizer = inner.tokenizer
        #: by final completion text: what the harness appended and the thought's tokens
        self.record: dict[str, Forced] = {}

    def generate(self, prompts: list[list[Message]], params: GenerationParams) -> list[Completion]:
        texts = [render(messages, self.tokenizer, params.fix_text, self.think_free) for messages in prompts]
        return self.complete(texts, params)

    def complete(self, texts: list[str], params: GenerationParams) -> list[Completion]:
        if self.budget is None:
            return self._checked(texts, params, "think-free")
        first = self._checked(texts, replace(params, max_new_tokens=self.budget), "reasoning budget")
        answer = replace(params, max_new_tokens=self.thinking.answer_tokens)
        pending: list[tuple[int, str]] = []  # (index, text appended before continuing)
        for index, completion in enumerate(first):
            if completion.finish_reason != "length":
                continue
            pending.append((index, "" if self.thinking.end in completion.text else self.thinking.close))
        continued = self._checked([texts[i] + first[i].text + forced for i, forced in pending], answer, "answers")
        merged = list(first)
        for (index, forced), rest in zip(pending, continued):
            thought = first[index]
            merged[index] = Completion(
                text=thought.text + forced + rest.text,
                reasoning=None,
                tokens_in=thought.tokens_in,
                tokens_out=thought.tokens_out + rest.tokens_out,
                finish_reason=rest.finish_reason,
                seconds=thought.seconds + rest.seconds,
                top_logprobs=rest.top_logprobs,
            )
            if forced:
                self.record[merged[index].text] = Forced(forced, thought.tokens_out)
        return merged

    def _checked(self, texts: list[str], params: GenerationParams, what: str) -> list[Completion]:
        completions = self.inner.complete(texts, params) if texts else []
        if len(completions) != len(texts):
            raise BackendError(
                f"backend {self.inner.name!r} returned {len(completions)} completions for {len(texts)} ({what})"
            )
        return completions

    def close(self) -> None:
        """The inner backend belongs to the caller."""


def stamp(results: list[RankResult], config: WindowConfig, record: dict[str, Forced] | None = None) -> None:
    """Write the budget, the think-free switch and what was forced into every call record."""
    for result in results:
        for call in result.calls:
            call.reasoning_budget, call.think_free = config.reasoning_budget, config.think_free
            done = (record or {}).get(call.raw_output)
            if done is not None and done.forced:
                call.forced, call.tokens_reasoning = done.forced, done.tokens_reasoning
                if BUDGET_FORCED not in call.reasons:
                    call.reasons = [*call.reasons, BUDGET_FORCED]


def run_method(
    method: Method,
    lists: list[CandidateList],
    backend: Backend,
    config: WindowConfig,
    on_step: Callable[[int, int], None] | None = None,
) -> list[RankResult]:
    """`method.run`, under the config's reasoning budget or think-free switch when one is set."""
    if config.reasoning_budget is None and not config.think_free:
        return method.run(lists, backend, config, on_step)
    if method.budgets_itself:
        results = method.run(lists, backend, config, on_step)
        stamp(results, config)
        return results
    if method.thinking is None:
        raise InputError(f"method {method.name} has no reasoning to budget")
    wrapped = BudgetBackend(backend, method.thinking, config.reasoning_budget, config.think_free)
    results = method.run(lists, wrapped, config, on_step)
    stamp(results, config, wrapped.record)
    return results
