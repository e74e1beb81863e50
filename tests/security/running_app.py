"""The real app (`python app.py`, as `make run` starts it) on a free loopback port, and raw clients.

Attacks go over plain HTTP the way a hostile user would send them: a logged-in cookie (or none),
`/gradio_api/file=…` for downloads and `/gradio_api/queue/join` + the SSE stream for any function
index, named or not. Nothing here knows the app's Python objects.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "annotator pass 42"
ANNOTATOR = "ann"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def app_env(data: Path, port: int) -> dict[str, str]:
    env = {
        **os.environ,
        "GRADIO_SERVER_PORT": str(port),
        "GRADIO_ANALYTICS_ENABLED": "False",
        "REASONRANK_DATA": str(data),
        "PYTHONPATH": str(REPO),
    }
    env.pop("REASONRANK_DB", None)
    return env


def cli(data: Path, *args: str, env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """`reasonrank ARGS` against the app's data dir (the CLI finds the same database)."""
    full = {**app_env(data, 0), **(env or {})}
    done = subprocess.run(
        [sys.executable, "-m", "reasonrank", *args], cwd=REPO, env=full, capture_output=True, text=True, timeout=120
    )
    if check and done.returncode != 0:
        raise AssertionError(f"reasonrank {' '.join(args)} failed: {done.stderr}")
    return done


@dataclass
class RunningApp:
    url: str
    data: Path
    proc: subprocess.Popen
    admin_password: str

    def client(self, name: str | None = None, password: str | None = None) -> httpx.Client:
        """An HTTP client logged in as `name` (anonymous when None)."""
        client = httpx.Client(base_url=self.url, timeout=60, follow_redirects=False)
        if name is not None:
            reply = client.post("/login", data={"username": name, "password": password})
            assert reply.status_code in (200, 302, 303), reply.text
            assert client.cookies, f"login as {name} gave no session cookie"
        return client

    def admin(self) -> httpx.Client:
        return self.client("admin", self.admin_password)

    def annotator(self) -> httpx.Client:
        return self.client(ANNOTATOR, PASSWORD)

    def stop(self, sig: str = "term") -> None:
        if self.proc.poll() is None:
            (self.proc.kill if sig == "kill" else self.proc.terminate)()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def start_app(data: Path, port: int | None = None, timeout: float = 60, env: dict | None = None) -> RunningApp:
    """Start app.py on `data` and wait until it answers; the first run creates the admin."""
    port = port or free_port()
    proc = subprocess.Popen(
        [sys.executable, "app.py"],
        cwd=REPO,
        env={**app_env(data, port), **(env or {})},
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"app.py exited with {proc.returncode}")
        try:
            httpx.get(url + "/", timeout=2)
            break
        except httpx.HTTPError:
            time.sleep(0.2)
    else:
        proc.kill()
        raise AssertionError("app did not answer")
    password = (data / "initial-admin-password.txt").read_text().split()[1]
    return RunningApp(url, data, proc, password)


def app_config(client: httpx.Client) -> dict:
    reply = client.get("/config")
    reply.raise_for_status()
    return reply.json()


def call(client: httpx.Client, fn_index: int, data: list, timeout: float = 60) -> dict:
    """Call function `fn_index` through the queue as the browser does; the final message."""
    session = uuid.uuid4().hex
    body = {"data": data, "fn_index": fn_index, "session_hash": session, "event_data": None, "trigger_id": None}
    joined = client.post("/gradio_api/queue/join", json=body)
    if joined.status_code != 200:
        return {"http_status": joined.status_code, "success": False, "output": {"error": joined.text}}
    event_id = joined.json()["event_id"]
    deadline = time.monotonic() + timeout
    last = None
    with client.stream("GET", "/gradio_api/queue/data", params={"session_hash": session}) as stream:
        for line in stream.iter_lines():
            if time.monotonic() > deadline:
                raise AssertionError(f"fn {fn_index} did not finish in {timeout} s")
            if not line.startswith("data:"):
                continue
            message = json.loads(line[5:])
            if message.get("event_id") not in (None, event_id):
                continue
            if message.get("msg") == "process_completed":
                return message
            if message.get("msg") == "process_generating":
                last = message
            if message.get("msg") == "close_stream":
                break
    return last or {"success": False, "output": {"error": "stream closed"}}


def call_direct(client: httpx.Client, fn_index: int, data: list, timeout: float = 60) -> dict:
    """Call function `fn_index` by a raw POST to /gradio_api/run/predict, the route the page uses
    for events outside the queue (Gradio answers 404 there for queued ones)."""
    body = {"data": data, "fn_index": fn_index, "session_hash": uuid.uuid4().hex, "event_data": None}
    reply = client.post("/gradio_api/run/predict", json=body, timeout=timeout)
    if reply.status_code not in (200, 500):
        return {"http_status": reply.status_code, "success": False, "output": {"error": reply.text}}
    output = reply.json()
    return {"success": reply.status_code == 200 and "error" not in output, "output": output}


def initial_inputs(config: dict, dependency: dict) -> list:
    """The values the page would send for a dependency's inputs: each component's initial value."""
    components = {c["id"]: c for c in config["components"]}
    return [components.get(i, {}).get("props", {}).get("value") for i in dependency["inputs"]]
