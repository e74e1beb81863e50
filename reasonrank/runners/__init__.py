"""Where a job's command runs: `local` (a subprocess of the app, the default), `ray` (Ray Jobs) or
`slurm` (`sbatch`).

All run the same `python -m reasonrank <command> …` and feed the same job model (reasonrank.jobs:
a log file, an events file folded into a JobState). `local` is reasonrank.jobs itself: the child
writes its events file directly and is followed by its pid. A remote runner cannot assume that the
worker sees the app's disk (Ray: no shared disk at all; SLURM: only its work root), so:

- **Events travel in the job's own log stream.** The command runs with REASONRANK_JOB_EVENTS=-
  and writes each event to stdout as one line `@@reasonrank-event {json}` (one `write` of the
  whole line, so another writer's output can only precede it on the same line, never split it).
  The app follows the remote log and `mirror_log` splits it into the same two local files a local
  job has — `log.txt` without the tagged lines and `events.jsonl` — so the job panel, history,
  cancel and restart-survival code is the same for every runner. We chose the log stream over the
  label store (PostgreSQL) because it needs nothing but the runner's own API: a worker never
  connects to the app's database, and SQLite apps work too. Delivery lag is one log poll.
- **Inputs travel with the job.** An export file named by `--data` (or `export:ID`, resolved by
  the app) is copied into the job's working directory (`inputs/`) and the command reads it there:
  uploaded with a Ray job; for SLURM, whose `sbatch` uploads nothing, written to the job's folder
  under a work root that the submit host and the nodes share (SLURM's own model; the app's data
  directory is never that folder, see reasonrank.runners.slurm).
- **Outputs stay where they were written** (an `--output-dir` on the cluster) and the app
  registers a trained model by that location when the job's `end` event arrives; the worker runs
  with REASONRANK_REGISTER_BY_APP=1 and never opens the app's store.
- **Synthesized labels come back as events.** The app selects a synth job's items in its own
  store when it submits the job (importing a `--candidates` file first, as a local run would) and
  sends them as an `--items` input (db.synth_remote); with REASONRANK_REGISTER_BY_APP=1 `synth`
  opens no store (nor imports db/) and emits each finished label as one event:
  `{"event": "label", "item": <the app's item id>, "qid", "fingerprint": <teacher configuration>,
  "ranking": [docids], "reasoning", "raw_output", "relevant_docids", "reasons", "consistency",
  "kept", "model", "tokens_in", "tokens_out"}` — no passage texts, and every string with the
  teacher key's value redacted. The app stores each one in its store as the log is mirrored
  (store_label; an offset of its own plus the (item, fingerprint) unique constraint make a
  re-mirrored, duplicated or, after a restart, re-read event store nothing twice), and accepts
  only the job's own items and teacher fingerprint.
- **Cluster address and credentials come from the environment** (RaySettings, SlurmSettings),
  never from the database: a Job row stores only the runner's name, the submission id, the
  address and (slurm) the work root its folder is in.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reasonrank.jobs import EVENT_TAG

RUNNERS = ("local", "ray", "slurm")
#: set in a remote job's environment: the app registers its trained model (it owns the store)
REGISTER_BY_APP_ENV = "REASONRANK_REGISTER_BY_APP"
INPUTS_DIR = "inputs"  # inside a remote job's working directory
_STATE_FILE = "remote.json"


class RunnerError(Exception):
    """A runner could not do what was asked (cluster unreachable, refused submission …); one line."""


@dataclass
class RemoteStatus:
    """What the cluster says about one submission: pending | running | succeeded | failed |
    stopped | lost (the cluster has no such job) | unreachable (no answer)."""

    state: str
    message: str = ""
    exit_code: int | None = None
    unreachable_since: float | None = None  # filled in by whoever records the polls


def registered_by_app() -> bool:
    """Whether this process runs as a remote job whose outputs the app registers."""
    return os.environ.get(REGISTER_BY_APP_ENV) == "1"


def split_log(text: str) -> tuple[list[str], list[dict[str, Any]]]:
    """Complete lines of a job's log → (plain log lines, events). Text before a tag on the same
    line (a progress bar without its newline) stays in the log unless a carriage return ends it; a tagged line that is not JSON
    (cut by a crash mid-write) is kept as a log line rather than lost."""
    lines, events = [], []
    for line in text.split("\n"):
        at = line.find(EVENT_TAG)
        if at < 0:
            lines.append(line)
            continue
        if line[:at].rsplit("\r", 1)[-1].strip():  # what a terminal would still show of it
            lines.append(line[:at])
        try:
            events.append(json.loads(line[at + len(EVENT_TAG) :]))
        except ValueError:
            lines.append(line)
    return lines, events


@dataclass
class MirrorState:
    """How far a remote log has been mirrored, and since when its runner has been unreachable."""

    offset: int = 0  # characters of the remote log already split into the local files
    unreachable_since: float | None = None

    @classmethod
    def load(cls, folder: Path) -> MirrorState:
        path = folder / _STATE_FILE
        try:
            return cls(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            return cls()

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        temporary = folder / f".{_STATE_FILE}.tmp"
        temporary.write_text(json.dumps({"offset": self.offset, "unreachable_since": self.unreachable_since}))
        temporary.replace(folder / _STATE_FILE)


def mirror_log(text: str, log_path: str | Path, events_path: str | Path) -> int:
    """Append the complete lines of the remote log after the mirrored offset to the local log and
    events files; returns how many events arrived. Idempotent: a poll that sees nothing new writes
    nothing, and an app restarted mid-job continues from the recorded offset."""
    log_path, events_path = Path(log_path), Path(events_path)
    folder = log_path.parent
    state = MirrorState.load(folder)
    end = text.rfind("\n") + 1
    if end <= state.offset:
        return 0
    lines, events = split_log(text[state.offset : end - 1])
    folder.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a", encoding="utf-8") as log:
        log.writelines(line + "\n" for line in lines)
    with open(events_path, "a", encoding="utf-8") as out:
        out.writelines(json.dumps(event, ensure_ascii=False) + "\n" for event in events)
    state.offset = end
    state.save(folder)
    return len(events)


def mark_reachable(folder: Path, reachable: bool) -> float | None:
    """Record whether the runner answered this poll; returns since when it has not (None: it did)."""
    state = MirrorState.load(folder)
    since = None if reachable else (state.unreachable_since or time.time())
    if since != state.unreachable_since:
        state.unreachable_since = since
        state.save(folder)
    return since
