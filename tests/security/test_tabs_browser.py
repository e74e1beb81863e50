"""Issue 13 through Finding 4: an annotator's page shows only the tabs they can use; an admin's
page shows every tab. Driven in headless Chromium against the real app."""

from __future__ import annotations

import pytest
from browser_fixtures import ARTIFACTS, browser, login, needs_chromium  # noqa: F401
from running_app import ANNOTATOR, PASSWORD

ALL_TABS = ["Arena", "Start", "Review", "Agreement (admin)", "Synthesize", "Data", "Train", "Eval", "Leaderboard"]
ANNOTATOR_TABS = ["Arena", "Start", "Review", "Leaderboard"]


@pytest.fixture(scope="module")
def app(app_with_annotator):
    return app_with_annotator


def _tab_names(page) -> list[str]:
    page.get_by_role("tab", name="Review").wait_for()
    page.wait_for_timeout(1500)  # the page load that reveals admin tabs has answered by now
    return [name.strip() for name in page.get_by_role("tab").all_inner_texts()]


@needs_chromium
@pytest.mark.parametrize("who", ["annotator", "admin"])
def test_tabs_shown_follow_the_role(app, browser, who):  # noqa: F811
    user, password, expected = (
        (ANNOTATOR, PASSWORD, ANNOTATOR_TABS) if who == "annotator" else ("admin", app.admin_password, ALL_TABS)
    )
    context, page = login(browser, app.url, user, password)
    try:
        if who == "admin":
            page.get_by_role("tab", name="Data").wait_for()
        names = _tab_names(page)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"security-tabs-{who}.png"))
        assert names == expected, names
        # one tab bar: a block created between two tabs would split them into a second bar below
        assert page.get_by_role("tablist").count() == 1
        assert not page.locator(".toast-body").count()  # no refusal toast on page load
        assert page.get_by_text("Rerankers (registry)").is_visible() == (who == "admin")
    finally:
        context.close()
