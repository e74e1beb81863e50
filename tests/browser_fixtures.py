"""Headless Chromium for the UI tests: Debian's /usr/bin/chromium driven by Playwright.

One browser per test module (see `browser`); each test opens its own context. `login` is how every browser test gets past Gradio's login form.
Import into a test module with `from browser_fixtures import browser, login, needs_chromium, ARTIFACTS`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"  # screenshots (gitignored)
VIEWPORT = {"width": 1400, "height": 1100}

needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian chromium is not installed (/usr/bin/chromium)"
)


@pytest.fixture(scope="module")
def browser():
    """One Chromium per test module. Each check in the tests waits on a server round trip; on a
    loaded 2-core CI machine that can exceed Playwright's 5 s default, which is not what they test.

    Not one per session: while Playwright's sync API runs, the main thread counts as running an
    asyncio loop, and every later `asyncio.run` in the same process (the OpenAI backend, teacher
    synthesis) would fail with "cannot be called from a running event loop".
    """
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=20_000)
    playwright = sync_playwright().start()
    launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
    try:
        yield launched
    finally:
        launched.close()
        playwright.stop()


def login(browser, url: str, user: str, password: str):
    """(context, page) of a new browser context logged into the app at `url`."""
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.goto(url)
    page.get_by_label("username").fill(user)
    page.get_by_label("password").fill(password)
    page.get_by_role("button", name="Login").click()
    return context, page
