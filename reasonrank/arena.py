"""The Arena: several rerankers on one candidate list at once, each one's reasoning streamed live.

Why a module of its own rather than a loop in the UI: the demo's promise is that people watch
models think side by side, so every reranker runs on its own thread (a slow endpoint never holds
up a fast local model), streams its output through `Backend.stream`, and fails alone — an
unreachable server or a broken answer becomes that lane's error while the others finish. The
ranking itself is `reasonrank.window.rerank`, unchanged: a thin backend wrapper turns each window
call into a streamed one, so the Arena ranks exactly as the CLI does and keeps every `WindowCall`
for the window inspector. `run_arena` yields snapshots of all lanes whenever something changed
(at most one per `tick_s`), which a UI renders as they come.

A model lane runs one reranking method (`reasonrank.methods`): a registry entry picked "as is"
runs ReasonRank's sliding window; `with_method` makes the lane "<entry> · <method>" that runs
another method on the same model, so methods compare side by side on one model. Such a lane takes
the method's own defaults (sampling, set size, truncation) except what the Arena's form sets
(top k, window, step, max new tokens), which every lane shares.

Besides model backends, two baselines are always offered: "BM25" (BM25 scores over the shown
candidates) and "stored labels" (a teacher/model ranking already in the label store, looked up
through a callable so this library never touches the database); and "recorded" lanes replay a
real model run stored on disk (reasonrank.replay), at its recorded pace or at once, with no model.

Figures use one relevance convention per dataset (`rel_level_for`): TREC DL counts grade >= 2 as
relevant for Recall and MRR (trec_eval -l 2, as Eval runs it), every other set grade >= 1.
"""

from __future__ import annotations

import contextvars
import copy
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

from reasonrank.backends import BACKEND_KINDS
from reasonrank.backends.base import Backend, BackendConfig, BackendError, DeltaSink
from reasonrank.backends.pool import BackendPool
from reasonrank.io import InputError
from reasonrank.methods import get_method, with_defaults
from reasonrank.metrics import metric_value
from reasonrank.retrieve import BM25Index, judged_without
from reasonrank.types import CandidateList, Completion, GenerationParams, Label, Message, WindowCall
from reasonrank.window import WindowConfig, rerank

BM25 = "bm25"
LABELS = "labels"
RECORDED = "recorded"
#: the reranker kinds the Arena runs: model backends, the two baselines and recorded runs.
ARENA_KINDS = (*BACKEND_KINDS, BM25, LABELS, RECORDED)
MAX_RERANKERS = 4
#: the figures each lane shows against the judgments
METRICS = ("ndcg@10", "recall@10", "mrr@10")
#: datasets whose binary metrics count only grade >= 2 as relevant (the TREC DL convention)
TREC_GRADED = ("trec-dl19", "trec-dl20", "dl19", "dl20")

#: Finds the stored label of a candidate list (by its dataset and qid), or None when there is none.
LabelLookup = Callable[[CandidateList], Label | None]
#: joins a registry entry and a method in a lane's name ("tiny · rank1")
METHOD_JOIN = " · "


class ArenaStopped(BackendError):
    """Raised inside a lane when the viewer went away, so its model stops at the next token."""


@dataclass(frozen=True)
class RerankerSpec:
    """A named reranker as the registry holds it: a kind, a model and the backend's options."""

    name: str
    backend: str  # one of ARENA_KINDS
    model: str = ""
    options: Mapping[str, Any] = field(default_factory=dict)
    method: str = ""  # a reasonrank.methods name; "" runs ReasonRank's sliding window

    def backend_config(self) -> BackendConfig:
        """The BackendConfig of a model reranker; an option that is no BackendConfig field fails."""
        if self.backend not in BACKEND_KINDS:
            raise InputError(f"reranker {self.name!r} ({self.backend}) has no model backend")
        known = {f.name for f in fields(BackendConfig)} - {"kind", "model"}
        unknown = sorted(set(self.options) - known)
        if unknown:
            raise InputError(
                f"reranker {self.name!r}: unknown option(s) {', '.join(unknown)}; valid: {', '.join(sorted(known))}"
            )
        return BackendConfig(kind=self.backend, model=self.model, **dict(self.options))


def with_method(spec: RerankerSpec, method: str) -> RerankerSpec:
    """`spec`'s model run with `method`, as the lane "<entry> · <method>"."""
    if spec.backend not in BACKEND_KINDS:
        raise InputError(f"reranker {spec.name!r} ({spec.backend}) has no model, so it runs no method")
    get_method(method)  # an unknown name fails here, with the list of methods
    return RerankerSpec(f"{spec.name}{METHOD_JOIN}{method}", spec.backend, spec.model, spec.options, method)


def lane_config(config: WindowConfig, method: str) -> WindowConfig:
    """The config a lane running `method` uses: the method's defaults, then the Arena's own
    settings (top k, window, step, max new tokens) on top, so every lane gets the same form."""
    if not method:
        return config
    own = with_defaults(method, config)
    return replace(
        own,
        top_k=config.top_k,
        window=config.window,
        step=config.step,
        generation=replace(own.generation, max_new_tokens=config.generation.max_new_tokens),
    )


@dataclass
class Lane:
    """One reranker's column: live output while it runs, then its ranking, figures or error.

    Times are seconds since the Arena run started (a click), so they compare across lanes.
    """

    name: str
    backend: str
    method: str = ""  # the reranking method of a model lane ("" for baselines and recordings)
    paradigm: str = ""  # that method's paradigm: listwise | setwise | pointwise | groupwise
    status: str = "waiting"
    live_reasoning: str = ""  # streamed reasoning of the window being generated
    live_text: str = ""  # streamed answer text of that window (inline <think> included)
    windows_done: int = 0
    windows_total: int = 0
    calls: list[WindowCall] = field(default_factory=list)
    ranking: list[str] | None = None
    reasoning: str | None = None  # a stored label's reasoning (model lanes keep theirs in calls)
    note: str = ""  # where a baseline's or a recording's ranking comes from (provenance)
    metrics: dict[str, float] = field(default_factory=dict)
    tokens_in: int = 0
    tokens_out: int = 0
    first_delta_s: float | None = None
    seconds: float | None = None
    error: str | None = None

    def snapshot(self) -> Lane:
        """A copy that later updates by the lane's thread cannot change."""
        copied = copy.copy(self)
        copied.calls = list(self.calls)
        copied.ranking = None if self.ranking is None else list(self.ranking)
        copied.metrics = dict(self.metrics)
        return copied

    def summary(self) -> dict[str, Any]:
        """Plain figures for an API answer or a summary row (no prompts: they are large)."""
        return {
            "name": self.name,
            "backend": self.backend,
            "method": self.method,
            "status": self.status,
            "ranking": self.ranking,
            "metrics": dict(self.metrics),
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "seconds": self.seconds,
            "first_delta_s": self.first_delta_s,
            "windows": self.windows_done,
            "error": self.error,
        }


def rel_level_for(dataset: str | None) -> int:
    """The lowest grade Recall and MRR count as relevant on `dataset` (nDCG uses every grade)."""
    return 2 if dataset in TREC_GRADED else 1


def relevance_note(dataset: str | None) -> str:
    """The convention in words, for a caption under the figures."""
    level = rel_level_for(dataset)
    why = " (TREC DL convention, as Eval's --rel-level 2)" if level == 2 else ""
    return f"Recall and MRR count grade ≥ {level} as relevant{why}; nDCG uses the graded judgments."


def judged_metrics(ranking: Sequence[str], candidates: CandidateList) -> dict[str, float]:
    """METRICS against the list's qrels; {} when it has none. Excluded ids leave the ranking and
    the qrels first (BRIGHT's rule), as in benchmark runs; relevance as `rel_level_for`."""
    if not candidates.qrels:
        return {}
    excluded = set(candidates.excluded_ids)
    kept = [docid for docid in ranking if docid not in excluded]
    qrels = judged_without(candidates.qrels, excluded)
    level = rel_level_for(candidates.dataset)
    return {name: metric_value(name, kept, qrels, level) for name in METRICS}


class _Streamed(Backend):
    """Presents a backend to `window.rerank` so that every window call streams into a lane."""

    def __init__(self, inner: Backend, on_window: Callable[[], None], on_delta: DeltaSink) -> None:
        self.inner = inner
        self.name = inner.name
        self.tokenizer = inner.tokenizer
        self._on_window = on_window
        self._on_delta = on_delta

    def generate(self, prompts: list[list[Message]], params: GenerationParams) -> list[Completion]:
        completions = []
        for messages in prompts:
            self._on_window()
            completions.append(self.inner.stream(messages, params, self._on_delta))
        return completions

    def complete(self, texts: list[str], params: GenerationParams) -> list[Completion]:
        """Raw text prompts one at a time, each shown in the lane once it is complete (no backend
        streams raw text), so a pointwise lane shows every judgement as it lands."""
        completions = []
        for text in texts:
            self._on_window()
            [completion] = self.inner.complete([text], params)
            if completion.reasoning:
                self._on_delta("reasoning", completion.reasoning)
            if completion.text:
                self._on_delta("text", completion.text)
            completions.append(completion)
        return completions


def _lane(spec: RerankerSpec) -> Lane:
    if spec.backend not in BACKEND_KINDS:
        return Lane(spec.name, spec.backend)
    method = get_method(spec.method or "reasonrank")
    return Lane(spec.name, spec.backend, method=method.name, paradigm=method.paradigm)


class _ArenaRun:
    """The shared state of one run: lanes, a change counter, and the condition that guards both."""

    def __init__(self, specs: Sequence[RerankerSpec]) -> None:
        self.lanes = [_lane(spec) for spec in specs]
        self.changed = threading.Condition()
        self.version = 0
        self.urgent = False
        self.finished = 0
        self.started = time.monotonic()
        self.stop = threading.Event()

    def update(self, lane: Lane, change: Callable[[Lane], None]) -> None:
        with self.changed:
            before = (lane.status, lane.first_delta_s)
            change(lane)
            self.version += 1
            # a status change or a lane's first token is shown at once; more text can wait a tick
            self.urgent = self.urgent or (lane.status, lane.first_delta_s) != before
            self.changed.notify_all()

    def since_start(self) -> float:
        return time.monotonic() - self.started

    def snapshot(self) -> list[Lane]:
        return [lane.snapshot() for lane in self.lanes]


def run_arena(
    candidates: CandidateList,
    specs: Sequence[RerankerSpec],
    config: WindowConfig = WindowConfig(),
    *,
    pool: BackendPool | None = None,
    labels: LabelLookup | None = None,
    tick_s: float = 0.05,
) -> Iterator[list[Lane]]:
    """Run every reranker on `candidates` concurrently; yield all lanes each time one changed.

    A lane's status change or first token is yielded at once; further streamed text at most once
    per `tick_s`, so a UI re-renders a few times a second however fast the models write. The last
    snapshot has every lane "done" or "error". Closing the iterator early stops the
    lanes at their next streamed token (their threads then end by themselves).
    """
    _check_specs(specs)
    if not candidates.candidates:
        raise InputError("the candidate list is empty")
    pool = pool or BackendPool()
    run = _ArenaRun(specs)
    for lane, spec in zip(run.lanes, specs):
        threading.Thread(  # in the caller's context: ZeroGPU reads the visitor's request from it
            target=contextvars.copy_context().run,
            args=(_run_lane, run, lane, spec, candidates, config, pool, labels),
            name=f"arena-{spec.name}",
            daemon=True,
        ).start()
    seen, last = -1, 0.0
    try:
        while True:
            with run.changed:
                if not run.changed.wait_for(lambda seen=seen: run.version != seen, timeout=1.0):
                    continue
                wait = 0.0 if run.urgent else tick_s - (time.monotonic() - last)
            if wait > 0:  # only more streamed text: let it gather into one update per tick
                with run.changed:
                    run.changed.wait_for(lambda: run.urgent, timeout=wait)
            with run.changed:
                seen, done, run.urgent = run.version, run.finished == len(run.lanes), False
                snapshot = run.snapshot()
            last = time.monotonic()
            yield snapshot
            if done:
                return
    finally:
        run.stop.set()


def _check_specs(specs: Sequence[RerankerSpec]) -> None:
    if not 1 <= len(specs) <= MAX_RERANKERS:
        raise InputError(f"pick 1 to {MAX_RERANKERS} rerankers, got {len(specs)}")
    names = [spec.name for spec in specs]
    if len(set(names)) != len(names):
        raise InputError(f"each reranker may run once; got {names}")
    for spec in specs:
        if spec.backend not in ARENA_KINDS:
            raise InputError(
                f"reranker {spec.name!r}: unknown backend {spec.backend!r}; expected one of {', '.join(ARENA_KINDS)}"
            )
        if spec.method:
            if spec.backend not in BACKEND_KINDS:
                raise InputError(f"reranker {spec.name!r} ({spec.backend}) has no model, so it runs no method")
            get_method(spec.method)


def _run_lane(
    run: _ArenaRun,
    lane: Lane,
    spec: RerankerSpec,
    candidates: CandidateList,
    config: WindowConfig,
    pool: BackendPool,
    labels: LabelLookup | None,
) -> None:
    """One lane from start to its final state; any failure ends this lane only."""
    run.update(lane, lambda ln: setattr(ln, "status", "running"))
    try:
        if spec.backend == BM25:
            ranking = bm25_ranking(candidates, config.top_k)
        elif spec.backend == LABELS:
            ranking = _label_lane(run, lane, candidates, labels)
        elif spec.backend == RECORDED:
            ranking = _recorded_lane(run, lane, spec, candidates)
        else:
            ranking = _model_lane(run, lane, spec, candidates, config, pool)
    except Exception as exc:  # failure stays local: this lane shows it, the others go on
        message = str(exc).strip().splitlines()
        error = (
            message[0]
            if message and isinstance(exc, (BackendError, InputError))
            else f"{type(exc).__name__}: {message[0] if message else 'no message'}"
        )

        def failed(ln: Lane) -> None:
            ln.status, ln.error, ln.seconds = "error", error, run.since_start()
            run.finished += 1

        run.update(lane, failed)
        return

    def finished(ln: Lane) -> None:
        ln.ranking = ranking
        ln.metrics = judged_metrics(ranking, candidates)
        if ln.calls:  # a stored label brought its own counts
            ln.tokens_in = sum(call.tokens_in for call in ln.calls)
            ln.tokens_out = sum(call.tokens_out for call in ln.calls)
        ln.status, ln.seconds = "done", run.since_start()
        run.finished += 1

    run.update(lane, finished)


def _model_lane(
    run: _ArenaRun, lane: Lane, spec: RerankerSpec, candidates: CandidateList, config: WindowConfig, pool: BackendPool
) -> list[str]:
    backend_config = spec.backend_config()

    def on_window() -> None:
        if run.stop.is_set():
            raise ArenaStopped("the Arena run was stopped")

        def clear(ln: Lane) -> None:
            ln.live_reasoning = ln.live_text = ""

        run.update(lane, clear)

    def on_delta(kind: str, text: str) -> None:
        if run.stop.is_set():
            raise ArenaStopped("the Arena run was stopped")

        def add(ln: Lane) -> None:
            if ln.first_delta_s is None and text:
                ln.first_delta_s = run.since_start()
            if kind == "reset":
                ln.live_reasoning = ln.live_text = ""
            elif kind == "reasoning":
                ln.live_reasoning += text
            else:
                ln.live_text += text

        run.update(lane, add)

    def on_step(done: int, total: int) -> None:
        def progress(ln: Lane) -> None:
            ln.windows_done, ln.windows_total = done, total

        run.update(lane, progress)

    with pool.lease(backend_config) as backend:
        streamed = _Streamed(backend, on_window, on_delta)
        [result] = rerank([candidates], streamed, lane_config(config, spec.method), on_step=on_step)
    run.update(lane, lambda ln: setattr(ln, "calls", list(result.calls)))
    return result.ranking


def _label_lane(run: _ArenaRun, lane: Lane, candidates: CandidateList, labels: LabelLookup | None) -> list[str]:
    if labels is None:
        raise InputError("no label store is connected, so there are no stored labels")
    label = labels(candidates)
    where = f"{candidates.dataset or 'this list'}/{candidates.query.qid}"
    if label is None:
        raise InputError(f"no stored label for {where}")
    ranking = merged_ranking(label.ranking, candidates.docids)
    if not set(label.ranking) & set(candidates.docids):
        raise InputError(f"the stored label of {where} ranks none of these candidates")

    def show(ln: Lane) -> None:
        ln.reasoning = label.reasoning
        ln.live_reasoning = label.reasoning or ""
        ln.live_text = label.raw_output or f"(stored label by {label.model or label.source})"
        ln.note = f"stored {label.source} label by {label.model or label.source} from the label store"
        ln.tokens_in, ln.tokens_out = label.tokens_in, label.tokens_out

    run.update(lane, show)
    return ranking


def _recorded_lane(run: _ArenaRun, lane: Lane, spec: RerankerSpec, candidates: CandidateList) -> list[str]:
    """Replay a recording's calls for this query: each window's recorded text appears as the
    model wrote it (spread over its recorded seconds when pace is "recorded"), then its order."""
    from reasonrank.replay import PACES, apply_call, calls_for, load_recording

    pace = spec.options.get("pace", "recorded")
    if pace not in PACES:
        raise InputError(f"reranker {spec.name!r}: pace must be one of {', '.join(PACES)}, got {pace!r}")
    recording = load_recording(spec.model)
    calls = calls_for(recording, candidates)
    note = recording.provenance()
    if pace == "recorded" and not any(call.seconds for call in calls):
        note += " · no timings were recorded, so it replays at once"
    run.update(lane, lambda ln: setattr(ln, "note", note))
    order = list(candidates.docids)
    for done, call in enumerate(calls):
        order = apply_call(order, call)  # checked before any text is shown
        _replay_text(run, lane, call, pace == "recorded")

        def finish_window(ln: Lane, call: WindowCall = call, done: int = done) -> None:
            ln.calls.append(call)
            ln.windows_done, ln.windows_total = done + 1, len(calls)

        run.update(lane, finish_window)
    return order


def _replay_text(run: _ArenaRun, lane: Lane, call: WindowCall, paced: bool, pieces: int = 20) -> None:
    """Show a recorded call's reasoning and answer; paced, in `pieces` steps over call.seconds."""
    reasoning, text = call.reasoning or "", call.raw_output
    steps = pieces if paced and call.seconds > 0 else 1
    for step in range(1, steps + 1):
        if run.stop.is_set():
            raise ArenaStopped("the Arena run was stopped")
        if steps > 1:
            time.sleep(call.seconds / steps)

        def show(ln: Lane, step: int = step) -> None:
            if ln.first_delta_s is None:
                ln.first_delta_s = run.since_start()
            ln.live_reasoning = reasoning[: len(reasoning) * step // steps]
            ln.live_text = text[: len(text) * step // steps]

        run.update(lane, show)


def merged_ranking(ranked: Sequence[str], first_stage: Sequence[str]) -> list[str]:
    """`ranked`'s docids that are candidates, then the other candidates in first-stage order
    (a label or a BM25 run may cover only part of the shown list)."""
    shown = set(first_stage)
    head = list(dict.fromkeys(docid for docid in ranked if docid in shown))
    placed = set(head)
    return head + [docid for docid in dict.fromkeys(first_stage) if docid not in placed]


def bm25_ranking(candidates: CandidateList, top_k: int) -> list[str]:
    """The top_k candidates reordered by BM25 over the shown passages; the rest keep their place.

    Scores use the candidates as the collection (document frequencies of these passages only), so
    it is a lexical baseline for this list, not the full-corpus first stage that produced it.
    """
    head = candidates.candidates[:top_k]
    unique = {passage.docid: passage for passage in head}
    run = BM25Index(unique).search({candidates.query.qid: candidates.query.text}, k=len(unique))
    scored = [docid for docid, _ in run.get(candidates.query.qid, [])]
    return merged_ranking(scored, [p.docid for p in head]) + [docid for docid in candidates.docids[top_k:]]
