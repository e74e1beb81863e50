"""Recorded rerankers: replay the stored window calls of a real model run, with no model at all.

A recording is a directory with `recording.json` (who produced it: model, date, settings, source
and licence) and `calls.jsonl` (the project's WindowCall records, reasonrank.io). Replaying applies
each recorded call's permutation to the list being shown, in the recorded order, after checking
that the window holds exactly the passages the model saw; a list that differs (another first
stage, a shallower top-k) is refused with a message rather than replayed onto passages the model
never read. Nothing here writes or invents model text: the text shown is the recorded text.

The Arena runs a recording as a lane (`reasonrank.arena`, kind "recorded"); the Space demo and the
CLI can load the same files through `load_recording`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from reasonrank.io import InputError, read_calls_jsonl
from reasonrank.types import CandidateList, WindowCall

META_FILE = "recording.json"
CALLS_FILE = "calls.jsonl"
PACES = ("recorded", "instant")
_REQUIRED = ("name", "model", "date", "dataset", "source")


@dataclass(frozen=True)
class Recording:
    """A stored run of one model over one dataset, and where it came from."""

    name: str
    model: str
    date: str
    dataset: str
    source: str  # repository @ commit, path
    licence: str = ""
    settings: dict = field(default_factory=dict)
    has_reasoning: bool = False
    calls: dict[str, list[WindowCall]] = field(default_factory=dict)  # qid -> calls in call order

    def provenance(self) -> str:
        """One line naming what is replayed: model, date, settings and source."""
        settings = ", ".join(f"{key} {value}" for key, value in self.settings.items())
        reasoning = "" if self.has_reasoning else " · this model writes no reasoning"
        return f"recorded {self.model} run of {self.date} ({settings}) · source: {self.source}{reasoning}"


def load_recording(directory: str | Path) -> Recording:
    """Read `recording.json` and `calls.jsonl` of a recording directory."""
    directory = Path(directory)
    meta_path = directory / META_FILE
    if not meta_path.is_file():
        raise InputError(f"{meta_path}: file not found (a recording needs {META_FILE} and {CALLS_FILE})")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"{meta_path}: invalid JSON ({exc.msg} at line {exc.lineno})") from None
    missing = [key for key in _REQUIRED if not meta.get(key)]
    if missing:
        raise InputError(f"{meta_path}: missing field {missing[0]!r}")
    calls: dict[str, list[WindowCall]] = {}
    for call in read_calls_jsonl(directory / CALLS_FILE):
        calls.setdefault(call.qid, []).append(call)
    return Recording(
        name=str(meta["name"]),
        model=str(meta["model"]),
        date=str(meta["date"]),
        dataset=str(meta["dataset"]),
        source=str(meta["source"]),
        licence=str(meta.get("licence", "")),
        settings=dict(meta.get("settings") or {}),
        has_reasoning=any(call.reasoning for qid_calls in calls.values() for call in qid_calls),
        calls=calls,
    )


def find_recordings(root: str | Path) -> list[Path]:
    """The recording directories directly under `root` (sorted), [] when there is none."""
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(path.parent for path in root.glob(f"*/{META_FILE}"))


def calls_for(recording: Recording, candidates: CandidateList) -> list[WindowCall]:
    """The recorded calls of this list's query; refused when the dataset or the query differ."""
    where = f"{candidates.dataset or 'pasted'}/{candidates.query.qid}"
    if candidates.dataset != recording.dataset:
        raise InputError(
            f"{recording.name} was recorded on {recording.dataset}, not on {candidates.dataset or 'a pasted list'}"
        )
    calls = recording.calls.get(candidates.query.qid)
    if not calls:
        raise InputError(f"{recording.name} has no recorded calls for {where}")
    return calls


def apply_call(order: list[str], call: WindowCall) -> list[str]:
    """`order` with the call's window replaced by its recorded output; the window must hold
    exactly the passages the model saw, in the order it saw them."""
    if call.end > len(order):
        raise InputError(f"the recording reranked ranks {call.start + 1}–{call.end}; show at least {call.end} passages")
    if order[call.start : call.end] != list(call.docids_before):
        raise InputError(
            f"ranks {call.start + 1}–{call.end} differ from the passages the recorded model saw "
            "(another first stage or window setting); this recording cannot replay onto this list"
        )
    if sorted(call.docids_after) != sorted(call.docids_before):
        raise InputError(f"recorded call for {call.qid} at ranks {call.start + 1}–{call.end} is not a permutation")
    return order[: call.start] + list(call.docids_after) + order[call.end :]


def replay_ranking(calls: Sequence[WindowCall], first_stage: Sequence[str]) -> list[str]:
    """The ranking the recorded calls produce on `first_stage`, applied in call order."""
    order = list(first_stage)
    for call in calls:
        order = apply_call(order, call)
    return order
