"""Finding 5: an API key never reaches a message, log, event, stored field or endpoint output, even
when the server echoes the Authorization header back; keys in URLs or typed where a variable's
NAME belongs are refused."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from running_app import REPO, app_config, call, initial_inputs, start_app

from reasonrank.backends.base import BackendConfig
from reasonrank.io import InputError

KEY = "sk-test-Secret-4f9a1c77e2b5"
ENV = "RR_SECURITY_TEST_KEY"


class _Echo(BaseHTTPRequestHandler):
    """Answers every request with HTTP 400 whose message repeats the Authorization header."""

    def log_message(self, *args) -> None:
        pass

    def _echo(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        body = json.dumps(
            {"error": {"message": f"bad request; you sent Authorization: {self.headers.get('Authorization')}"}}
        ).encode()
        self.send_response(400)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except BrokenPipeError:  # the client gave up on this request: nothing to answer
            pass

    do_GET = do_POST = _echo


@pytest.fixture(scope="module")
def echo_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


def _files_with_key(root) -> list[str]:
    return [str(p) for p in root.rglob("*") if p.is_file() and KEY.encode() in p.read_bytes()]


def test_cli_error_does_not_repeat_the_key(tmp_path, echo_url):
    candidates = tmp_path / "c.jsonl"
    candidates.write_text(
        json.dumps(
            {"qid": "q1", "query": "x", "candidates": [{"docid": "a", "text": "a"}, {"docid": "b", "text": "b"}]}
        )
    )
    done = subprocess.run(
        [sys.executable, "-m", "reasonrank", "rerank", "--candidates", str(candidates), "--backend", "openai"]
        + ["--base-url", echo_url, "--model", "m", "--api-key-env", ENV, "--out", str(tmp_path / "out")],
        cwd=REPO,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), ENV: KEY},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0 and "you sent Authorization: Bearer [redacted]" in done.stderr, done.stderr
    assert KEY not in done.stdout + done.stderr
    assert not _files_with_key(tmp_path)


@pytest.mark.parametrize(
    "fields, cause",
    [
        ({"base_url": f"http://user:{KEY}@h:8000/v1"}, "credentials"),
        ({"base_url": f"http://h:8000/v1?api_key={KEY}"}, "credential"),
        ({"api_key_env": KEY}, "NAME of an environment variable"),
        ({"api_key_env": "AbCdEfGh1234567890XyZ"}, "looks like a key"),
    ],
)
def test_keys_where_names_or_urls_belong_are_refused(fields, cause):
    with pytest.raises(InputError, match=cause):
        BackendConfig(kind="openai", model="m", **fields)


def test_a_failed_job_stores_no_key_anywhere(tmp_path, echo_url):
    """An eval job whose reranker's server echoes the key: the job fails, and neither the job's
    message, its log, its events, the database (file and WAL) nor any endpoint shows the key."""
    from db.engine import get_engine, init_db
    from db.registry import add_reranker

    data = tmp_path / "data"
    data.mkdir()
    engine = get_engine(f"sqlite:///{data / 'reasonrank.db'}")
    init_db(engine)
    add_reranker(engine, "echo", "openai", "m", {"base_url": echo_url, "api_key_env": ENV, "max_retries": 0})
    engine.dispose()
    app = start_app(data, env={ENV: KEY})
    try:
        admin = app.admin()
        config = app_config(admin)
        start = next(d for d in config["dependencies"] if d.get("api_name") == "eval_start")
        values = initial_inputs(config, start)
        box = next(c for c in config["components"] if c.get("props", {}).get("elem_id") == "rr-eval-reranker")
        values[start["inputs"].index(box["id"])] = "echo"
        started = call(admin, start["id"], values)
        assert started["success"], started
        job_id = started["output"]["data"][1]  # [0] is the panel's gr.State, kept on the server
        view_fn = next(d for d in config["dependencies"] if d.get("api_name") == "eval_job_view")
        outputs = []
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            view = call(admin, view_fn["id"], [job_id])
            outputs.append(json.dumps(view))
            if view["success"] and view["output"]["data"][0].get("finished"):
                break
            time.sleep(1)
        assert view["success"], view
        final = view["output"]["data"][0]
        assert final["status"] == "failed" and "[redacted]" in json.dumps(final), final
        results = next(d for d in config["dependencies"] if d.get("api_name") == "eval_results")
        outputs.append(json.dumps(call(admin, results["id"], [job_id])))
        assert not [text for text in outputs if KEY in text]
    finally:
        app.stop()
    assert not _files_with_key(data), _files_with_key(data)
