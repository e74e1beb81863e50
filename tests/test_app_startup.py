"""`make run` promises: the app answers quickly, idles light, and imports no model library."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "transformers", "trl", "peft", "vllm", "accelerate", "datasets")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def _login_and_get(base: str, password: str) -> str:
    """Log in through Gradio's /login form as the first-run admin, then fetch the app page."""
    import http.cookiejar
    import urllib.parse

    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    form = urllib.parse.urlencode({"username": "admin", "password": password}).encode()
    opener.open(f"{base}/login", data=form, timeout=10).read()
    return opener.open(f"{base}/", timeout=10).read().decode()


def test_app_serves_within_15s_and_idles_under_1gb(tmp_path):
    """A fresh data dir: the app migrates, seeds the sample, creates the first admin and serves."""
    port = _free_port()
    env = {
        **os.environ,
        "GRADIO_SERVER_PORT": str(port),
        "GRADIO_ANALYTICS_ENABLED": "False",
        "REASONRANK_DATA": str(tmp_path),
    }
    env.pop("REASONRANK_DB", None)
    proc = subprocess.Popen(
        [sys.executable, "app.py"],
        cwd=REPO,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        start = time.monotonic()
        page = None
        while time.monotonic() - start < 15:
            try:
                page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).read().decode()
                break
            except OSError:
                time.sleep(0.25)
        assert page is not None, "app did not answer within 15 s"
        name, password = (tmp_path / "initial-admin-password.txt").read_text().split()
        assert name == "admin"
        assert "ReasonRank Studio" in _login_and_get(f"http://127.0.0.1:{port}", password)
        time.sleep(1.0)
        assert _rss_mb(proc.pid) < 1024
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_building_the_app_imports_no_model_library(tmp_path):
    code = f"import sys, app; heavy = [m for m in {HEAVY!r} if m in sys.modules]; print(','.join(heavy))"
    env = {**os.environ, "REASONRANK_DATA": str(tmp_path)}
    env.pop("REASONRANK_DB", None)
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""
