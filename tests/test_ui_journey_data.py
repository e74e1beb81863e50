"""The Data tab in headless Chromium as an admin meets it: every field left at its default except
what a person must give (the file, an export name). A malformed file's issues are listed by line
and field under the file's own name; a valid file imports; an SFT export of items without
reasoning says why it has no rows, and writes them once the admin includes such items.
Screenshots go to tests/artifacts/."""

from __future__ import annotations

import json

import pytest
from browser_fixtures import ARTIFACTS, browser, login, needs_chromium  # noqa: F401 (fixture)
from db_fixtures import make_label
from test_ui_data import MALFORMED
from ui_fixtures import ADMIN, PASSWORD, review_app  # noqa: F401 (fixture)

from db.queue import QueueFilter, next_item
from db.reviews import save_review
from reasonrank.io import write_labels_jsonl

pytestmark = needs_chromium
DATASET = "journey"


@pytest.fixture
def page(browser, review_app):
    url, _ = review_app
    context, page = login(browser, url, ADMIN, PASSWORD)
    page.get_by_role("tab", name="Data").click()
    yield page
    context.close()


def _upload(page, path) -> None:
    from playwright.sync_api import expect

    page.locator("#rr-import-file input[type=file]").set_input_files(str(path))
    expect(page.locator("#rr-import-cmd")).to_contain_text(f"reasonrank import {path.name}")  # upload done


def test_import_malformed_then_valid_file_with_defaults(page, tmp_path):
    from playwright.sync_api import expect

    _upload(page, MALFORMED / "cand_duplicate_qid.jsonl")
    page.locator("#rr-import").click()
    issues = page.locator("#rr-import-issues textarea")
    expect(issues).to_have_value(
        "cand_duplicate_qid.jsonl:3: qid: duplicate qid 'q1' in dataset 'cand_duplicate_qid' (first on line 1)"
    )
    expect(page.locator("#rr-import-msg")).to_contain_text(
        "problem(s) in cand_duplicate_qid.jsonl; nothing was written"
    )
    page.screenshot(path=str(ARTIFACTS / "data-import-malformed.png"), full_page=True)

    good = tmp_path / "journey_labels.jsonl"
    labels = [make_label(f"j{i}", [f"j{i}-d{k}" for k in range(3)], dataset=DATASET, reasoning=None) for i in range(2)]
    write_labels_jsonl(labels, good)
    page.locator("#rr-import-file button[aria-label='Clear']").click()
    _upload(page, good)
    page.locator("#rr-import").click()
    expect(page.locator("#rr-import-msg")).to_contain_text("✓ imported journey_labels.jsonl into journey: 2 new items")
    expect(issues).to_have_value("")
    assert "--run-depth" not in page.locator("#rr-import-cmd").inner_text()
    page.screenshot(path=str(ARTIFACTS / "data-import-valid.png"), full_page=True)


def test_sft_export_of_items_without_reasoning(page, review_app):
    from playwright.sync_api import expect

    _, engine = review_app
    while (item := next_item(engine, ADMIN, QueueFilter(dataset=DATASET))) is not None:
        save_review(engine, item.item_id, ADMIN, "accept", item.version)
    page.locator("#rr-export-name textarea").fill("journey-sft")
    page.locator("#rr-export-datasets textarea").fill(DATASET)
    command = page.locator("#rr-export-cmd")
    expect(command).to_contain_text("--name journey-sft --dataset journey")
    assert "--min-consistency" not in command.inner_text()  # empty is no filter, not 0.0
    page.locator("#rr-export").click()
    expect(page.get_by_text("2 reviewed item(s) matched the filters, 2 left out; 2: no reasoning text")).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "data-export-no-reasoning-refused.png"), full_page=True)

    page.get_by_label("SFT/alpaca: include items without reasoning (empty <think> block)").check()
    expect(command).to_contain_text("--allow-empty-reasoning")
    page.locator("#rr-export").click()
    message = page.locator("#rr-export-msg")
    expect(message).to_contain_text("wrote 2 sft rows")
    expect(message).to_contain_text("2 reviewed item(s) matched the filters, 0 left out")
    expect(page.locator("#rr-export-file").get_by_role("row", name="journey-sft.jsonl")).to_be_visible()
    href = page.locator("#rr-export-file a").first.get_attribute("href")
    rows = [json.loads(line) for line in page.request.get(href).text().splitlines()]
    assert len(rows) == 2 and all(row["messages"][-1]["content"].startswith("<think></think>") for row in rows)
    page.screenshot(path=str(ARTIFACTS / "data-export-written.png"), full_page=True)


def test_agreement_version_is_empty_until_an_item_is_opened(page):
    """Before any item is loaded the Version box is empty, not 0, and adjudicating says to open an
    item instead of acting on a version 0."""
    from playwright.sync_api import expect

    page.get_by_role("tab", name="Agreement (admin)").click()
    version = page.locator("#rr-agree-version input")
    expect(page.locator("#rr-agree-pairs")).to_contain_text("ann1")
    assert version.input_value() == ""
    page.locator("#rr-agree-settle").click()
    expect(page.locator("#rr-agree-message")).to_contain_text("open an item first")
    page.screenshot(path=str(ARTIFACTS / "agreement-empty-version.png"), full_page=True)


def test_a_form_that_cannot_run_says_why_without_error_badges(page):
    """Write export without a name, and import without a file: each says why in its message and
    no output of the form is marked with Gradio's "Error" badge."""
    from playwright.sync_api import expect

    page.locator("#rr-export").click()
    expect(page.locator("#rr-export-msg")).to_contain_text("⚠️ give the export a name")
    page.locator("#rr-import").click()
    expect(page.locator("#rr-import-msg")).to_contain_text("⚠️ upload a file to import first")
    page.wait_for_timeout(500)  # a badge would appear with the message
    assert page.locator(".wrap span.error").count() == 0
    page.screenshot(path=str(ARTIFACTS / "data-refusals-no-badges.png"), full_page=True)
