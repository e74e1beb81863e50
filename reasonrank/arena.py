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

This module holds the run loop; what a run is asked to run is in `arena_specs`, the lanes' state
in `arena_state`, the lane runners in `arena_lanes` and the figures in `arena_figures`.

Figures use one relevance convention per dataset (`rel_level_for`): TREC DL counts grade >= 2 as
relevant for Recall and MRR (trec_eval -l 2, as Eval runs it), every other set grade >= 1.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Iterator, Sequence

from reasonrank.arena_figures import METRICS, judged_metrics
from reasonrank.arena_lanes import run_lane
from reasonrank.arena_specs import (
    LABELS,
    MAX_RERANKERS,
    RECORDED,
    LabelLookup,
    RerankerSpec,
    check_specs,
    with_method,
)
from reasonrank.arena_state import ArenaRun, Lane
from reasonrank.backends.pool import BackendPool
from reasonrank.io import InputError
from reasonrank.types import CandidateList
from reasonrank.window import WindowConfig

#: run_arena and the names its callers pass to it or read from what it yields
__all__ = [
    "LABELS",
    "MAX_RERANKERS",
    "METRICS",
    "RECORDED",
    "LabelLookup",
    "Lane",
    "RerankerSpec",
    "judged_metrics",
    "run_arena",
    "with_method",
]


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
    check_specs(specs)
    if not candidates.candidates:
        raise InputError("the candidate list is empty")
    pool = pool or BackendPool()
    run = ArenaRun(specs)
    for lane, spec in zip(run.lanes, specs):
        threading.Thread(  # in the caller's context: ZeroGPU reads the visitor's request from it
            target=contextvars.copy_context().run,
            args=(run_lane, run, lane, spec, candidates, config, pool, labels),
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
