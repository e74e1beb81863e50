"""Train, Eval and Synthesize in headless Chromium as an admin meets them: every field left at
its default except what a person must give (an export and a base model; a teacher's address).
Charts are checked as drawn in the page: the SVG's line and bar marks are counted and its tick
labels read back as numbers. Screenshots go to tests/artifacts/."""

from __future__ import annotations

import re

import pytest
from browser_fixtures import ARTIFACTS, browser, login, needs_chromium  # noqa: F401 (fixture)
from train_fixtures import dl19_windows, write_sft_export
from ui_fixtures import ADMIN, PASSWORD, review_app  # noqa: F401 (fixture)

from db.engine import data_dir
from db.exports import ExportFilter, record_export
from reasonrank.export_files import ExportFile

pytestmark = needs_chromium
JOB_TIMEOUT_MS = 300_000


@pytest.fixture
def page(browser, review_app):
    url, _ = review_app
    context, page = login(browser, url, ADMIN, PASSWORD)
    yield page
    context.close()


def _texts(locator) -> list[str]:
    """The text of each matched SVG element (SVG has no innerText)."""
    return locator.evaluate_all("els => els.map(e => e.textContent)")


def _numbers(locator) -> list[float]:
    """Tick labels as numbers; a label that is not a number fails the test."""
    return [float(text) for text in _texts(locator)]


def _succeeded(page, kind: str):
    return page.get_by_text(re.compile(rf"Job \d+ \({kind}\) — succeeded"))


def _no_error_toast(page) -> None:
    """No handler failed along the way (Gradio shows a failure as a toast)."""
    assert page.locator(".toast-body").count() == 0, page.locator(".toast-body").all_inner_texts()


def _pick(page, elem_id: str, option: str) -> None:
    page.locator(f"#{elem_id} input").click()
    page.get_by_role("option", name=option).click()


# Whether an element's Gradio "Error" badge is drawn: Gradio keeps the badge in the page and hides
# it by making its status wrapper transparent (Playwright counts an opacity-0 element as visible).
_ERROR_BADGE_DRAWN = """(selector) => [...document.querySelectorAll(selector + ' span.error')].some(badge => {
  for (let node = badge; node; node = node.parentElement) {
    const style = getComputedStyle(node);
    if (style.opacity === '0' || style.visibility === 'hidden' || style.display === 'none') return false;
  }
  return true;
})"""


def test_train_launch_of_the_tiny_preset_draws_its_curves(page, review_app, dl19, tiny_model_dir):
    from playwright.sync_api import expect

    _, engine = review_app
    path = write_sft_export(dl19_windows(dl19, 6), data_dir() / "exports", "journey-train-sft")
    rows = len(path.read_bytes().splitlines())
    export = record_export(engine, path.stem, "sft", ExportFilter(), ExportFile(path, rows, "0" * 64), created_by=ADMIN)
    page.get_by_role("tab", name="Train").click()
    page.get_by_role("button", name="↻ exports").click()
    _pick(page, "rr-train-export", f"#{export.id} journey-train-sft (sft, {rows} rows)")
    command = page.locator("#rr-train-cmd")
    expect(command).to_contain_text(f"--data export:{export.id}")

    # no base model yet: refused at once, as text, and no job starts
    page.locator("#rr-train-start").click()
    refusal = page.get_by_text("no base model given (model: a local folder or a hub id)").first
    expect(refusal).to_be_visible()
    assert "&#x27;" not in page.locator("body").inner_text()  # an entity shown literally
    # the reason is the toast; "Show job #" (an output of Start) is not drawn as an "Error" badge
    assert not page.evaluate(_ERROR_BADGE_DRAWN, "#rr-train-past")
    page.screenshot(path=str(ARTIFACTS / "train-refused-no-model.png"), full_page=True)

    page.locator("#rr-train-model textarea").fill(str(tiny_model_dir))
    expect(command).to_contain_text(f"--model {tiny_model_dir}")
    expect(command).to_contain_text("runs/NEW")  # a new output folder is made at launch
    page.locator("#rr-train-start").click()
    expect(_succeeded(page, "train")).to_be_visible(timeout=JOB_TIMEOUT_MS)
    curves = page.locator(".rr-job-curves")
    expect(curves.locator("svg.rr-chart").first).to_be_visible()
    titles = _texts(curves.locator(".rr-chart-title"))
    assert titles[:3] == ["loss", "learning rate", "gradient norm"], titles  # one panel per quantity
    lines = curves.locator("path.rr-line")
    assert lines.count() == 3
    points = [int(n) for n in lines.evaluate_all("els => els.map(e => e.dataset.points)")]
    assert points == [16, 16, 16]  # the preset's 16 steps, one line each
    for panel in curves.locator("svg.rr-chart").all():
        ys = _numbers(panel.locator("text.rr-tick-y"))
        xs = _numbers(panel.locator("text.rr-tick-x"))
        assert len(ys) >= 2 and ys == sorted(ys) and len(set(ys)) == len(ys)  # a numeric, increasing axis
        assert xs[0] <= 1 and xs[-1] >= 16
    _no_error_toast(page)
    page.screenshot(path=str(ARTIFACTS / "train-curves.png"), full_page=True)

    # switching the stage brings the GRPO preset's hyperparameters into the form and its command
    page.get_by_label("grpo").check()
    expect(page.locator("#rr-train-hyper")).to_contain_text("num_generations")
    expect(command).to_contain_text("reasonrank train grpo")


def test_eval_default_run_charts_the_leaderboard(page):
    from playwright.sync_api import expect

    page.get_by_role("tab", name="Eval").click()
    expect(page.locator("#rr-eval-cmd")).to_contain_text("reasonrank eval --bright-root")
    page.locator("#rr-eval-start").click()
    expect(page.locator("#rr-eval-msg")).to_contain_text("succeeded", timeout=JOB_TIMEOUT_MS)
    chart = page.locator("#rr-eval-chart")
    bars = chart.locator("rect.rr-bar")
    expect(bars.first).to_be_visible()
    runs = chart.locator("text.rr-category").count()
    assert runs >= 1 and bars.count() == 2 * runs  # first stage and final for each run
    series = set(bars.evaluate_all("els => els.map(e => e.dataset.series)"))
    assert series == {"first stage", "final"}
    values = [float(v) for v in bars.evaluate_all("els => els.map(e => e.dataset.value)")]
    assert all(0 < v <= 100 for v in values)
    ticks = _numbers(chart.locator("text.rr-tick-y"))
    assert ticks[0] == 0 and ticks[-1] >= max(values)
    _no_error_toast(page)
    page.screenshot(path=str(ARTIFACTS / "eval-chart.png"), full_page=True)
    # the Leaderboard tab, opened afterwards without Refresh, shows the run that just finished
    shown = bars.count()
    page.get_by_role("tab", name="Leaderboard").click()
    expect(page.locator("#rr-lb-chart rect.rr-bar")).to_have_count(shown)


def test_synthesize_with_its_defaults_against_a_local_teacher(page, review_app, test_data, monkeypatch):
    from openai_server import Answer, OpenAIServer
    from playwright.sync_api import expect

    from db.importer import import_batch
    from reasonrank.imports import ImportBatch
    from reasonrank.io import read_candidate_file, read_qrels

    _, engine = review_app
    root = test_data / "noveleval"
    lists = read_candidate_file(root / "candidates_with_text.json", read_qrels(root / "qrels.txt"), "synthjourney")[:2]
    batch = ImportBatch(labels=[], candidates=lists, qrels={}, dataset="synthjourney", kind="candidates", issues=[])
    import_batch(engine, batch)
    monkeypatch.setenv("DEEPSEEK_API_KEY", "sk-local-journey")  # the default key variable, in the app's environment
    with OpenAIServer(lambda messages, request: Answer(content="[2] > [1]", reasoning_content="[2] is on topic.")) as t:
        page.get_by_role("tab", name="Synthesize").click()
        page.locator("#rr-synth-dataset input").fill("synthjourney")
        page.locator("#rr-synth-dataset input").press("Enter")
        page.locator("#rr-synth-url textarea").fill(t.base_url)
        page.locator("#rr-synth-model textarea").fill("test-model")
        command = page.locator("#rr-synth-cmd")
        expect(command).to_contain_text(f"--dataset synthjourney --limit 10 --base-url {t.base_url} --model test-model")
        page.locator("#rr-synth-start").click()
        expect(page.locator("#rr-synth-msg")).to_contain_text("Started job")
        expect(_succeeded(page, "synth")).to_be_visible(timeout=JOB_TIMEOUT_MS)
        assert len(t.chat_requests) == 2
    job = page.locator("#rr-synth-job input")
    assert job.input_value().isdigit()
    _no_error_toast(page)
    page.screenshot(path=str(ARTIFACTS / "synth-job.png"), full_page=True)


def test_eval_with_a_cpu_reranker_shows_progress_inside_its_window_position(page, review_app, tiny_model_dir):
    """NovelEval's 21 lists are one window position (top-20): one batched call, which the tiny model
    answers 8 prompts at a time. The panel moves at each batch, not only when the position ends.
    A person running on a CPU sets small budgets for new tokens and passage length."""
    from playwright.sync_api import expect

    from db.registry import add_reranker

    _, engine = review_app
    add_reranker(engine, "tiny-journey", "transformers", str(tiny_model_dir), {"batch_size": 8, "device": "cpu"})
    page.get_by_role("tab", name="Eval").click()
    page.get_by_label("NovelEval (bundled BM25 top-20)").check()
    _pick(page, "rr-eval-reranker", "tiny-journey")
    page.locator("#rr-eval-max-new input").fill("16")
    page.locator("#rr-eval-passage input").fill("48")
    command = page.locator("#rr-eval-cmd")
    expect(command).to_contain_text("--max-passage-tokens 48 --max-new-tokens 16")
    page.locator("#rr-eval-start").click()
    expect(page.get_by_text(re.compile(r"\b(8|16)/21 model calls"))).to_be_visible(timeout=JOB_TIMEOUT_MS)
    page.screenshot(path=str(ARTIFACTS / "eval-reranker-progress.png"), full_page=True)
    expect(page.locator("#rr-eval-msg")).to_contain_text("succeeded", timeout=JOB_TIMEOUT_MS)
    _no_error_toast(page)
