"""Plain dataclasses shared by every layer.

They hold data only: no I/O, no model code, so `db/`, `ui/` and the CLI can pass them around
without importing anything heavy: small Query/Candidate/Result objects plus a record of every
model invocation (docs/architecture.md §2).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypedDict


class Message(TypedDict):
    """One chat turn as OpenAI-compatible servers and chat templates expect it."""

    role: str
    content: str


@dataclass(frozen=True)
class Passage:
    """A candidate passage; `title` is optional and folded into the prompt when present."""

    docid: str
    text: str
    title: str | None = None


@dataclass(frozen=True)
class Query:
    qid: str
    text: str


@dataclass
class CandidateList:
    """A query with its candidates in first-stage order, plus optional judgments."""

    query: Query
    candidates: list[Passage]
    qrels: dict[str, int] | None = None
    excluded_ids: list[str] = field(default_factory=list)
    dataset: str | None = None

    @property
    def docids(self) -> list[str]:
        return [p.docid for p in self.candidates]


@dataclass(frozen=True)
class GenerationParams:
    """Decoding settings; the defaults are the paper's (greedy, 3072 reasoning + 100 tokens)."""

    max_new_tokens: int = 3172
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    top_k: int = 0  # 0 = off (vLLM's -1)
    min_p: float = 0.0
    stop: tuple[str, ...] = ()  # stop strings, excluded from the returned text (vLLM's default)
    logprobs: int = 0  # top-N log-probabilities per generated token (0 = none)
    allowed_token_ids: tuple[int, ...] = ()  # restrict every generated token to these ids
    fix_text: bool = True  # local backends: ftfy over the rendered chat prompt (ReasonRank does)


@dataclass
class Completion:
    """What a backend returns for one prompt.

    `reasoning` is filled when the server returns it separately (`reasoning_content` /
    `reasoning`); otherwise the reasoning stays inline in `text` between <think> tags.
    """

    text: str
    reasoning: str | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    finish_reason: str | None = None
    seconds: float = 0.0
    #: with `GenerationParams.logprobs`: per generated token, token id -> log-probability of the
    #: top-N tokens (the generated token included), as vLLM's `SampleLogprobs` hold them.
    top_logprobs: list[dict[int, float]] | None = None


@dataclass
class WindowCall:
    """One model call for one query: the audit record of a rerank.

    Listwise methods fill it per window. Other methods (reasonrank.methods) reuse it: a setwise
    comparison records the shown set in `docids_before` (prompt order), the chosen label's
    position in `parsed` and the winner in `docids_after`; a pointwise judgement records its one
    passage and its `score`. `position` is then the sequential round the call belonged to.
    """

    qid: str
    pass_index: int
    position: int  # window position in the pass, 0 = the last (first called) window
    start: int
    end: int
    prompt: list[Message]
    raw_output: str
    reasoning: str | None
    parsed: list[int]  # window-local 0-based permutation that was applied
    reasons: list[str]  # repair reasons from reasonrank.parse
    docids_before: list[str]
    docids_after: list[str]
    tokens_in: int = 0
    tokens_out: int = 0
    seconds: float = 0.0
    finish_reason: str | None = None
    method: str = "reasonrank"
    score: float | None = None  # pointwise methods: the passage's relevance score
    # Reasoning budget (reasonrank.methods.budget): the thinking-token cap the call ran under
    # (None: none), whether it ran think-free, the thinking tokens when the budget counted them
    # (None: count the reasoning text), and the text the harness appended to close the thought
    # (budget forcing: part of `raw_output`, but not written by the model).
    reasoning_budget: int | None = None
    think_free: bool = False
    tokens_reasoning: int | None = None
    forced: str | None = None


@dataclass
class Label:
    """One ranking of one candidate list by a teacher, a model or a person.

    The unit the label store reviews and the exports train on: the label JSONL format
    (reasonrank.io), validated imports (reasonrank.imports), the database (db/) and the export
    builders (reasonrank.export) all pass this object, so it lives with the other plain types.
    `ranking` is a permutation of `candidates.docids`; the candidates keep first-stage order,
    which is the order a prompt shows them in.
    """

    candidates: CandidateList  # includes qrels when known, and the dataset name
    ranking: list[str]  # docids, best first
    source: str = "teacher"  # teacher | model | human
    reasoning: str | None = None
    model: str | None = None
    relevant_docids: list[str] | None = None
    raw_output: str | None = None
    reasons: list[str] = field(default_factory=list)  # parse repair reasons, if any
    tokens_in: int = 0
    tokens_out: int = 0


@dataclass
class RankResult:
    """The reranked list of one query and every call that produced it."""

    qid: str
    ranking: list[str]
    calls: list[WindowCall] = field(default_factory=list)
