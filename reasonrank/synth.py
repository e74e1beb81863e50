"""Teacher synthesis (docs/method.md §7): a reasoning model labels candidate lists over an OpenAI-compatible API.

For each list the teacher (DeepSeek-R1 in the paper) gets a listwise prompt — the RankGPT-style
multi-turn conversation the paper used, or the single-turn ReasonRank prompt — and its reasoning
trace becomes the label's reasoning chain, its answer the label's ranking. When a gold answer is
known, a second, pointwise request asks which passages help answer the query (positive
selection); those positives are what the self-consistency score (nDCG@10, kept when >= alpha)
measures the ranking against, else the list's qrels.

Why an async pipeline that yields one outcome at a time: a teacher call takes tens of seconds,
so throughput comes only from many requests in flight, and a long run must be able to die at
any moment without losing finished work — so the caller stores each outcome as it arrives.
This module knows nothing of the database: it takes CandidateLists and yields Labels.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from reasonrank.aio import all_or_first_failure
from reasonrank.imports.consistency import ALPHA, self_consistency
from reasonrank.io import InputError
from reasonrank.parse import parse_ranking
from reasonrank.prompts import build_messages, build_teacher_messages, prepare_passages, prepare_query
from reasonrank.types import CandidateList, Completion, GenerationParams, Label, Message

if TYPE_CHECKING:
    from reasonrank.backends.openai import Complete, OpenAIBackend

#: "rankgpt": the paper's multi-turn labelling conversation (answer untagged by design);
#: "reasonrank": the single-turn prompt the student is trained on (answer inside <answer> tags).
PROMPTS = ("rankgpt", "reasonrank")

POSITIVES_PROMPT = (
    "Here are a question, a reference answer to it and {num} passages, each indicated by a "
    "numerical identifier [].\n\nQuestion: {query}\n\nReference answer: {answer}\n\n{passages}\n"
    "Which passages help answer the question? A passage helps when it holds information, a "
    "method or a fact that the reference answer uses or needs. List the identifiers of all "
    "helpful passages, e.g., [2] [4]. If no passage helps, answer None."
)


#: the event a remote synth job sends each finished label in (wire format: reasonrank.runners)


# ----------------------------------------------------------------------------- prices
@dataclass(frozen=True)
class Price:
    """US dollars per million tokens."""

    input_per_m: float
    output_per_m: float

    def cost(self, tokens_in: int, tokens_out: int) -> float:
        return (tokens_in * self.input_per_m + tokens_out * self.output_per_m) / 1e6


#: List prices (cache-miss input) when DeepSeek-R1 launched on DeepSeek's API (January 2025);
#: providers change them, so `--price-in/--price-out` override the table.
PRICES: dict[str, Price] = {
    "deepseek-reasoner": Price(0.55, 2.19),
    "deepseek-r1": Price(0.55, 2.19),
    "deepseek-ai/DeepSeek-R1": Price(0.55, 2.19),
}


def price_for(model: str, input_per_m: float | None = None, output_per_m: float | None = None) -> Price | None:
    """The model's price with any given part overridden; None when nothing is known."""
    known = PRICES.get(model)
    if known is None and (input_per_m is None or output_per_m is None):
        return None
    base = known or Price(0.0, 0.0)
    return Price(
        base.input_per_m if input_per_m is None else input_per_m,
        base.output_per_m if output_per_m is None else output_per_m,
    )


# ----------------------------------------------------------------------------- prompts
def listwise_messages(prompt: str, query: str, passages: list[str]) -> list[Message]:
    """The labelling request for one list; `query` and `passages` already prepared."""
    if prompt == "rankgpt":
        return build_teacher_messages(query, passages)
    if prompt == "reasonrank":
        return build_messages(query, passages)
    raise InputError(f"unknown labelling prompt {prompt!r}; choose one of: {', '.join(PROMPTS)}")


def positives_messages(query: str, answer: str, passages: list[str]) -> list[Message]:
    """The pointwise positive-selection request (docs/method.md §7): the gold answer is shown here only,
    never in the listwise request, so the ranking's reasoning stays what a student can learn."""
    body = "".join(f"[{i}] {content}\n" for i, content in enumerate(passages, 1))
    text = POSITIVES_PROMPT.format(num=len(passages), query=query, answer=answer.strip(), passages=body)
    return [Message(role="user", content=text)]


# ----------------------------------------------------------------------------- reading answers
_THINK_OPEN, _THINK_CLOSE = "<think>", "</think>"
_ID = re.compile(r"\d{1,6}")


def split_think(text: str) -> tuple[str | None, str, bool]:
    """(inline reasoning, answer text, reasoning closed) of a completion's text.

    Servers without a reasoning parser return R1's trace inline, and R1's chat template opens
    the `<think>` itself, so the text may hold `<think>…</think>`, or only `…</think>`; an
    unclosed `<think>` is a trace cut off by the token limit (no answer text).
    """
    lowered = text.lower()
    start, end = lowered.find(_THINK_OPEN), lowered.find(_THINK_CLOSE)
    opened = start >= 0 and (end < 0 or start < end)
    if end < 0:
        return (text[start + len(_THINK_OPEN) :].strip(), "", False) if opened else (None, text, True)
    begin = start + len(_THINK_OPEN) if opened else 0
    return text[begin:end].strip(), text[end + len(_THINK_CLOSE) :], True


def _ids_in(text: str, count: int) -> list[int]:
    """1-based ids in [1, count] mentioned in `text`, first mention first."""
    seen: list[int] = []
    for match in _ID.finditer(text):
        number = int(match.group())
        if 1 <= number <= count and number not in seen:
            seen.append(number)
    return seen


@dataclass
class TeacherAnswer:
    """A listwise completion read into a window permutation plus what was wrong with it."""

    order: list[int]  # 0-based permutation of the list, best first
    reasoning: str | None
    reasons: list[str]  # reasonrank.parse reasons
    usable: bool  # the teacher reached an answer naming at least one passage


def read_listwise(completion: Completion, count: int, prompt: str) -> TeacherAnswer:
    """Reasoning from `reasoning_content` (or inline think tags), ranking by the core parser.

    The rankgpt prompt asks for a bare `[2] > [1]` list, so "no_answer_tag" is not a fault
    there. A trace cut off by the token limit yields "reasoning_truncated"; its ids are not read
    from the reasoning (they are musings, not a ranking), so the order stays the first-stage one.
    """
    inline, answer, closed = split_think(completion.text or "")
    reasoning = completion.reasoning or inline
    parsed = parse_ranking(answer, count)
    reasons = [r for r in parsed.reasons if not (prompt == "rankgpt" and r == "no_answer_tag")]
    named = bool(_ids_in(answer, count))
    truncated = not closed or (completion.finish_reason == "length" and not named)
    if truncated and "reasoning_truncated" not in reasons:
        reasons.insert(0, "reasoning_truncated")
    return TeacherAnswer(parsed.order, reasoning, reasons, usable=named and not truncated)


def read_positives(completion: Completion, count: int) -> list[int] | None:
    """0-based indexes of the passages the teacher selected; [] for "None"; None when unread."""
    _, answer, closed = split_think(completion.text or "")
    ids = _ids_in(answer, count)
    if ids:
        return [i - 1 for i in ids]
    if closed and "none" in answer.lower():
        return []
    return None


# ----------------------------------------------------------------------------- the pipeline
@dataclass
class SynthOptions:
    """How each list is labelled (the request options live in the backend and `generation`)."""

    model: str  # recorded on every label
    prompt: str = "rankgpt"
    generation: GenerationParams = field(default_factory=GenerationParams)
    max_passage_tokens: int = 512
    alpha: float = ALPHA
    max_requests: int | None = None  # HTTP requests, retries included; no list starts that could exceed it

    def __post_init__(self) -> None:
        if self.prompt not in PROMPTS:
            raise InputError(f"unknown labelling prompt {self.prompt!r}; choose one of: {', '.join(PROMPTS)}")
        if self.max_requests is not None and self.max_requests < 1:
            raise InputError(f"max_requests must be at least 1, got {self.max_requests}")


@dataclass
class SynthTask:
    """One list to label; `key` is the caller's handle (e.g. a database id), passed back as is."""

    key: Any
    candidates: CandidateList
    gold_answer: str | None = None  # enables positive selection for this list


@dataclass
class SynthOutcome:
    """One list's result: a label (kept or filtered), or the failure its requests ended in."""

    task: SynthTask
    label: Label | None = None
    consistency: float | None = None
    kept: bool = False
    usable: bool = False  # the teacher's answer named passages (see TeacherAnswer)
    error: str | None = None
    error_kind: str | None = None  # rate_limit | server_error | timeout | malformed | connection

    @property
    def status(self) -> str:
        """One of: kept (consistency >= alpha), unscored (usable, nothing to score it against),
        filtered (below alpha, or no usable answer), failed (no label)."""
        if self.label is None:
            return "failed"
        if self.kept:
            return "kept"
        return "unscored" if self.usable and self.consistency is None else "filtered"


def _requests(task: SynthTask, options: SynthOptions, tokenizer: Any) -> list[list[Message]]:
    """The chat requests for one list: the listwise prompt, plus the positives prompt when the
    task has a gold answer. Pure CPU (passage clean-up and truncation), so it runs ahead of need."""
    cl = task.candidates
    if not cl.candidates:
        raise InputError(f"qid {cl.query.qid!r} has no candidates to label")
    passages = prepare_passages(cl.candidates, tokenizer, options.max_passage_tokens)
    query = prepare_query(cl.query.text)
    requests = [listwise_messages(options.prompt, query, passages)]
    if task.gold_answer:
        requests.append(positives_messages(query, task.gold_answer, passages))
    return requests


async def _label_one(
    complete: Complete, task: SynthTask, requests: list[list[Message]], options: SynthOptions
) -> SynthOutcome:
    from reasonrank.backends.openai_retry import RetriesExhausted

    try:  # a failed request cancels its sibling
        completions = await all_or_first_failure(complete(messages) for messages in requests)
    except RetriesExhausted as exhausted:
        return SynthOutcome(task, error=str(exhausted), error_kind=exhausted.kind)
    return _outcome(task, completions, options)


_END = object()  # the prepared-task queue's end marker


def _next_prepared(pending: Iterator[SynthTask], options: SynthOptions, tokenizer: Any) -> Any:
    """The next task with its requests, _END when there is none, or the error preparing it."""
    try:
        task = next(pending, None)
        return _END if task is None else (task, _requests(task, options, tokenizer))
    except Exception as exc:  # raised by the worker that takes it: a bad list stops the run
        return exc


def _outcome(task: SynthTask, completions: list[Completion], options: SynthOptions) -> SynthOutcome:
    cl = task.candidates
    answer = read_listwise(completions[0], len(cl.candidates), options.prompt)
    ranking = [cl.docids[i] for i in answer.order]
    relevant = None
    reasons = list(answer.reasons)
    if len(completions) > 1:
        selected = read_positives(completions[1], len(cl.candidates))
        if selected is None:
            reasons.append("positives_unread")
        else:
            relevant = [cl.docids[i] for i in selected]
    label = Label(
        candidates=cl,
        ranking=ranking,
        source="teacher",
        reasoning=answer.reasoning,
        model=options.model,
        relevant_docids=relevant,
        raw_output=completions[0].text,
        reasons=reasons,
        tokens_in=sum(c.tokens_in for c in completions),
        tokens_out=sum(c.tokens_out for c in completions),
    )
    score = self_consistency(ranking, relevant if relevant is not None else cl.qrels)
    kept = answer.usable and score is not None and score >= options.alpha
    return SynthOutcome(task, label, score, kept, answer.usable)


async def synthesize(
    tasks: Iterable[SynthTask], backend: OpenAIBackend, options: SynthOptions
) -> AsyncIterator[SynthOutcome]:
    """Label every task with up to `backend.config.max_in_flight` lists in progress; outcomes
    come in the order they finish.

    A request that exhausts its retries fails only its own list (an outcome with `error`); a
    permanent failure — bad key, unknown model, unreachable server — stops everything and is
    raised as the backend's one-line BackendError. `tasks` is read lazily, one list per free
    slot, so a caller may stream them from a database.
    """
    pending = iter(tasks)
    in_flight = backend.config.max_in_flight
    finished: asyncio.Queue[SynthOutcome] = asyncio.Queue(maxsize=in_flight)
    # Lists are read and their prompts built in a thread, up to one round ahead: when a round of
    # answers arrives at once, the next requests go out without waiting for that CPU work.
    ready: asyncio.Queue[Any] = asyncio.Queue(maxsize=in_flight)

    async with backend.session(options.generation) as complete:
        first_attempts = 0  # requests the started lists need before any retry

        def affordable(needed: int) -> bool:
            spent = first_attempts + backend.stats.total_retries
            return options.max_requests is None or spent + needed <= options.max_requests

        async def prepare() -> None:
            while (item := await asyncio.to_thread(_next_prepared, pending, options, backend.tokenizer)) is not _END:
                await ready.put(item)
                if isinstance(item, Exception):
                    return
            await ready.put(_END)

        async def worker() -> None:
            nonlocal first_attempts
            while (item := await ready.get()) is not _END:
                if isinstance(item, Exception):
                    ready.put_nowait(item)  # the other workers stop on it too
                    raise item
                task, requests = item
                if not affordable(len(requests)):
                    return
                first_attempts += len(requests)
                await finished.put(await _label_one(complete, task, requests, options))
            ready.put_nowait(_END)  # pass the end on to the next idle worker

        producer = asyncio.create_task(prepare())
        workers = {asyncio.create_task(worker()) for _ in range(in_flight)}
        getter: asyncio.Future | None = None
        try:
            while workers or not finished.empty():
                getter = getter or asyncio.ensure_future(finished.get())
                done, _ = await asyncio.wait({getter, *workers}, return_when=asyncio.FIRST_COMPLETED)
                for task in done - {getter}:
                    workers.discard(task)
                    task.result()  # a permanent failure stops everything here
                if getter in done:
                    yield getter.result()
                    getter = None
        finally:
            for task in [producer, *workers, *([getter] if getter else [])]:
                task.cancel()
            await asyncio.gather(producer, *workers, return_exceptions=True)
