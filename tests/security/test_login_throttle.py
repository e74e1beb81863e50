"""Finding 10: failed logins slow down per user and per client (against the real app's /login)."""

from __future__ import annotations

import time

import httpx
import pytest
from running_app import ANNOTATOR, PASSWORD, cli, start_app

from ui.auth import LoginThrottle


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    data = tmp_path_factory.mktemp("login-data")
    running = start_app(data)
    cli(data, "user", "add", ANNOTATOR, "--role", "annotator", "--password-env", "RR_PW", env={"RR_PW": PASSWORD})
    yield running
    running.stop()


def _login(url: str, name: str, password: str) -> bool:
    return httpx.post(f"{url}/login", data={"username": name, "password": password}, timeout=30).status_code == 200


def test_guessing_a_password_is_refused_after_a_few_tries(app):
    started = time.monotonic()
    assert not any(_login(app.url, "admin", f"guess {i}") for i in range(8))
    # the right password is refused too while the name is locked: a guess cannot be confirmed
    assert not _login(app.url, "admin", app.admin_password)
    # another user on the same client is not locked by the admin's failures
    assert _login(app.url, ANNOTATOR, PASSWORD)
    # spraying many names from one client locks the client
    assert not any(_login(app.url, f"user{i}", "x") for i in range(20))
    assert not _login(app.url, ANNOTATOR, PASSWORD)
    assert time.monotonic() - started < 30


def test_the_lock_lapses_with_exponential_waits():
    throttle = LoginThrottle(free=3, free_client=100, window_s=900, max_wait_s=60)
    for t in range(3):
        throttle.record("a", "c", ok=False, now=float(t))
    assert not throttle.allowed("a", "c", now=2.5)  # 3 failures: wait 1 s after the last (t=2)
    assert throttle.allowed("a", "c", now=3.01)
    throttle.record("a", "c", ok=False, now=3.01)  # 4th: wait 2 s
    assert not throttle.allowed("a", "c", now=4.5) and throttle.allowed("a", "c", now=5.02)
    throttle.record("a", "c", ok=True, now=5.02)
    assert throttle.allowed("a", "c", now=5.03)
    assert throttle.allowed("b", "c", now=3.0)  # other names are not held back
