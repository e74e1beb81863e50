"""Finding 8: a backtick in a job's command or a model name cannot inject markup. A job whose
argv and registered model name carry a form, a link and a tracking image is shown in the Train
tab of a real Chromium; none of them becomes an element and the page requests nothing outside."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from browser_fixtures import ARTIFACTS, browser, login, needs_chromium  # noqa: F401
from running_app import start_app

PAYLOAD = (
    "x` <form action=https://evil.example/f><input name=p value=1></form> "
    "[click me](https://evil.example/l) ![t](https://evil.example/t.png) <img src=https://evil.example/i.png> `"
)


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    from db.engine import get_engine, init_db, write_session
    from db.models import Job

    data = tmp_path_factory.mktemp("markup-data")
    engine = get_engine(f"sqlite:///{data / 'reasonrank.db'}")
    init_db(engine)
    with write_session(engine) as session:
        job = Job(
            kind="train",
            config={"argv": ["train", "sft", "--register-as", PAYLOAD]},
            status="succeeded",
            message="done",
            outputs={"reranker_name": PAYLOAD, "reranker_id": 1, "model_dir": PAYLOAD, "stage": "sft", "steps": 1},
        )
        session.add(job)
        session.flush()
        job_id = job.id
    engine.dispose()
    running = start_app(data)
    yield running, job_id
    running.stop()


@needs_chromium
def test_job_command_and_model_name_stay_text(app, browser):  # noqa: F811
    from playwright.sync_api import expect

    running, job_id = app
    context, page = login(browser, running.url, "admin", running.admin_password)
    outside: list[str] = []
    page.on(
        "request",
        lambda request: (
            outside.append(request.url) if urlsplit(request.url).hostname not in ("127.0.0.1", "localhost") else None
        ),
    )
    try:
        page.get_by_role("tab", name="Train").click()
        page.get_by_label("Show job #").fill(str(job_id))
        page.get_by_role("button", name="Show", exact=True).click()
        expect(page.get_by_text(f"Job {job_id}").first).to_be_visible()
        expect(page.get_by_text("Registered model:").first).to_be_visible()
        page.wait_for_timeout(1000)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "security-markup-train.png"), full_page=True)
        assert page.locator("form[action*='evil.example']").count() == 0
        assert page.locator("a[href*='evil.example']").count() == 0
        assert page.locator("img[src*='evil.example']").count() == 0
        assert page.get_by_text("[click me](https://evil.example/l)").count() >= 1  # shown as the text it is
        assert not outside, outside
    finally:
        context.close()
