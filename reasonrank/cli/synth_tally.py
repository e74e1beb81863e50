"""What a `reasonrank synth` run counts as it goes (SynthTally: the job's live progress figures)
and what it reports at the end (SynthReport: the job's outputs and the CLI's summary line)."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from reasonrank.synth import Price, SynthOutcome

if TYPE_CHECKING:
    from reasonrank.backends.openai import OpenAIBackend


@dataclass
class SynthTally:
    """Live and final figures of a run: per-item outcomes plus the backend's request counts."""

    total: int
    price: Price | None
    started: float = field(default_factory=time.monotonic)
    outcomes: Counter = field(default_factory=Counter)  # kept | filtered | unscored | failed
    errors: Counter = field(default_factory=Counter)  # final failure kind -> items
    duplicates: int = 0  # labels another run stored first
    tokens_in: int = 0
    tokens_out: int = 0
    retries: dict[str, int] = field(default_factory=dict)
    requests: int = 0

    @property
    def done(self) -> int:
        return sum(self.outcomes.values()) + self.duplicates

    def add(self, outcome: SynthOutcome, stored: bool, backend: OpenAIBackend) -> None:
        if outcome.label is not None and not stored:
            self.duplicates += 1
        else:
            self.outcomes[outcome.status] += 1
        if outcome.error_kind:
            self.errors[outcome.error_kind] += 1
        self.sync(backend)

    def sync(self, backend: OpenAIBackend) -> None:
        stats = backend.stats  # every request counts, also those of items that failed
        self.tokens_in, self.tokens_out, self.requests = stats.tokens_in, stats.tokens_out, stats.requests
        self.retries = dict(stats.retries)

    def figures(self) -> dict[str, Any]:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        cost = self.price.cost(self.tokens_in, self.tokens_out) if self.price else None
        return {
            "rate": round(self.done / elapsed, 3),
            "kept": self.outcomes["kept"],
            "filtered": self.outcomes["filtered"],
            "unscored": self.outcomes["unscored"],
            "failed": self.outcomes["failed"],
            "errors": dict(self.errors),
            "retries": self.retries,
            "requests": self.requests,
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "cost_usd": None if cost is None else round(cost, 6),
        }


@dataclass
class SynthReport:
    """What a run did; `budget_spent` says the request budget stopped it before the end."""

    selected: int
    already_labelled: int  # labels of this teacher configuration stored before the run
    tally: SynthTally | None
    budget_spent: bool = False

    def summary(self) -> dict[str, Any]:
        figures = self.tally.figures() if self.tally else {}
        done = self.tally.done if self.tally else 0
        return {
            "selected": self.selected,
            "labelled": done - figures.get("failed", 0),
            "already_labelled": self.already_labelled,
            "budget_spent": self.budget_spent,
            "not_started": self.selected - done,
            **figures,
        }
