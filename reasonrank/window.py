"""Sliding-window listwise reranking, batched across queries.

A reasoning reranker sees at most `window` passages at a time, so a top-100 list is reranked by
windows that slide from the back of the list to the front (docs/method.md §4): each window's best half is
carried into the next window, which lets a strong passage climb from rank 100 to rank 1 in one
sweep. The windows of one query depend on each other, but windows of *different* queries do not,
so every window position is one `backend.generate` call over all queries at once: a batch of
top-100 lists costs 9 sequential model calls however many queries it holds. That is what makes
vLLM / batched generation pay off, and it is why the orchestration here stays linear and cheap —
it runs between model calls, while the accelerator waits. The one costly step, preparing passages
(tokenizer + ftfy), does not depend on model output, so it runs ahead in a background thread
while the model generates.

`rerank` dispatches on `WindowConfig.method` (reasonrank.methods); the listwise methods all run
`sliding_window` with their own `ListwiseFormat` (prompt, passage preparation, parser, spans).
"""

from __future__ import annotations

import contextlib
import copy
import functools
import weakref
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

from reasonrank import parse, prompts
from reasonrank.backends.base import Backend, BackendError, TokenizerLike
from reasonrank.io import InputError
from reasonrank.types import (
    CandidateList,
    Completion,
    GenerationParams,
    Message,
    Passage,
    RankResult,
    WindowCall,
)

Span = tuple[int, int]


@dataclass(frozen=True)
class WindowConfig:
    """How to rerank: the paper's setting is window 20, step 10, top 100, one pass.

    Frozen, so one default instance can be shared safely (it is the default of `rerank`).
    `method` names a reranking method of `reasonrank.methods` (default: ReasonRank's listwise
    sliding window); `num_child`, `sort_k` and `max_query_tokens` are knobs of the methods that
    use them (setwise sorts), and the listwise fields are ignored by methods without windows.
    A method's own defaults are applied by `reasonrank.methods.with_defaults`.
    """

    window: int = 20
    step: int = 10
    top_k: int = 100
    passes: int = 1
    max_passage_tokens: int = 512
    generation: GenerationParams = field(default_factory=GenerationParams)
    method: str = "reasonrank"
    num_child: int = 19  # setwise: children per heap node (a comparison shows num_child + 1)
    sort_k: int = 10  # setwise: how many top passages the sort extracts
    max_query_tokens: int | None = None  # truncate the query to N tokens (None: never)
    reasoning_budget: int | None = None  # cap on thinking tokens per call (reasonrank.methods.budget)
    think_free: bool = False  # answer without thinking, where the model's template can

    def __post_init__(self) -> None:
        if self.window < 2:
            raise InputError(f"window must be at least 2 passages, got {self.window}")
        if not 1 <= self.step <= self.window:
            raise InputError(f"step must be between 1 and the window size {self.window}, got {self.step}")
        if self.top_k < 1:
            raise InputError(f"top_k must be at least 1, got {self.top_k}")
        if self.passes < 1:
            raise InputError(f"passes must be at least 1, got {self.passes}")
        if self.max_passage_tokens < 1:
            raise InputError(f"max_passage_tokens must be at least 1, got {self.max_passage_tokens}")
        if self.num_child < 1 or self.sort_k < 1:
            raise InputError(f"num_child and sort_k must be at least 1, got {self.num_child} and {self.sort_k}")
        if self.max_query_tokens is not None and self.max_query_tokens < 1:
            raise InputError(f"max_query_tokens must be at least 1, got {self.max_query_tokens}")
        if self.reasoning_budget is not None and self.reasoning_budget < 1:
            raise InputError(f"reasoning_budget must be at least 1 token, got {self.reasoning_budget}")
        if self.reasoning_budget is not None and self.think_free:
            raise InputError("a reasoning budget and think-free exclude each other: choose one")


def window_spans(n: int, window: int, step: int, top_k: int) -> list[Span]:
    """The `[start, end)` windows of one sweep over a list of `n` candidates, back to front.

    This is the reference loop (docs/method.md §4) with rank_start 0 and rank_end = min(top_k, n), with
    two deliberate differences. The window is clamped to min(window, rank_end) rather than
    min(window, n): with top_k < window the reference loop yields no window at all (e.g. top_k
    10, window 20, step 10). And a one-passage window (n = 1, or the trailing (0, 1) of n = 21
    with window = step = 20) is dropped: a single passage cannot be reordered, so it would only
    cost a model call. Whenever top_k >= window the spans are otherwise exactly the reference's.
    """
    if n < 0 or window < 1 or step < 1 or top_k < 1:
        raise InputError(
            f"window_spans needs n >= 0 and positive window/step/top_k, "
            f"got n={n} window={window} step={step} top_k={top_k}"
        )
    rank_end = min(top_k, n)
    size = min(window, rank_end)
    spans: list[Span] = []
    end, start = rank_end, rank_end - size
    while end > 0 and start + step != 0:
        start = max(start, 0)
        if end - start >= 2:
            spans.append((start, end))
        end -= step
        start -= step
    return spans


@dataclass(frozen=True)
class ListwiseFormat:
    """How one listwise method shows a window and reads its answer; the sliding window is the same.

    The default is ReasonRank's (prompts.prepare_query / prepare_passages / build_messages in
    its rank_GPT_reasoning mode, parse.parse_ranking, `window_spans`). `fix_text` says whether
    a local backend runs ftfy over the rendered chat prompt, as ReasonRank's code does.
    """

    build: Callable[[str, list[str]], list[Message]] = prompts.build_messages
    prepare_query: Callable[[str], str] = prompts.prepare_query
    prepare_passages: Callable[[Sequence[Passage], TokenizerLike | None, int], list[str]] = prompts.prepare_passages
    parse: Callable[[str, int], parse.ParsedRanking] = parse.parse_ranking
    spans: Callable[[int, int, int, int], list[Span]] = window_spans
    fix_text: bool = True


def reasonrank_format(mode: str) -> ListwiseFormat:
    """ReasonRank's format in one of its prompt modes (`prompts.PROMPT_MODES`)."""
    return ListwiseFormat(build=functools.partial(prompts.build_messages, mode=mode))


class _QueryState:
    """One query's progress: its current order (as candidate indices) and its call records.

    Candidates are addressed by index, not docid, so duplicate docids in a first-stage list
    cannot be confused, and reordering a window is one slice assignment of `window` ints.
    """

    __slots__ = ("candidates", "qid", "query", "order", "spans", "prepared", "calls", "format", "method")

    def __init__(self, candidates: CandidateList, config: WindowConfig, fmt: ListwiseFormat) -> None:
        self.candidates = candidates.candidates
        self.qid = candidates.query.qid
        self.query = fmt.prepare_query(candidates.query.text)
        self.order = list(range(len(self.candidates)))
        self.spans = fmt.spans(len(self.candidates), config.window, config.step, config.top_k)
        self.prepared: list[str | None] = [None] * len(self.candidates)
        self.calls: list[WindowCall] = []
        self.format = fmt
        self.method = config.method

    def newcomers(self, position: int) -> range:
        """The candidates that first enter a window at `position` of the first pass.

        Ranks in front of the current window are still in first-stage order, so the newcomers
        are the candidates [start, previous window's start): known before any model call.
        Preparing them when first needed prepares each shown passage once and skips the ones
        no window shows (beyond top_k).
        """
        start, end = self.spans[position]
        return range(start, end if position == 0 else min(end, self.spans[position - 1][0]))

    def window_messages(self, position: int) -> list[Message]:
        start, end = self.spans[position]
        texts = [self.prepared[index] for index in self.order[start:end]]
        return self.format.build(self.query, texts)  # type: ignore[arg-type]

    def apply(self, pass_index: int, position: int, messages: list[Message], completion: Completion) -> None:
        """Parse one completion, reorder its window in place and record the call."""
        start, end = self.spans[position]
        before = self.order[start:end]
        parsed = self.format.parse(completion.text, len(before))
        # A server with a reasoning parser returns the reasoning separately and `text` is the
        # answer; otherwise parsed.reasoning is the <think> text, as parse.split_reasoning finds it.
        reasoning = completion.reasoning if completion.reasoning is not None else parsed.reasoning
        after = [before[j] for j in parsed.order]
        self.order[start:end] = after
        candidates = self.candidates
        self.calls.append(
            WindowCall(
                qid=self.qid,
                pass_index=pass_index,
                position=position,
                start=start,
                end=end,
                prompt=messages,
                raw_output=completion.text,
                reasoning=reasoning,
                parsed=parsed.order,
                reasons=parsed.reasons,
                docids_before=[candidates[i].docid for i in before],
                docids_after=[candidates[i].docid for i in after],
                tokens_in=completion.tokens_in,
                tokens_out=completion.tokens_out,
                seconds=completion.seconds,
                finish_reason=completion.finish_reason,
                method=self.method,
            )
        )

    def result(self) -> RankResult:
        return RankResult(
            qid=self.qid,
            ranking=[self.candidates[i].docid for i in self.order],
            calls=self.calls,
        )


def rerank(
    lists: list[CandidateList],
    backend: Backend,
    config: WindowConfig = WindowConfig(),
    on_step: Callable[[int, int], None] | None = None,
) -> list[RankResult]:
    """Rerank every list with `config.method` (default: ReasonRank's sliding window).

    The methods live in `reasonrank.methods`; each drives `backend` batched across queries.
    """
    from reasonrank.methods import get_method
    from reasonrank.methods.budget import run_method

    return run_method(get_method(config.method), lists, backend, config, on_step)


def sliding_window(
    lists: list[CandidateList],
    backend: Backend,
    config: WindowConfig = WindowConfig(),
    on_step: Callable[[int, int], None] | None = None,
    fmt: ListwiseFormat = ListwiseFormat(),
) -> list[RankResult]:
    """Rerank every list's top_k with back-to-front sliding windows, one model call per position.

    Each pass sweeps all window positions; at position t every query that has a t-th window
    contributes one prompt to a single `backend.generate` call, so the number of calls per pass
    is the largest number of windows of any list (9 for top-100 with window 20 / step 10),
    independent of the number of queries. Candidates beyond top_k keep their first-stage order
    after the reranked head. `on_step(done, total)` is called after every generate call.

    Multiple passes repeat the whole back-to-front sweep over the previous pass's result (the
    RankLLM convention). The ReasonRank repository has an unused multi-pass mode that instead
    starts pass k at rank step*k; it is not reproduced here. `fmt` is the method's prompt,
    passage preparation, parser and window spans (default: ReasonRank 7B/32B).
    """
    states = [_QueryState(candidates, config, fmt) for candidates in lists]
    positions = max((len(state.spans) for state in states), default=0)
    total = positions * config.passes
    done = 0
    newcomers = [
        [(state, index) for state in states if len(state.spans) > p for index in state.newcomers(p)]
        for p in range(positions)
    ]
    chunks = [[state.candidates[index] for state, index in chunk] for chunk in newcomers]
    texts = _prepared_ahead(chunks, backend.tokenizer, config.max_passage_tokens, fmt.prepare_passages)
    generation = config.generation if fmt.fix_text else replace(config.generation, fix_text=False)
    with contextlib.closing(texts):
        for pass_index in range(config.passes):
            for position in range(positions):
                active = [state for state in states if len(state.spans) > position]
                if pass_index == 0:
                    for (state, index), text in zip(newcomers[position], next(texts)):
                        state.prepared[index] = text
                batch = [state.window_messages(position) for state in active]
                completions = backend.generate(batch, generation)
                if len(completions) != len(batch):
                    raise BackendError(
                        f"backend {backend.name!r} returned {len(completions)} completions "
                        f"for {len(batch)} prompts (window position {position}, pass {pass_index})"
                    )
                for state, messages, completion in zip(active, batch, completions):
                    state.apply(pass_index, position, messages, completion)
                done += 1
                if on_step is not None:
                    on_step(done, total)
    return [state.result() for state in states]


def _prepared_ahead(
    chunks: list[list[Passage]],
    tokenizer: TokenizerLike | None,
    max_tokens: int,
    prepare: Callable[[Sequence[Passage], TokenizerLike | None, int], list[str]] = prompts.prepare_passages,
) -> Iterator[list[str]]:
    """`prepare` (default `prompts.prepare_passages`) of each chunk, in order, computed ahead in a background thread.

    Which passages enter each window position of the first pass is known before any model call,
    so their preparation (tokenizer + ftfy, the costly part) runs while the model generates
    instead of between calls, where the accelerator would wait. The thread works with its own
    copy of the tokenizer: an HF fast tokenizer must not be used from two threads at once, and
    the backend may tokenize with the original during generate. If the tokenizer cannot be
    copied, each chunk is prepared in the caller's thread when it is asked for. Either way the
    strings are the same; only when they are computed differs.
    """
    private = _borrow_copy(tokenizer)
    if private is _NO_COPY:
        yield from (prepare(chunk, tokenizer, max_tokens) for chunk in chunks)
        return
    try:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="reasonrank-prepare") as pool:
            yield from pool.map(lambda chunk: prepare(chunk, private, max_tokens), chunks)
    finally:  # the pool has stopped, so the copy is free again
        _spare_copies(tokenizer).append(private)


_NO_COPY = object()
#: Tokenizer copies not in use, per original (weakly keyed: they go when the original goes).
#: Copying a large vocabulary is slow (docs/benchmarks.md), so copies are reused across rerank calls
#: instead of being made per call; each copy serves one rerank at a time. A tokenizer changed
#: after its first rerank (e.g. tokens added) would keep being served by its stale copies.
_SPARE_COPIES: weakref.WeakKeyDictionary[Any, list[Any]] = weakref.WeakKeyDictionary()


def _spare_copies(tokenizer: Any) -> list[Any]:
    if tokenizer is None:  # nothing to share: every "copy" is None
        return []
    try:
        return _SPARE_COPIES.setdefault(tokenizer, [])
    except TypeError:  # not weakly referenceable: copies are made per call and dropped
        return []


def _borrow_copy(tokenizer: Any) -> Any:
    """A copy of `tokenizer` that no other thread uses, or `_NO_COPY` when none can be made."""
    spares = _spare_copies(tokenizer)
    try:
        return spares.pop()
    except IndexError:
        pass
    try:
        return copy.deepcopy(tokenizer)
    except Exception:  # a tokenizer that cannot be copied only means: no overlap
        return _NO_COPY
