"""The Review tab's keyboard path for fixing an order, in headless Chromium (Debian's, through
Playwright): select a passage in the drag list (click, or Tab to it), move it with ↑/↓, save
with the `f` shortcut; the stored Review row holds the moved order.

Own dataset (`keys`) and user (`keyer`) in the shared review app, so the other UI test files'
queues are untouched.
"""

from __future__ import annotations

import pytest
from browser_fixtures import browser, login, needs_chromium  # noqa: F401 (fixture)
from db_fixtures import make_batch, make_label
from sqlalchemy import select
from ui_fixtures import PASSWORD, review_app  # noqa: F401 (fixture)

from db.engine import read_session
from db.importer import import_batch
from db.models import Review
from db.queue import get_item
from db.users import add_user

DATASET, USER, ITEMS, SIZE = "keys", "keyer", 3, 6

pytestmark = needs_chromium


@pytest.fixture(scope="module")
def keys_app(review_app):
    """The review app with this file's items and reviewer added."""
    url, engine = review_app
    labels = [
        make_label(
            f"k{i}",
            [f"keys-{i}-d{j}" for j in range(SIZE)],
            dataset=DATASET,
            reasoning="Passage [1] answers it; [2] is close.",
        )
        for i in range(ITEMS)
    ]
    import_batch(engine, make_batch(labels, dataset=DATASET))
    add_user(engine, USER, "annotator", PASSWORD)
    return url, engine


@pytest.fixture
def page(browser, keys_app):
    from playwright.sync_api import expect

    url, _ = keys_app
    context, page = login(browser, url, USER, PASSWORD)
    page.get_by_role("tab", name="Review").click()
    page.locator("#rr-dataset input").fill(DATASET)
    page.locator("#rr-dataset input").press("Enter")
    page.locator("#rr-next").click()
    expect(page.locator("#rr-message")).to_contain_text("Claimed")
    yield page
    context.close()


def _order(page) -> list[str]:
    return page.locator("#rr-drag li").evaluate_all("els => els.map(e => e.dataset.id)")


def _focused(page) -> str | None:
    return page.evaluate("document.activeElement && document.activeElement.dataset.id || null")


def _wait_order(page, expected: list[str]) -> None:
    page.wait_for_function(
        "want => [...document.querySelectorAll('#rr-drag li')].map(e => e.dataset.id).join(',') === want",
        arg=",".join(expected),
    )


def _stored_fixes(engine, item_id: int) -> list[list[str]]:
    with read_session(engine) as session:
        return [
            list(ranking)
            for ranking in session.execute(
                select(Review.ranking).where(Review.item_id == item_id, Review.decision == "fix").order_by(Review.id)
            ).scalars()
        ]


def test_arrow_keys_move_the_selected_passage_and_f_saves_it(page, keys_app):
    from playwright.sync_api import expect

    _, engine = keys_app
    item_id = int(page.locator("#rr-item-id input").input_value())
    teacher = _order(page)
    assert len(teacher) == SIZE
    chosen = teacher[3]
    page.locator(f'#rr-drag li[data-id="{chosen}"]').click()  # select it
    page.keyboard.press("ArrowUp")
    page.keyboard.press("ArrowUp")
    page.keyboard.press("ArrowUp")
    page.keyboard.press("ArrowDown")
    # Save straight away, without waiting on anything: the order box follows the list in the
    # browser, so the save cannot carry the order from before the last key press.
    page.keyboard.press("f")
    expected = [teacher[0], chosen, teacher[1], teacher[2], teacher[4], teacher[5]]
    expect(page.locator("#rr-message")).to_contain_text("Saved fix")
    assert _order(page) == expected
    assert _focused(page) == chosen  # the selection followed the passage
    assert _stored_fixes(engine, item_id) == [expected]
    assert get_item(engine, item_id).current_ranking == expected
    expect(page.locator("#rr-order textarea, #rr-order input").first).to_have_value(", ".join(expected))
    expect(page.locator("#rr-diff")).to_contain_text(chosen)  # the moved ids are listed


def test_tab_selects_and_moves_stop_at_the_ends(page, keys_app):
    from playwright.sync_api import expect

    _, engine = keys_app
    item_id = int(page.locator("#rr-item-id input").input_value())
    teacher = _order(page)
    first, last = teacher[0], teacher[-1]
    page.locator(f'#rr-drag li[data-id="{first}"]').focus()
    page.keyboard.press("ArrowUp")  # already at the top: nothing moves
    page.locator(f'#rr-drag li[data-id="{last}"]').focus()
    page.keyboard.press("ArrowDown")  # already at the bottom: nothing moves
    page.wait_for_timeout(300)
    assert _order(page) == teacher
    page.locator(f'#rr-drag li[data-id="{teacher[-2]}"]').focus()
    page.keyboard.press("Tab")  # keyboard-only selection: Tab reaches the next passage
    assert _focused(page) == last
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Shift+Tab")
    assert _focused(page) == teacher[-3]
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    expected = teacher[:-3] + [teacher[-2], last, teacher[-3]]
    _wait_order(page, expected)
    expect(page.locator("#rr-diff")).to_contain_text("moved")
    page.locator("#rr-fix").click()
    expect(page.locator("#rr-message")).to_contain_text("Saved fix")
    assert _stored_fixes(engine, item_id) == [expected]


def test_arrow_keys_in_the_order_box_move_nothing(page):
    teacher = _order(page)
    box = page.locator("#rr-order textarea, #rr-order input").first
    box.click()
    page.keyboard.press("ArrowUp")
    page.keyboard.press("ArrowDown")
    page.wait_for_timeout(300)
    assert _order(page) == teacher and box.input_value() == ", ".join(teacher)
