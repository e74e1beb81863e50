"""Labels survive the Space: SQLite online-backup snapshots (N saves, snapshot, restore: nothing
lost; a snapshot taken while reviewers save is consistent), pruning to the last N, the schedule,
and the push to a private Hub dataset repo against a real HTTP server standing in for the Hub."""

from __future__ import annotations

import base64
import http.server
import json
import sqlite3
import threading
import time

import pytest
from db_fixtures import ANNOTATORS, make_batch, make_label, sqlite_engine, sqlite_template  # noqa: F401
from sqlalchemy import func, select

from db.engine import read_session
from db.importer import import_batch
from db.models import Review
from db.queue import next_item
from db.reviews import save_review
from db.snapshots import SnapshotScheduler, list_snapshots, push_to_hub, restore, take_snapshot
from reasonrank.io import InputError

DOCS = ["a", "b", "c", "d"]
WORKERS = [name for name in ANNOTATORS if name.startswith("worker")]


@pytest.fixture
def store(sqlite_engine):  # noqa: F811
    return sqlite_engine


def _reviews(engine) -> int:
    with read_session(engine) as session:
        return session.scalar(select(func.count()).select_from(Review))


def _review_next(engine, user: str) -> bool:
    view = next_item(engine, user)
    if view is None:
        return False
    save_review(engine, view.item_id, user, "accept", view.version)
    return True


def test_saves_snapshot_restore_loses_nothing(store, tmp_path):
    import_batch(store, make_batch([make_label(f"q{i:02d}", DOCS) for i in range(12)]))
    for _ in range(7):
        assert _review_next(store, "alice")
    snap = take_snapshot(store, tmp_path / "snaps", keep=3)
    assert _reviews(store) == 7
    for _ in range(3):  # work done after the snapshot …
        assert _review_next(store, "bob")
    with sqlite3.connect(store.url.database) as conn:  # … then the table is lost
        conn.execute("DELETE FROM review")
    assert _reviews(store) == 0
    restore(snap, store)
    assert _reviews(store) == 7
    assert _review_next(store, "carol")  # the restored store keeps working
    assert _reviews(store) == 8


def test_snapshot_while_reviewers_save_is_consistent(store, tmp_path):
    import_batch(store, make_batch([make_label(f"q{i:03d}", DOCS) for i in range(120)]))
    stop = threading.Event()
    errors: list[BaseException] = []

    def reviewer(user: str) -> None:
        try:
            while not stop.is_set() and _review_next(store, user):
                pass
        except BaseException as exc:  # asserted on below
            errors.append(exc)

    threads = [threading.Thread(target=reviewer, args=(user,)) for user in WORKERS[:4]]
    for thread in threads:
        thread.start()
    snaps = []
    while len(snaps) < 4 and any(t.is_alive() for t in threads):
        snaps.append(take_snapshot(store, tmp_path / "snaps", keep=10))
        time.sleep(0.05)
    stop.set()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    counts = []
    for snap in snaps:
        with sqlite3.connect(snap) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            counts.append(conn.execute("SELECT count(*) FROM review").fetchone()[0])
    assert counts == sorted(counts) and counts[-1] <= _reviews(store)
    assert len(set(counts)) > 1, f"every snapshot saw the same {counts}: the reviewers did not save in between"


def test_keeps_the_last_n_and_scheduler_runs(store, tmp_path):
    folder = tmp_path / "snaps"
    made = [take_snapshot(store, folder, keep=2) for _ in range(4)]
    assert list_snapshots(folder) == made[-2:]
    assert not list(folder.glob(".*partial"))
    with pytest.raises(InputError, match="keep must be at least 1"):
        take_snapshot(store, folder, keep=0)
    scheduler = SnapshotScheduler(store, tmp_path / "timed", interval_s=0.1, keep=3).start()
    time.sleep(0.8)
    scheduler.stop()
    assert len(list_snapshots(tmp_path / "timed")) == 3


def test_restore_refuses_a_file_that_is_not_a_database(store, tmp_path):
    """Refused before the copy: the live store keeps its reviews and keeps working."""
    import_batch(store, make_batch([make_label(f"q{i}", DOCS) for i in range(3)]))
    assert _review_next(store, "alice")
    bad = tmp_path / "reasonrank-bad.db"
    bad.write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(InputError, match="not a SQLite database"):
        restore(bad, store)
    with pytest.raises(InputError, match="not found"):
        restore(tmp_path / "absent.db", store)
    assert _reviews(store) == 1
    assert _review_next(store, "bob") and _reviews(store) == 2


class _Hub(http.server.BaseHTTPRequestHandler):
    """The Hub endpoints huggingface_hub calls to create a repo and commit one small file."""

    received: list[tuple[str, str, bytes]] = []

    def log_message(self, *args):
        pass

    def _reply(self, payload: dict) -> None:
        body = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.received.append((self.path, self.headers.get("Authorization", ""), body))
        if self.path == "/api/repos/create":
            repo = json.loads(body)
            self._reply({"url": f"http://{self.headers['Host']}/datasets/{repo.get('organization')}/{repo['name']}"})
        elif "/preupload/" in self.path:
            files = json.loads(body)["files"]
            self._reply({"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files]})
        elif "/commit/" in self.path:
            repo = self.path.split("/api/datasets/")[1].split("/commit/")[0]
            self._reply(
                {"commitUrl": f"http://{self.headers['Host']}/datasets/{repo}/commit/abc", "commitOid": "a" * 40}
            )
        else:
            self.send_error(404)


def test_push_to_hub_creates_a_private_dataset_and_uploads_the_bytes(store, tmp_path):
    snap = take_snapshot(store, tmp_path / "snaps", keep=1)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Hub.received.clear()
    try:
        url = push_to_hub(
            snap, "me/studio-backups", token="hf_secret_value", endpoint=f"http://127.0.0.1:{server.server_port}"
        )
    finally:
        server.shutdown()
    paths = [path for path, _, _ in _Hub.received]
    create = json.loads(next(body for path, _, body in _Hub.received if path == "/api/repos/create"))
    assert create == {"name": "studio-backups", "organization": "me", "visibility": "private", "type": "dataset"}
    assert any(p.startswith("/api/datasets/me/studio-backups/commit/main") for p in paths), paths
    commit = next(body for path, _, body in _Hub.received if "/commit/" in path)
    ops = [json.loads(line) for line in commit.decode().splitlines() if line.strip()]
    [upload] = [op["value"] for op in ops if op["key"] == "file"]
    assert upload["path"] == f"snapshots/{snap.name}"
    assert base64.b64decode(upload["content"]) == snap.read_bytes()
    assert all(auth == "Bearer hf_secret_value" for _, auth, _ in _Hub.received)
    assert url.endswith("/commit/abc")
    with pytest.raises(InputError, match="owner/name"):
        push_to_hub(snap, "no-owner", token=None)
