"""The Review tab in headless Chromium (Debian's, through Playwright): log in, drag, save, reload;
untrusted passage text renders as text and runs nothing. Screenshots go to tests/artifacts/."""

from __future__ import annotations

import re

import pytest
from browser_fixtures import ARTIFACTS, browser, login, needs_chromium  # noqa: F401 (fixture)
from db_fixtures import make_batch, make_label
from ui_fixtures import ADMIN, PASSWORD, XSS_TEXT, review_app  # noqa: F401 (fixture)

from db.importer import import_batch
from db.queue import get_item

pytestmark = needs_chromium


@pytest.fixture
def page(browser, review_app):
    url, _ = review_app
    context, page = login(browser, url, "web", PASSWORD)
    page.get_by_role("tab", name="Review").click()
    yield page
    context.close()


def _next(page, dataset: str) -> None:
    from playwright.sync_api import expect

    page.locator("#rr-dataset input").fill(dataset)
    page.locator("#rr-dataset input").press("Enter")
    page.locator("#rr-next").click()
    expect(page.locator("#rr-message")).to_contain_text("Claimed")


def _order(page) -> list[str]:
    return page.locator("#rr-drag li").evaluate_all("els => els.map(e => e.dataset.id)")


def _drag(page, source: str, target: str, expected: list[str]) -> None:
    """Drag passage `source` onto the top of `target` until the list shows `expected`.

    Synthetic HTML5 drag-and-drop is occasionally dropped by Chromium before the page settles; a
    repeat is harmless because dropping a passage above the same neighbour again is a no-op.
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for attempt in range(3):
        page.drag_and_drop(
            f'#rr-drag li[data-id="{source}"]', f'#rr-drag li[data-id="{target}"]', target_position={"x": 10, "y": 2}
        )
        try:
            page.wait_for_function(
                "want => [...document.querySelectorAll('#rr-drag li')].map(e => e.dataset.id).join(',') === want",
                arg=",".join(expected),
                timeout=5_000,
            )
            return
        except PlaywrightTimeout:
            if attempt == 2:
                raise


def test_drag_save_reload_shows_saved_order(page, review_app):
    from playwright.sync_api import expect

    _, engine = review_app
    _next(page, "browser")
    item_id = int(page.locator("#rr-item-id input").input_value())
    teacher = _order(page)
    assert len(teacher) == 5
    expected = [teacher[3], teacher[0], teacher[1], teacher[2], teacher[4]]
    _drag(page, teacher[3], teacher[0], expected)
    expect(page.locator("#rr-order textarea, #rr-order input").first).to_have_value(", ".join(expected))
    expect(page.locator("#rr-diff")).to_contain_text("moved")
    page.locator("#rr-fix").click()
    expect(page.locator("#rr-message")).to_contain_text("Saved fix")
    assert get_item(engine, item_id).current_ranking == expected

    page.reload()
    page.get_by_role("tab", name="Review").click()
    page.locator("#rr-item-id input").fill(str(item_id))
    page.locator("#rr-reload").click()
    expect(page.locator("#rr-message")).to_contain_text("Loaded")
    expect(page.locator("#rr-drag li").first).to_have_attribute("data-id", teacher[3])
    assert _order(page) == expected
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "review-after-reload.png"), full_page=True)


def test_untrusted_passage_text_renders_as_text(page):
    from playwright.sync_api import expect

    _next(page, "xss")
    expect(page.locator("#rr-item")).to_contain_text("no reasoning text")
    passage = page.locator('#rr-drag li[data-id="xss-a"]')
    expect(passage).to_contain_text("<script>window.__pwned=1</script>")
    expect(passage).to_contain_text('onerror="window.__pwned=2"')
    assert page.locator("#rr-item img, #rr-drag img").count() == 0
    page.wait_for_timeout(300)
    assert page.evaluate("window.__pwned") is None
    assert XSS_TEXT.startswith("<script>")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "review-untrusted-text.png"), full_page=True)


def test_keyboard_shortcut_skips_but_not_while_typing(page, review_app):
    from playwright.sync_api import expect

    _, engine = review_app
    _next(page, "uitest")
    item_id = int(page.locator("#rr-item-id input").input_value())
    page.locator("#rr-note textarea, #rr-note input").first.fill("s")  # typing 's' in a box must not skip
    page.wait_for_timeout(300)
    expect(page.locator("#rr-message")).not_to_contain_text("Saved")
    page.locator("#rr-item").click(position={"x": 5, "y": 5})
    page.keyboard.press("s")
    expect(page.locator("#rr-message")).to_contain_text(re.compile(r"Saved skip on item \d+"))
    assert get_item(engine, item_id).status == "pending"


def test_typed_order_is_the_keyboard_path_to_a_fix(page, review_app):
    from playwright.sync_api import expect

    _, engine = review_app
    _next(page, "browser")
    item_id = int(page.locator("#rr-item-id input").input_value())
    teacher = _order(page)
    typed = list(reversed(teacher))
    mention = page.locator("#rr-item .rr-mention").first
    mention.hover()
    cited = mention.get_attribute("data-docid")
    expect(page.locator(f'#rr-drag li[data-id="{cited}"]')).to_have_class(re.compile("rr-hl"))
    box = page.locator("#rr-order textarea, #rr-order input").first
    box.fill(" > ".join(typed))
    box.press("Enter")
    expect(page.locator("#rr-drag li").first).to_have_attribute("data-id", typed[0])
    expect(page.locator("#rr-diff")).to_contain_text("-1.000")
    page.locator("#rr-fix").click()
    expect(page.locator("#rr-message")).to_contain_text("Saved fix")
    assert get_item(engine, item_id).current_ranking == typed


def test_version_conflict_keeps_the_edit_on_screen(page, review_app):
    from playwright.sync_api import expect

    from db.reviews import save_review

    _, engine = review_app
    _next(page, "browser")
    item_id = int(page.locator("#rr-item-id input").input_value())
    version = int(page.locator("#rr-version input").input_value())
    teacher = _order(page)
    edited = [teacher[4]] + teacher[:4]
    _drag(page, teacher[4], teacher[0], edited)
    box = page.locator("#rr-order textarea, #rr-order input").first
    expect(box).to_have_value(", ".join(edited))
    # an admin decides first (no one else may: the item is claimed)
    save_review(engine, item_id, ADMIN, "accept", version)
    page.locator("#rr-fix").click()
    expect(page.locator("#rr-message")).to_contain_text("saved by someone else")
    expect(page.locator("#rr-message")).to_contain_text("still on screen")
    assert box.input_value() == ", ".join(edited) and _order(page) == edited
    view = get_item(engine, item_id)
    assert view.status == "accepted" and view.current_ranking == teacher


def test_nothing_loaded_means_empty_fields_and_a_plain_hint(page):
    """Before Next, the item id and version boxes are empty (not 0) and Accept says what to do."""
    from playwright.sync_api import expect

    expect(page.locator("#rr-item")).to_contain_text("Press Next (n) to claim the next item")
    assert page.locator("#rr-item-id input").input_value() == ""
    assert page.locator("#rr-version input").input_value() == ""
    page.locator("#rr-accept").click()
    expect(page.locator("#rr-message")).to_contain_text("load an item first")
    assert "id 0" not in page.locator("#rr-message").inner_text()
    page.locator("#rr-reload").click()
    expect(page.locator("#rr-message")).to_contain_text("type an item id first")
    page.screenshot(path=str(ARTIFACTS / "review-nothing-loaded.png"))


def test_progress_table_stays_in_the_actions_column(browser, review_app):
    """A dataset named after its file (as an import without a name makes it) is long: the progress
    table keeps to the actions column at 1440x900, the name cut and whole on hover. Passages read
    as the model read them: MS MARCO's mojibake repaired as the prompt repairs it."""
    from playwright.sync_api import expect

    url, engine = review_app
    long_name = "bm25_top100_with_text_imported_without_a_name"
    texts = {"p0-d0": "Truck Driver Who Didn\u00e2\u0080\u0099t Vote"}
    label = make_label("p0", ["p0-d0", "p0-d1"], dataset=long_name, texts=texts)
    import_batch(engine, make_batch([label], dataset=long_name))
    context, page = login(browser, url, "web", PASSWORD)
    try:
        page.set_viewport_size({"width": 1440, "height": 900})
        page.get_by_role("tab", name="Review").click()
        cell = page.locator("#rr-progress td", has_text=long_name)
        expect(cell).to_be_visible()
        table = page.locator("#rr-progress table").bounding_box()
        fix = page.locator("#rr-fix").bounding_box()  # the right edge of the actions
        assert table["x"] + table["width"] <= fix["x"] + fix["width"] + 2, (table, fix)
        assert cell.get_attribute("title") == long_name
        headers = page.locator("#rr-progress th").evaluate_all("els => els.map(e => e.scrollWidth <= e.clientWidth)")
        assert all(headers), headers  # every column's name whole
        _next(page, long_name)
        expect(page.locator('#rr-drag li[data-id="p0-d0"]')).to_contain_text("Truck Driver Who Didn't Vote")
        page.screenshot(path=str(ARTIFACTS / "review-progress-long-name.png"))
    finally:
        context.close()
