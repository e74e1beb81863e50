"""Long work as a subprocess of the CLI: start it, read its progress, cancel it, find it again.

The UI never runs synthesis, training or evaluation in its own process (docs/architecture.md
§3): it starts `python -m reasonrank <command> …` with the exact argv the form shows, sends
stdout and stderr to a log file, and reads an append-only JSONL *events* file that the command
writes through `EventLog`. The command learns where to write from the `REASONRANK_JOB_EVENTS`
environment variable, so the same command typed in a shell runs unchanged (and writes no events).

Events are small JSON objects, one a line, each with `time` and `event`:
- `progress` — `done`, `total`, `unit` and any live figures (rate, errors by kind, tokens, cost);
- `metrics` — one training step (`step` plus loss, lr, reward terms …) for curves;
- `end` — `status` (succeeded | failed | cancelled), `message`, `outputs` (paths, ids, figures).

The outcome of a job is read from the file, not from a parent process: an app restarted while a
job runs finds it again by its pid, and a process that died without an `end` event (kill -9, out
of memory) is reported failed with the last lines of its log.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

EVENTS_ENV = "REASONRANK_JOB_EVENTS"
JOB_ID_ENV = "REASONRANK_JOB_ID"  # set by db.jobs.launch_job: the Job row a command runs as
#: REASONRANK_JOB_EVENTS=- : events go to stdout as tagged lines (a remote runner parses its log)
EVENTS_TO_STDOUT = "-"
EVENT_TAG = "@@reasonrank-event "
FINISHED = ("succeeded", "failed", "cancelled")
_CURRENT: EventLog | None = None


# ----------------------------------------------------------------------------- writing (in the job)
class EventLog:
    """Appends events for whoever watches this process; a no-op when nobody does.

    Every event is one `write` of one line on a file opened in append mode and flushed at once,
    so a reader never sees half an event except at the very end of the file (which it skips).
    """

    def __init__(self, path: str | Path | None) -> None:
        self.to_stdout = str(path) == EVENTS_TO_STDOUT
        self.path = Path(path) if path and not self.to_stdout else None
        self._file = sys.stdout if self.to_stdout else (open(self.path, "a", encoding="utf-8") if self.path else None)
        self.outputs: dict[str, Any] = {}  # reported with the `end` event the CLI writes
        self.delegated_end = False  # the `end` is written already (by a launch, see reasonrank.launch)

    @classmethod
    def current(cls) -> EventLog:
        """This process's event log (one per process, shared by the CLI and the command)."""
        global _CURRENT
        if _CURRENT is None:  # under `accelerate launch` only rank 0 reports
            _CURRENT = cls(os.environ.get(EVENTS_ENV) if os.environ.get("RANK", "0") == "0" else None)
        return _CURRENT

    @property
    def active(self) -> bool:
        return self._file is not None

    def emit(self, event: str, **fields: Any) -> None:
        if self._file is None:
            return
        line = json.dumps({"time": time.time(), "event": event, **fields}, ensure_ascii=False, default=str)
        if self.to_stdout:  # one os.write of a whole line, so output of other writers cannot split it
            self._file.flush()
            data = (EVENT_TAG + line + "\n").encode()
            while data:
                data = data[os.write(self._file.fileno(), data) :]
            return
        self._file.write(line + "\n")
        self._file.flush()

    def progress(self, done: int, total: int, unit: str = "item", **figures: Any) -> None:
        self.emit("progress", done=done, total=total, unit=unit, **figures)

    def metrics(self, step: int, **values: Any) -> None:
        self.emit("metrics", step=step, **values)

    def end(self, status: str, message: str = "") -> None:
        """The job's outcome with everything put in `outputs`; `reasonrank.cli.main` calls this."""
        if status not in FINISHED:
            raise ValueError(f"unknown end status {status!r}; expected one of {', '.join(FINISHED)}")
        self.emit("end", status=status, message=message, outputs=self.outputs)

    def close(self) -> None:
        if self._file is not None and not self.to_stdout:
            self._file.close()
        self._file = None


# ----------------------------------------------------------------------------- reading (in the app)
def read_events(path: str | Path, since: int = 0) -> tuple[list[dict[str, Any]], int]:
    """Complete events after byte offset `since`, and the offset to read from next time.

    A last line without its newline is a write in progress: it is left for the next call. A line
    that is not JSON (a disk-full truncation) is skipped rather than stopping the reader.
    """
    path = Path(path)
    if not path.exists():
        return [], since
    with open(path, "rb") as handle:
        handle.seek(since)
        data = handle.read()
    end = data.rfind(b"\n") + 1
    events = []
    for line in data[:end].splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            continue
    return events, since + end


def tail(path: str | Path, lines: int = 30, max_bytes: int = 64_000) -> str:
    """The last `lines` lines of a log file (reading at most `max_bytes` from its end).

    Progress bars rewrite their line with carriage returns; only the latest state of each line
    is kept, so the tail reads like a terminal would show it.
    """
    path = Path(path)
    if not path.exists():
        return ""
    with open(path, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        handle.seek(max(0, size - max_bytes))
        text = handle.read().decode("utf-8", errors="replace")
    shown = [line.rsplit("\r", 1)[-1] if "\r" in line.rstrip("\r") else line.rstrip("\r") for line in text.split("\n")]
    while shown and not shown[-1].strip():
        shown.pop()
    return "\n".join(shown[-lines:])


@dataclass
class JobState:
    """What the events file and the process table say about one job right now."""

    status: str
    progress: dict[str, Any] | None = None  # the latest progress event
    metrics: list[dict[str, Any]] = field(default_factory=list)  # every metrics event, in order
    message: str = ""
    outputs: dict[str, Any] = field(default_factory=dict)
    started: float | None = None  # time of the first event

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    def eta_seconds(self, now: float | None = None) -> float | None:
        """Remaining time at the average rate so far (None until something is done)."""
        if not self.progress or self.started is None:
            return None
        done, total = self.progress.get("done", 0), self.progress.get("total", 0)
        if not done or not total or done >= total:
            return None
        elapsed = (now or self.progress["time"]) - self.started
        if elapsed <= 0:  # the first report is the first event: no rate to extrapolate yet
            return None
        return elapsed / done * (total - done)


_FOLDED: dict[str, tuple[int, JobState]] = {}  # events file -> (bytes read, state folded so far)
_FOLD_LOCK = threading.Lock()


def _apply(state: JobState, event: dict[str, Any]) -> None:
    if state.started is None and event.get("event") != "start":  # ETA counts from the work, not start-up
        state.started = event.get("time")
    kind = event.get("event")
    if kind == "progress":
        state.progress = event
    elif kind == "metrics":
        state.metrics.append(event)
    elif kind == "end":
        state.status = event.get("status", "failed")
        state.message = event.get("message", "")
        state.outputs = event.get("outputs") or {}


def reported_state(events_path: str | Path) -> JobState:
    """What the job's events say so far (finished only once it wrote its `end`), reading only
    what was appended since the last call: the UI polls every second, and a long training run
    writes thousands of events."""
    path = Path(events_path)
    key = str(path.resolve())
    with _FOLD_LOCK:
        offset, state = _FOLDED.get(key, (0, JobState(status="running")))
        if path.exists() and path.stat().st_size < offset:  # a new file in the same place
            offset, state = 0, JobState(status="running")
        events, offset = read_events(path, offset)
        for event in events:
            _apply(state, event)
        _FOLDED[key] = (offset, state)
        return dataclasses.replace(state, metrics=list(state.metrics))


def job_state(events_path: str | Path, pid: int | None, log_path: str | Path | None = None) -> JobState:
    """Fold the events file into a JobState; a dead process without an `end` event failed (and so
    did one whose pid now belongs to another process)."""
    state = reported_state(events_path)
    if state.finished:
        return state
    if pid is not None and not is_alive(pid, events_path):
        state = reported_state(events_path)  # it may have written its end just before exiting
        if state.finished:
            return state
        state.status = "failed"
        last = tail(log_path, lines=8) if log_path else ""
        state.message = "the process ended without reporting a result" + (f"; last log lines:\n{last}" if last else "")
        return state
    state.status = "running" if pid else "queued"
    return state


# ----------------------------------------------------------------------------- processes
_CHILDREN: dict[int, subprocess.Popen] = {}  # started by this process: poll() reaps them


def current_job_id() -> int | None:
    """The Job row this process runs as (None when started from a shell)."""
    value = os.environ.get(JOB_ID_ENV, "")
    return int(value) if value.isdigit() else None


def start(
    argv: Sequence[str],
    log_path: str | Path,
    events_path: str | Path,
    env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
) -> int:
    """Start `python -m reasonrank <argv…>` in its own session; returns its pid.

    The child gets this process's environment (so the same database and data directory) plus
    `env`, with REASONRANK_JOB_EVENTS pointing at `events_path`. Its own session means a cancel
    can signal the whole process group (data-loader workers, a vLLM engine) at once.
    """
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    Path(events_path).parent.mkdir(parents=True, exist_ok=True)
    child_env = {**os.environ, **(env or {}), EVENTS_ENV: str(events_path), "PYTHONUNBUFFERED": "1"}
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "reasonrank", *argv],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=child_env,
            cwd=cwd,
            start_new_session=True,
        )
    _CHILDREN[process.pid] = process
    # Reap it the moment it ends, whether or not anyone watches the job: an unreaped child stays
    # in the process table as a zombie (<defunct>) for as long as the app runs.
    threading.Thread(target=process.wait, name=f"reap-job-{process.pid}", daemon=True).start()
    return process.pid


def is_job_process(pid: int, events_path: str | Path) -> bool:
    """Whether `pid` is still the job that writes `events_path`, not a later process that was
    given the same pid after the job ended (an app restarted while a job ran knows only the pid).

    A job is its own session leader (`start` puts it in a new session) and carries its events
    path in its environment; both are checked. Where there is no /proc to read an environment
    from, the session check is all there is.
    """
    try:
        if os.getsid(pid) != pid:
            return False
    except (ProcessLookupError, PermissionError):
        return False
    if not Path("/proc/self/environ").exists():
        return True
    try:
        entries = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:  # gone, or another user's process: not ours
        return False
    prefix = f"{EVENTS_ENV}=".encode()
    values = [entry[len(prefix) :].decode(errors="replace") for entry in entries if entry.startswith(prefix)]
    return bool(values) and Path(values[0]).resolve() == Path(events_path).resolve()


def is_alive(pid: int, events_path: str | Path | None = None) -> bool:
    """Whether `pid` still runs (a finished child of ours is reaped; a zombie counts as ended).

    For a process this one did not start (an app restart), `events_path` names the job it must
    be: a pid now held by another process means the job has ended.
    """
    child = _CHILDREN.get(pid)
    if child is not None:
        return child.poll() is None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return events_path is None
    if events_path is not None and not is_job_process(pid, events_path):
        return False
    stat = Path(f"/proc/{pid}/stat")
    if stat.exists():
        try:
            return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except (OSError, IndexError):
            return True
    return True


def exit_code(pid: int) -> int | None:
    """The exit status of a child this process started, once it has ended (else None)."""
    child = _CHILDREN.get(pid)
    return None if child is None else child.poll()


def cancel(pid: int, events_path: str | Path, grace_seconds: float = 10.0) -> bool:
    """SIGTERM the job's process group, then SIGKILL what is left after `grace_seconds`.

    Returns whether the job is gone. SIGTERM first lets a trainer stop between steps and a
    synthesis run finish writing the label it holds. Nothing is signalled unless `pid` is still
    the job writing `events_path` (`is_job_process`): a pid reused by an unrelated process after
    the job ended is never touched.
    """
    child = _CHILDREN.get(pid)
    if (child is not None and child.poll() is not None) or not is_job_process(pid, events_path):
        return True
    _signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_seconds
    while time.monotonic() < deadline:
        if not is_alive(pid, events_path):
            return True
        time.sleep(0.1)
    if not is_job_process(pid, events_path):  # ended (and its pid was taken) during the grace period
        return True
    _signal_group(pid, signal.SIGKILL)
    for _ in range(50):
        if not is_alive(pid, events_path):
            return True
        time.sleep(0.1)
    return not is_alive(pid, events_path)


def _signal_group(pid: int, signum: int) -> None:
    """Signal the job's process group (its pid: the job leads its own session and group)."""
    try:
        os.killpg(pid, signum)
    except ProcessLookupError:
        pass


def install_term_handler() -> None:
    """Turn SIGTERM into KeyboardInterrupt in a job process, so `finally` blocks run and the
    CLI can write the `end` event as cancelled (Python's default SIGTERM skips them)."""

    def _raise(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _raise)
