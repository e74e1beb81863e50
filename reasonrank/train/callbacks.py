"""Trainer → job events: step metrics for the curves, progress for the bar, a metrics file.

Why a callback rather than reading the trainer's own logs: the job panel reads one small JSONL
events file (reasonrank.jobs), whatever the trainer; TRL's log names (`rewards/ranking_reward/mean`,
`learning_rate`) are mapped once here to the short names the UI plots (`reward_ranking_reward`,
`lr`). The same records go to `<output_dir>/metrics.jsonl`, so a run started from a shell keeps
its curves too, and a resumed run appends to them.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from reasonrank.jobs import EventLog

#: TRL / transformers log key → the name the events carry
_RENAMED = {"learning_rate": "lr", "train_loss": "train_loss_mean"}
_SKIPPED = ("step", "epoch", "total_flos", "train_runtime", "train_samples_per_second", "train_steps_per_second")


def event_values(logs: dict[str, Any]) -> dict[str, float]:
    """Numeric log values under the events' names: `rewards/X/mean` → `reward_X`, its std
    → `reward_X_std`, other slashes become underscores."""
    values: dict[str, float] = {}
    for key, value in logs.items():
        if key in _SKIPPED or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if key.startswith("rewards/"):
            _, name, stat = key.split("/", 2)
            key = f"reward_{name}" if stat == "mean" else f"reward_{name}_{stat}"
        values[_RENAMED.get(key, key.replace("/", "_"))] = float(value)
    return values


def make_events_callback(metrics_path: str | Path):
    """A transformers TrainerCallback writing metrics and progress (transformers imported here)."""
    from transformers import TrainerCallback

    class EventsCallback(TrainerCallback):
        """Each log → one `metrics` event (+ tokens/s); each step → one `progress` event."""

        def __init__(self) -> None:
            self.path = Path(metrics_path)
            self._last: tuple[float, float] | None = None  # (time, tokens seen) at the previous log

        def _tokens_per_s(self, tokens: float | None) -> float | None:
            now = time.monotonic()
            rate = None
            if tokens is not None and self._last is not None and now > self._last[0]:
                rate = (tokens - self._last[1]) / (now - self._last[0])
            self._last = (now, tokens) if tokens is not None else self._last
            return rate

        def on_train_begin(self, args, state, control, **kwargs):
            if not state.is_world_process_zero:  # under accelerate launch only rank 0 reports
                return
            self._last = (time.monotonic(), float(state.num_input_tokens_seen or 0))
            EventLog.current().progress(state.global_step, state.max_steps, unit="step")

        def on_log(self, args, state, control, logs=None, **kwargs):
            values = event_values(logs or {})
            if (
                not state.is_world_process_zero or not values or "train_runtime" in (logs or {})
            ):  # the end-of-training summary
                return
            rate = self._tokens_per_s(values.get("num_tokens"))
            if rate is not None:
                values["tokens_per_s"] = rate
            EventLog.current().metrics(state.global_step, **values)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps({"step": state.global_step, "time": time.time(), **values}) + "\n")

        def on_step_end(self, args, state, control, **kwargs):
            if not state.is_world_process_zero:
                return
            figures = {"epoch": round(state.epoch, 3)} if state.epoch is not None else {}
            EventLog.current().progress(state.global_step, state.max_steps, unit="step", **figures)

    return EventsCallback()
