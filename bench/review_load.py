"""Review under load through the app's API (issue 11): N annotators, next item + accept.

The real app (`python app.py`) serves a fresh SQLite store holding DL19-based label items (the
same items as bench/review_db.py). Each simulated annotator logs in through Gradio's /login and
loops: next item (the `next_item` endpoint), then accept it (`accept`), each call sent the way
the page sends it: the review handlers run outside Gradio's queue (one POST to /gradio_api/run,
answered in its reply), queued ones through POST /gradio_api/queue/join and the SSE stream until
process_completed. One session hash per annotator, as a browser tab keeps, opened by one untimed
call before the clock starts (the page's own load events open it in a browser; Gradio builds a
session's state from every block's config then, tens of milliseconds once per tab). Latency is
measured per call from the POST to the answer.
Where the machine has two cores or more, the app runs on one and this load generator on the
others.

Run: .venv/bin/python bench/review_load.py [--annotators 1 5 20] [--seconds 20] [--items 12000]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from review_db import write_labels  # noqa: E402

from db.engine import get_engine, init_db  # noqa: E402
from db.importer import import_batch  # noqa: E402
from db.users import add_user  # noqa: E402
from reasonrank.imports import validate_file  # noqa: E402

PASSWORD = "load pass 42"
DATASET = "bench-dl19"
GOAL_P95_MS = 100.0
NEXT_INPUTS = [DATASET, "pending", "", 0.0, 1.0]  # the Review tab's filters: one dataset, full range


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare(data: Path, items: int, users: int) -> None:
    engine = get_engine(f"sqlite:///{data / 'reasonrank.db'}")
    init_db(engine)
    labels = data.parent / "labels.jsonl"
    write_labels(labels, items)
    import_batch(engine, validate_file(labels, kind="labels", dataset=DATASET))
    for i in range(users):
        add_user(engine, f"ann{i}", "annotator", PASSWORD)
    engine.dispose()


def start_app(data: Path, cpus: set[int] | None, floor: str = "", users: int = 0) -> tuple[subprocess.Popen, str]:
    """Serve the real app on `data`, or (floor "direct"/"queued") the do-nothing app of the same
    shape for `users` annotators."""
    port = _free_port()
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "GRADIO_ANALYTICS_ENABLED": "False"}
    env.update(REASONRANK_DATA=str(data), PYTHONPATH=str(ROOT))
    env.pop("REASONRANK_DB", None)
    command = [sys.executable, "app.py"]
    if floor:
        command = [sys.executable, str(ROOT / "bench" / "gradio_floor_app.py"), str(port), str(users), PASSWORD, floor]
    proc = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            httpx.get(url, timeout=2)
            return proc, url
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("the app did not start")


class Annotator:
    """One logged-in user calling endpoints by fn index, the way the page's own client does."""

    def __init__(self, url: str, name: str) -> None:
        self.client = httpx.Client(base_url=url, timeout=60)
        reply = self.client.post("/login", data={"username": name, "password": PASSWORD})
        reply.raise_for_status()
        config = self.client.get("/config").json()
        by_name = {d.get("api_name"): d for d in config["dependencies"]}
        self.next_fn, self.accept_fn = by_name["next_item"], by_name["accept"]
        # One session per annotator, as one browser tab (or one gradio_client.Client) has: Gradio
        # builds a session's state from every block's config on its first event, once per page.
        self.session = uuid.uuid4().hex
        self.call(self.next_fn, NEXT_INPUTS)  # the page load; the timed loop serves this item again

    def call(self, dependency: dict, data: list) -> dict:
        body = {
            "data": data,
            "fn_index": dependency["id"],
            "session_hash": self.session,
            "event_data": None,
            "trigger_id": None,
        }
        if dependency.get("queue") is False:
            # An event outside the queue: the page POSTs it and reads the answer from the reply.
            reply = self.client.post("/gradio_api/run/predict", json=body)
            output = reply.json()
            return {"success": reply.status_code == 200 and "error" not in output, "output": output}
        self.client.post("/gradio_api/queue/join", json=body).raise_for_status()
        with self.client.stream("GET", "/gradio_api/queue/data", params={"session_hash": self.session}) as stream:
            for line in stream.iter_lines():
                if line.startswith("data:"):
                    message = json.loads(line[5:])
                    if message.get("msg") == "process_completed":
                        return message
        raise RuntimeError("stream ended without completion")


def run_level(url: str, count: int, seconds: float, think: float = 0.0) -> dict:
    annotators = [Annotator(url, f"ann{i}") for i in range(count)]
    next_ms: list[float] = []
    save_ms: list[float] = []
    errors: list[str] = []
    saves = 0
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def work(annotator: Annotator) -> None:
        nonlocal saves
        while time.monotonic() < deadline:
            # reading the item before asking for the next one; jittered so annotators drift apart
            # as people do instead of arriving in lock-step
            time.sleep(think * random.uniform(0.5, 1.5))
            start = time.perf_counter()
            shown = annotator.call(annotator.next_fn, NEXT_INPUTS)
            took = (time.perf_counter() - start) * 1000
            if not shown.get("success") or not shown["output"]["data"][0]:  # no item id: an error, or none left
                errors.append(f"next: {str(shown)[:200]}")
                return
            item_id, version = shown["output"]["data"][:2]
            start = time.perf_counter()
            saved = annotator.call(annotator.accept_fn, [item_id, version, "", "", "", None])
            took_save = (time.perf_counter() - start) * 1000
            message = str(saved.get("output", {}).get("data", [""])[0]) if saved.get("success") else ""
            with lock:
                next_ms.append(took)
                save_ms.append(took_save)
                if re.search(r"Saved accept", message):
                    saves += 1
                else:
                    errors.append(f"save: {message[:200] or str(saved)[:200]}")

    started = time.monotonic()
    threads = [threading.Thread(target=work, args=(a,)) for a in annotators]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    return {"n": count, "next": next_ms, "save": save_ms, "saves": saves, "elapsed": elapsed, "errors": errors}


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def report(label: str, url: str, levels: list[int], seconds: float, think: float) -> None:
    print(label)
    print(f"{'N':>3} {'next p50':>9} {'next p95':>9} {'save p50':>9} {'save p95':>9} {'saves/s':>8} {'errors':>6}")
    for count in levels:
        result = run_level(url, count, seconds, think)
        print(
            f"{count:>3} {pct(result['next'], 50):>7.0f}ms {pct(result['next'], 95):>7.0f}ms "
            f"{pct(result['save'], 50):>7.0f}ms {pct(result['save'], 95):>7.0f}ms "
            f"{result['saves'] / result['elapsed']:>8.1f} {len(result['errors']):>6}"
        )
        for error in result["errors"][:3]:
            print(f"    {error}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--annotators", type=int, nargs="+", default=[1, 5, 20])
    parser.add_argument("--seconds", type=float, default=20.0)
    # every level reviews from the same store: 3 levels x 20 s at ~130 saves/s need ~8,000 items
    parser.add_argument("--items", type=int, default=12000)
    parser.add_argument(
        "--think",
        type=float,
        nargs="+",
        default=[0.0],
        help="mean seconds each annotator spends on an item, jittered ±50%% (one table each)",
    )
    parser.add_argument("--no-floor", action="store_true", help="skip the do-nothing Gradio apps of the same shape")
    args = parser.parse_args(argv)
    cores = sorted(os.sched_getaffinity(0))
    app_cpus = {cores[0]} if len(cores) >= 2 else None
    if app_cpus:
        os.sched_setaffinity(0, set(cores[1:]))
    print(f"app on cpu {sorted(app_cpus) if app_cpus else 'any'}, load generator on {cores[1:] or 'the same'}")
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        prepare(data, args.items, max(args.annotators))
        targets = [("the app", "")]
        if not args.no_floor:
            targets += [
                ("Gradio's floor, outside the queue", "direct"),
                ("Gradio's floor, queued (16 at once)", "queued"),
            ]
        for name, floor in targets:
            proc, url = start_app(data, app_cpus, floor, max(args.annotators))
            try:
                for think in args.think:
                    report(f"{name}, {think:g} s per item between calls:", url, args.annotators, args.seconds, think)
            finally:
                proc.terminate()
                proc.wait(15)
    print(f"goal: next and save p95 <= {GOAL_P95_MS:.0f} ms at 20 annotators")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
