"""The lane runners of the Arena: one lane from start to its final state (`run_lane`), for each
kind of reranker — a model streaming every window call through `window.rerank`, a stored label,
a recorded run replayed at its pace, and the BM25 baseline over the shown candidates. Any failure
ends its own lane only."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from reasonrank.arena_figures import judged_metrics
from reasonrank.arena_specs import BM25, LABELS, RECORDED, LabelLookup, RerankerSpec, lane_config
from reasonrank.arena_state import ArenaRun, ArenaStopped, Lane
from reasonrank.backends.base import Backend, BackendError, DeltaSink
from reasonrank.backends.pool import BackendPool
from reasonrank.io import InputError
from reasonrank.retrieve import BM25Index
from reasonrank.types import CandidateList, Completion, GenerationParams, Message, WindowCall
from reasonrank.window import WindowConfig, rerank


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


def run_lane(
    run: ArenaRun,
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
    run: ArenaRun, lane: Lane, spec: RerankerSpec, candidates: CandidateList, config: WindowConfig, pool: BackendPool
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


def _label_lane(run: ArenaRun, lane: Lane, candidates: CandidateList, labels: LabelLookup | None) -> list[str]:
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


def _recorded_lane(run: ArenaRun, lane: Lane, spec: RerankerSpec, candidates: CandidateList) -> list[str]:
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


def _replay_text(run: ArenaRun, lane: Lane, call: WindowCall, paced: bool, pieces: int = 20) -> None:
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
