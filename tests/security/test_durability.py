"""Finding 2: acknowledged saves survive download attempts, CLI runs, a job and kill -9 of the app.

A download used to open (and close) the database file inside the app's process, which drops that
process's SQLite POSIX locks; the next CLI command or job then took itself for the last user,
checkpointed and deleted the live WAL, and later acknowledged saves vanished at the next crash.
Here an annotator reviews through the app's API while other threads try to download the database
files, run `reasonrank` commands against the same store and start a job as admin; the app is
killed with SIGKILL at a random moment, restarted, and this repeats. Every save the app
acknowledged must be in the database afterwards, and SQLite's integrity check must pass.
"""

from __future__ import annotations

import random
import re
import sqlite3
import threading
import time

from running_app import ANNOTATOR, PASSWORD, app_config, call, cli, initial_inputs, start_app

ROUNDS = 3


def _dependency(config: dict, api_name: str) -> dict:
    return next(d for d in config["dependencies"] if d.get("api_name") == api_name)


def _review_loop(app, stop: threading.Event, acknowledged: list[tuple[int, int]], errors: list[str]) -> None:
    """next item + accept until stopped; (item id, version) of every save the app acknowledged."""
    try:
        client = app.annotator()
        config = app_config(client)
        nxt, accept = _dependency(config, "next_item"), _dependency(config, "accept")
        filters = initial_inputs(config, nxt)
        while not stop.is_set():
            shown = call(client, nxt["id"], filters)
            if not shown.get("success"):
                return
            item_id, version = shown["output"]["data"][:2]
            if item_id is None:
                return  # the queue is empty
            saved = call(client, accept["id"], [item_id, version, "", "", "", None])
            message = saved.get("output", {}).get("data", [""])[0] if saved.get("success") else ""
            found = re.search(r"Saved accept on item (\d+).*version (\d+)", str(message))
            if found:
                acknowledged.append((int(found.group(1)), int(found.group(2))))
    except Exception as exc:  # the app was killed under us: the loop ends, what was acknowledged stays
        errors.append(repr(exc))


def _downloads(app, stop: threading.Event, served: list[str]) -> None:
    try:
        clients = [app.annotator(), app.admin()]
    except Exception:  # the app was killed before this thread logged in
        return
    while not stop.is_set():
        for client in clients:
            for name in ("reasonrank.db", "reasonrank.db-wal", "reasonrank.db-shm"):
                try:
                    reply = client.get(f"/gradio_api/file={app.data / name}")
                except Exception:
                    return
                if reply.status_code == 200:
                    served.append(name)
        time.sleep(0.05)


def _cli_runs(app, stop: threading.Event) -> None:
    while not stop.is_set():
        cli(app.data, "user", "list", check=False)


def _start_job(app) -> None:
    """An eval job (BM25 over the bundled BRIGHT mini task), started as admin through the app."""
    admin = app.admin()
    config = app_config(admin)
    start = _dependency(config, "eval_start")
    done = call(admin, start["id"], initial_inputs(config, start))
    assert done.get("success"), done


def test_acknowledged_saves_survive_downloads_cli_jobs_and_kill_9(tmp_path):
    rng = random.Random(11)
    data = tmp_path / "data"
    acknowledged: list[tuple[int, int]] = []
    served: list[str] = []
    errors: list[str] = []
    started = time.monotonic()
    for round_no in range(ROUNDS):
        app = start_app(data)
        if round_no == 0:
            cli(
                data,
                "user",
                "add",
                ANNOTATOR,
                "--role",
                "annotator",
                "--password-env",
                "RR_PW",
                env={"RR_PW": PASSWORD},
            )
        stop = threading.Event()
        workers = [
            threading.Thread(target=_review_loop, args=(app, stop, acknowledged, errors)),
            threading.Thread(target=_downloads, args=(app, stop, served)),
            threading.Thread(target=_cli_runs, args=(app, stop)),
        ]
        for worker in workers:
            worker.start()
        if round_no == 0:
            _start_job(app)
        time.sleep(rng.uniform(2.0, 4.0))
        app.stop("kill")  # SIGKILL: no shutdown of any kind
        stop.set()
        for worker in workers:
            worker.join(30)
    assert not served, f"the app served database files: {served}"
    assert len(acknowledged) >= 3 * ROUNDS, (len(acknowledged), errors)
    with sqlite3.connect(data / "reasonrank.db") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        annotator = conn.execute("SELECT id FROM app_user WHERE name = ?", (ANNOTATOR,)).fetchone()[0]
        reviewed = {row[0] for row in conn.execute("SELECT item_id FROM review WHERE annotator_id = ?", (annotator,))}
        versions = dict(conn.execute("SELECT id, version FROM item"))
    lost = [(item, version) for item, version in acknowledged if item not in reviewed or versions[item] < version]
    assert not lost, f"{len(lost)} of {len(acknowledged)} acknowledged saves are gone: {lost[:5]}"
    assert time.monotonic() - started < 120
