"""The state of an Arena run: each reranker's `Lane` (live output, then ranking, figures or
error) and `ArenaRun`, the lanes together with the change counter and the condition that guards
both, which lane threads update and the run loop waits on."""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from reasonrank.arena_specs import RerankerSpec
from reasonrank.backends import BACKEND_KINDS
from reasonrank.backends.base import BackendError
from reasonrank.methods import get_method
from reasonrank.types import WindowCall


class ArenaStopped(BackendError):
    """Raised inside a lane when the viewer went away, so its model stops at the next token."""


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


def _lane(spec: RerankerSpec) -> Lane:
    if spec.backend not in BACKEND_KINDS:
        return Lane(spec.name, spec.backend)
    method = get_method(spec.method or "reasonrank")
    return Lane(spec.name, spec.backend, method=method.name, paradigm=method.paradigm)


class ArenaRun:
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
