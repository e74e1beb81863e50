"""`python app.py` launched the way a Space launches it: SYSTEM=spaces, SPACE_ID,
SPACE_AUTHOR_NAME, HF OAuth's variables (a real OpenID discovery server on 127.0.0.1 stands in
for huggingface.co) and ZeroGPU's variables (SPACES_ZERO_GPU with a device-API stub; on this
CPU-only torch the `spaces` package cannot load, which the app reports and survives).

One app process serves every test here: it starts without password auth and offers HF sign-in;
anonymous visitors run the Arena (declared rerankers beside the builtins, the tiny model through
the ZeroGPU backend, a missing secret failing in its own lane) but cannot review or call any
admin action through the API; a signed-in HF user (a session cookie signed the way Gradio's
session middleware signs it) is an annotator and can review; the owner and the listed admin
are admins. The secret key never shows in the page, the database or the app's log.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from browser_fixtures import ARTIFACTS, VIEWPORT, browser, needs_chromium  # noqa: F401
from openai_bodies import Answer
from openai_server import OpenAIServer
from scripted_backend import window_passages

REPO = Path(__file__).resolve().parents[1]
OWNER = "space-owner"
LISTED_ADMIN = "bob-admin"
SECRET = "sk-test-do-not-leak-8c1f2e"
CLIENT_SECRET = "oauth-client-secret"
PYTHON = sys.executable
REVIEW_MESSAGE = 8  # position of the message among the Review tab's item outputs


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Provider(http.server.BaseHTTPRequestHandler):
    """OpenID discovery (what Gradio's OAuth setup fetches) and ZeroGPU's startup report."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        base = f"http://{self.headers['Host']}"
        body = json.dumps(
            {
                "issuer": base,
                "authorization_endpoint": f"{base}/oauth/authorize",
                "token_endpoint": f"{base}/oauth/token",
                "userinfo_endpoint": f"{base}/oauth/userinfo",
                "jwks_uri": f"{base}/oauth/jwks",
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")


def _reverse(messages, request):
    n = len(window_passages(messages))
    return Answer(
        content="<answer>" + " > ".join(f"[{i}]" for i in range(n, 0, -1)) + "</answer>",
        reasoning_content="Later passages answer it.",
    )


@pytest.fixture(scope="module")
def space(tmp_path_factory, tiny_model_dir):
    tmp = tmp_path_factory.mktemp("space")
    provider = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Provider)
    threading.Thread(target=provider.serve_forever, daemon=True).start()
    endpoint = OpenAIServer(responder=_reverse, api_key=SECRET).__enter__()
    port = _free_port()
    declared = [
        {
            "name": "endpoint (key set)",
            "backend": "openai",
            "model": "test-model",
            "base_url": endpoint.base_url,
            "api_key_env": "RR_TEST_ENDPOINT_KEY",
        },
        {
            "name": "endpoint (no key)",
            "backend": "openai",
            "model": "test-model",
            "base_url": endpoint.base_url,
            "api_key_env": "RR_ABSENT_KEY",
        },
        {"name": "tiny (ZeroGPU)", "backend": "zerogpu", "model": str(tiny_model_dir), "options": {"device": "cpu"}},
    ]
    provider_url = f"http://127.0.0.1:{provider.server_port}"
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("RR_ABSENT_KEY", "HF_TOKEN")},
        "PYTHONPATH": str(REPO),
        "SYSTEM": "spaces",
        "SPACE_ID": f"{OWNER}/reasonrank-studio",
        "SPACE_AUTHOR_NAME": OWNER,
        "SPACE_REPO_NAME": "reasonrank-studio",
        "SPACE_HOST": f"127.0.0.1:{port}",
        "OAUTH_CLIENT_ID": "test-client",
        "OAUTH_CLIENT_SECRET": CLIENT_SECRET,
        "OAUTH_SCOPES": "openid profile",
        "OPENID_PROVIDER_URL": provider_url,
        "SPACES_ZERO_GPU": "true",
        "SPACES_ZERO_DEVICE_API_URL": provider_url,
        "ZEROGPU_OFFLOAD_DIR": str(tmp / "zerogpu"),
        "REASONRANK_DATA": str(tmp / "data"),
        "REASONRANK_ADMINS": f" {LISTED_ADMIN} ,someone-else",
        "REASONRANK_RERANKERS": json.dumps(declared),
        "RR_TEST_ENDPOINT_KEY": SECRET,
        "GRADIO_SERVER_NAME": "127.0.0.1",
        "GRADIO_SERVER_PORT": str(port),
        "GRADIO_ANALYTICS_ENABLED": "False",
    }
    log = tmp / "app.log"
    url = f"http://127.0.0.1:{port}"
    for attempt in range(2):
        with log.open("wb") as out:
            process = subprocess.Popen([PYTHON, "app.py"], cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
        if _serves(process, url, log):
            break
        # Gradio's own reachability probe (3 s per try) can time out on a loaded machine
        assert attempt == 0 and "localhost is not accessible" in log.read_text(errors="replace"), log.read_text(
            errors="replace"
        )[-3000:]
    try:
        yield {"url": url, "log": log, "data": tmp / "data", "endpoint": endpoint}
    finally:
        process.terminate()
        process.wait(timeout=20)
        endpoint.__exit__(None, None, None)
        provider.shutdown()


def _serves(process, url: str, log: Path) -> bool:
    """True once the app answers at `url`; False when it exited first."""
    deadline = time.monotonic() + 90
    while process.poll() is None:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "the app did not serve within 90 s"
        time.sleep(0.5)
    return False


def session_cookie(user: str) -> str:
    """The `session` cookie Gradio's SessionMiddleware would set after an HF sign-in of `user`."""
    from itsdangerous import TimestampSigner

    key = hashlib.sha256((CLIENT_SECRET + "-v4").encode()).hexdigest()
    info = {"oauth_info": {"userinfo": {"preferred_username": user, "name": user, "sub": user}, "access_token": "t"}}
    data = base64.b64encode(json.dumps(info).encode())
    return TimestampSigner(key).sign(data).decode()


def client(space, user: str | None = None):
    from gradio_client import Client

    headers = {"Cookie": f"session={session_cookie(user)}"} if user else None
    return Client(space["url"], headers=headers, verbose=False, httpx_kwargs={"timeout": 60})  # a loaded CI box


def arena(c, names, top_k=10, window=10, step=5, tokens=12):
    from ui.arena_queries import SAMPLES, query_choices

    source = next(iter(SAMPLES))
    qid = query_choices(source)[0][1]
    board, results, _figures, message, rest = c.predict(
        source, qid, "", "", "", names, top_k, window, step, tokens, "at once", api_name="/arena_run"
    )
    return board, results, message, rest


def test_starts_without_password_auth_and_offers_hf_sign_in(space):
    config = httpx.get(f"{space['url']}/config").json()
    assert not config.get("auth_required")
    assert any(c.get("props", {}).get("variant") == "huggingface" for c in config["components"])
    login = httpx.get(f"{space['url']}/login/huggingface", follow_redirects=False)
    assert login.status_code in (302, 307)
    assert "/oauth/authorize" in login.headers["location"] and "client_id=test-client" in login.headers["location"]
    assert not (space["data"] / "initial-admin-password.txt").exists()  # no password admin on a Space
    assert "ZeroGPU is unavailable here" in space["log"].read_text(errors="replace")


def test_anonymous_runs_the_arena_with_declared_rerankers(space):
    board, results, message, _ = arena(
        client(space), ["endpoint (key set)", "endpoint (no key)", "tiny (ZeroGPU)", "BM25"]
    )
    lanes = {lane["name"]: lane for lane in results["lanes"]}
    assert lanes["endpoint (key set)"]["status"] == "done", lanes["endpoint (key set)"]["error"]
    assert lanes["endpoint (key set)"]["ranking"] == results["docids"][::-1]
    assert lanes["tiny (ZeroGPU)"]["status"] == "done", lanes["tiny (ZeroGPU)"]["error"]
    assert lanes["BM25"]["status"] == "done"
    missing = lanes["endpoint (no key)"]
    assert missing["status"] == "error" and "set the secret RR_ABSENT_KEY" in missing["error"]
    assert "RR_ABSENT_KEY" in board and "Failed: endpoint (no key)" in message
    assert all(request.authorized for request in space["endpoint"].chat_requests)  # the key was sent …
    page = httpx.get(space["url"]).text + json.dumps(httpx.get(f"{space['url']}/config").json())
    for text in (board, json.dumps(results), message, page, space["log"].read_text(errors="replace")):
        assert SECRET not in text  # … and shown nowhere
    for path in space["data"].rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


def test_anonymous_cannot_review_or_act_as_admin(space):
    from gradio_client.exceptions import AppError

    anonymous = client(space)
    for call in (
        lambda: anonymous.predict("", "pending", "", 0, 1, api_name="/next_item"),
        lambda: anonymous.predict("", api_name="/agreement"),
        lambda: anonymous.predict(api_name="/backup_snapshot"),
    ):
        with pytest.raises(AppError, match="not logged in"):
            call()


def test_signed_in_user_is_an_annotator_and_owner_and_listed_name_are_admins(space):
    from gradio_client.exceptions import AppError

    annotator = client(space, "hf-alice")
    message = annotator.predict("", "pending", "", 0, 1, api_name="/next_item")[REVIEW_MESSAGE]
    assert message.startswith("Claimed"), message
    with pytest.raises(AppError, match="not an admin"):
        annotator.predict("", api_name="/agreement")
    with pytest.raises(AppError, match="not an admin"):
        annotator.predict(api_name="/backup_snapshot")
    for admin in (OWNER, LISTED_ADMIN.upper()):
        table, message = client(space, admin).predict(api_name="/backup_snapshot")
        assert message.startswith("✓ Snapshot reasonrank-"), message
    assert len(list((space["data"] / "snapshots").glob("reasonrank-*.db"))) == 2


def test_owner_restores_a_snapshot_after_snapshotting_what_it_replaces(space):
    """A review saved after snapshot S is gone once S is restored, and is kept in the snapshot the
    restore takes first; the restore needs the box ticked, a listed name and an admin."""
    from gradio_client.exceptions import AppError
    from sqlalchemy import func, select

    from db.engine import get_engine, read_session
    from db.models import Review

    def reviews() -> int:
        engine = get_engine(f"sqlite:///{space['data'] / 'reasonrank.db'}")
        with read_session(engine) as session:
            count = session.scalar(select(func.count()).select_from(Review))
        engine.dispose()
        return count

    owner, annotator = client(space, OWNER), client(space, "hf-carol")
    _, message = owner.predict(api_name="/backup_snapshot")
    snapshot = message.split()[2]
    before = reviews()
    item_id, version = annotator.predict("", "pending", "", 0, 1, api_name="/next_item")[:2]
    saved = annotator.predict(item_id, version, "", "", "", None, api_name="/accept")[0]
    assert "Saved accept" in saved and reviews() == before + 1
    with pytest.raises(AppError, match="not an admin"):
        annotator.predict(snapshot, True, api_name="/backup_restore")
    _, _, refused = owner.predict(snapshot, False, api_name="/backup_restore")
    assert refused.startswith("⚠️ tick the box") and reviews() == before + 1
    _, _, done = owner.predict(snapshot, True, api_name="/backup_restore")
    assert done.startswith(f"✓ Restored {snapshot}"), done
    assert reviews() == before  # the later save is undone …
    kept = space["data"] / "snapshots" / done.split()[-1].rstrip(".")
    engine = get_engine(f"sqlite:///{kept}")
    with read_session(engine) as session:  # … and kept in the snapshot taken first
        assert session.scalar(select(func.count()).select_from(Review)) == before + 1
    engine.dispose()
    again = client(space, "hf-carol").predict("", "pending", "", 0, 1, api_name="/next_item")
    assert again[0] is not None  # the app goes on serving from the restored store
    _, _, outside = owner.predict("../reasonrank.db", True, api_name="/backup_restore")
    assert outside.startswith("⚠️ no snapshot named")


@needs_chromium
def test_browser_owner_restores_from_the_backups_tab(space, browser):  # noqa: F811
    from playwright.sync_api import expect

    client(space, OWNER).predict(api_name="/backup_snapshot")
    context = browser.new_context(viewport=VIEWPORT)
    host = space["url"].split("//")[1].split(":")[0]
    context.add_cookies([{"name": "session", "value": session_cookie(OWNER), "domain": host, "path": "/"}])
    page = context.new_page()
    try:
        page.goto(space["url"])
        page.get_by_role("tab", name="Backups").click()
        expect(page.locator("#bk-table")).to_contain_text("reasonrank-")  # filled by the admin's page load
        page.locator("#bk-restore").click()
        expect(page.locator("#bk-message")).to_contain_text("choose a snapshot to restore")
        page.locator("#bk-choice input").click()
        page.get_by_role("option").first.click()
        page.locator("#bk-restore").click()
        expect(page.locator("#bk-message")).to_contain_text("tick the box first")
        page.locator("#bk-confirm input").check()
        page.locator("#bk-restore").click()
        expect(page.locator("#bk-message")).to_contain_text("Restored reasonrank-")
        assert page.locator(".wrap span.error").count() == 0
        page.screenshot(path=str(ARTIFACTS / "space-backups-restore.png"), full_page=True)
    finally:
        context.close()


@needs_chromium
def test_browser_anonymous_visitor_sees_estimate_and_runs_arena(space, browser):  # noqa: F811
    from playwright.sync_api import expect

    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    try:
        page.goto(space["url"])
        expect(page.locator("#arena-run")).to_be_visible(timeout=30_000)
        estimate = page.locator("#arena-gpu-estimate")
        expect(estimate).to_contain_text("1 window × up to 3172 new tokens")
        page.locator("#arena-sweep").click()
        expect(estimate).to_contain_text("9 windows", timeout=20_000)
        expect(estimate).to_contain_text("exceeds a free daily quota")
        for elem_id, value in (
            ("arena-topk", "10"),
            ("arena-window", "10"),
            ("arena-step", "5"),
            ("arena-max-tokens", "12"),
        ):
            page.locator(f"#{elem_id} input").fill(value)
            page.locator(f"#{elem_id} input").press("Tab")
        expect(estimate).to_contain_text("1 window × up to 12 new tokens")
        page.locator("#arena-rerankers .remove-all").click()  # the picker starts with BM25 + a recording
        picker = page.locator("#arena-rerankers input")
        for name in ("tiny (ZeroGPU)", "endpoint (no key)"):
            picker.click()
            picker.fill(name)
            picker.press("Enter")
        page.locator("#arena-run").click()
        expect(page.locator("#arena-message")).to_contain_text("Done", timeout=90_000)
        expect(page.locator('#arena-board .ar-lane[data-lane="tiny (ZeroGPU)"]')).to_contain_text("done")
        expect(page.locator('#arena-board .ar-lane[data-lane="endpoint (no key)"]')).to_contain_text("RR_ABSENT_KEY")
        expect(page.get_by_role("button", name="Sign in with Hugging Face")).to_be_visible()
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "space-anonymous-arena.png"), full_page=True)
        assert SECRET not in page.content()
        # an anonymous visitor is shown what they may use: Arena and Start, no Review or admin tab
        expect(page.get_by_role("tab", name="Start")).to_be_visible()
        expect(page.get_by_role("tab", name="Leaderboard")).to_be_visible()
        for hidden in ("Review", "Data", "Train", "Backups"):
            expect(page.get_by_role("tab", name=hidden)).to_have_count(0)
    finally:
        context.close()
