"""Snapshots of the SQLite label store: taken while reviewers keep saving, pruned to the last N,
restored in place, and pushed to a private Hugging Face dataset repo.

Why SQLite's online backup API (sqlite3.Connection.backup) and not a file copy: a copy of a WAL
database taken mid-write can miss pages still in the -wal file or tear a page; the backup API
copies a consistent snapshot of the database as of one transaction, restarting when a writer
changes pages under it. A snapshot is written under a temporary name and renamed when complete,
so a crash mid-snapshot never leaves a half file that looks like a snapshot.

On a Space the folder is <data dir>/snapshots, i.e. on the persistent /data storage; pushing to
the Hub (`push_to_hub`) is the copy that survives losing the Space itself.
"""

from __future__ import annotations

import sqlite3
import threading
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import Engine

from db.engine import BUSY_TIMEOUT_S, is_sqlite
from reasonrank.io import InputError

PREFIX = "reasonrank-"
SUFFIX = ".db"
PAGES_PER_STEP = 256  # the backup copies this many pages, then lets writers in


def database_file(engine: Engine) -> Path:
    """The SQLite file behind `engine`; other databases have their own backup tools."""
    if not is_sqlite(engine) or not engine.url.database or engine.url.database == ":memory:":
        raise InputError(f"snapshots need a SQLite file database, not {engine.url.render_as_string()}")
    return Path(engine.url.database)


def list_snapshots(folder: Path) -> list[Path]:
    """Completed snapshots in `folder`, oldest first (their names sort by time)."""
    return sorted(folder.glob(f"{PREFIX}*{SUFFIX}")) if folder.is_dir() else []


def take_snapshot(engine: Engine, folder: Path, keep: int) -> Path:
    """Copy the live database into `folder` and delete all but the newest `keep` snapshots."""
    if keep < 1:
        raise InputError(f"keep must be at least 1 snapshot, got {keep}")
    source = database_file(engine)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    final = folder / f"{PREFIX}{stamp}{SUFFIX}"
    partial = folder / f".{final.name}.partial"
    _copy(source, partial)
    partial.replace(final)
    for old in list_snapshots(folder)[:-keep]:
        old.unlink(missing_ok=True)
    return final


def restore(snapshot: Path, engine: Engine) -> None:
    """Replace the live database's content with `snapshot` (through the backup API, so open
    connections see either the old or the new database, never a mix)."""
    if not snapshot.is_file():
        raise InputError(f"snapshot {snapshot} not found")
    _check(snapshot)
    engine.dispose()
    _copy(snapshot, database_file(engine))
    engine.dispose()


def _copy(source: Path, target: Path) -> None:
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_S)
    dst = sqlite3.connect(target, timeout=BUSY_TIMEOUT_S)
    try:
        src.backup(dst, pages=PAGES_PER_STEP)
    finally:
        dst.close()
        src.close()


def _check(path: Path) -> None:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        verdict = conn.execute("PRAGMA integrity_check").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise InputError(f"{path} is not a SQLite database: {exc}") from None
    finally:
        conn.close()
    if verdict != "ok":
        raise InputError(f"{path} failed PRAGMA integrity_check: {verdict}")


class SnapshotScheduler:
    """Takes a snapshot every `interval_s` seconds on a daemon thread, keeping the last `keep`.

    A failed snapshot is reported through `on_error` and the schedule goes on.
    """

    def __init__(self, engine: Engine, folder: Path, interval_s: float, keep: int, on_error=print) -> None:
        if interval_s <= 0:
            raise InputError(f"snapshot interval must be positive, got {interval_s}")
        database_file(engine)
        self.engine, self.folder, self.interval_s, self.keep = engine, folder, interval_s, keep
        self._on_error = on_error
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="db-snapshots", daemon=True)

    def start(self) -> SnapshotScheduler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                take_snapshot(self.engine, self.folder, self.keep)
            except (OSError, sqlite3.Error, InputError) as exc:
                self._on_error(f"snapshot failed: {exc}")


def push_to_hub(path: Path, repo_id: str, token: str | None, endpoint: str | None = None) -> str:
    """Upload a snapshot or export file to the private dataset repo `repo_id` (created private
    when missing) under snapshots/ or exports/; returns the commit URL. The token is passed to
    huggingface_hub only, never logged."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    if not path.is_file():
        raise InputError(f"{path} not found")
    if not repo_id or repo_id.count("/") != 1:
        raise InputError(f"dataset repo must be 'owner/name', got {repo_id!r}")
    folder = "snapshots" if path.name.startswith(PREFIX) and path.suffix == SUFFIX else "exports"
    api = HfApi(endpoint=endpoint, token=token)
    try:
        api.create_repo(repo_id, repo_type="dataset", private=True, exist_ok=True)
        info = api.upload_file(
            path_or_fileobj=str(path),
            path_in_repo=f"{folder}/{path.name}",
            repo_id=repo_id,
            repo_type="dataset",
            commit_message=f"ReasonRank Studio backup: {path.name}",
        )
    except HfHubHTTPError as exc:
        raise InputError(f"pushing {path.name} to {repo_id} failed: {str(exc).splitlines()[0]}") from None
    return str(info.commit_url) if hasattr(info, "commit_url") else str(info)
