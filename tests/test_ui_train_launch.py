"""The Train tab's launch options: two CPU processes under `accelerate launch` (gloo) train like one
process with the same global batch and register once; runner `ray` submits the job to a real Ray
head, its curves reach the panel, its model is registered where it lives, and a second job is
cancelled from the tab and stops on the cluster. The Ray run is also driven in headless Chromium
(the chart's lines are not asserted here: the shared job panel's LinePlot does not always draw
them, a panel problem outside the runners)."""

from __future__ import annotations

import time

import pytest
from browser_fixtures import ARTIFACTS, browser, login, needs_chromium  # noqa: F401 (fixture)
from gradio_client import Client
from ray_fixtures import ray_cluster  # noqa: F401 (fixture)
from train_fixtures import dl19_windows, write_sft_export
from ui_fixtures import ADMIN, PASSWORD, USERS, review_app  # noqa: F401 (fixture)

from db.engine import data_dir
from db.exports import ExportFilter, record_export
from db.registry import list_rerankers
from reasonrank.export_files import ExportFile
from reasonrank.runners import ray as ray_runner

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(900)]
#: relative difference allowed between the per-step losses of 1 process (batch 4) and 2 processes
#: (batch 2 each): the same examples per step, DDP averages the ranks' gradients; measured ~1e-7
LOSS_TOLERANCE = 1e-3


@pytest.fixture(scope="module")
def admin(review_app):
    url, _ = review_app
    return Client(url, auth=(ADMIN, PASSWORD), verbose=False)


@pytest.fixture(scope="module")
def export_id(review_app, dl19) -> int:
    _, engine = review_app
    path = write_sft_export(dl19_windows(dl19, 8), data_dir() / "exports", "launch-sft")
    count = len(path.read_bytes().splitlines())
    return record_export(engine, path.stem, "sft", ExportFilter(), ExportFile(path, count, "0" * 64), ADMIN).id


@pytest.fixture
def on_ray(monkeypatch, ray_cluster, tmp_path):  # noqa: F811
    monkeypatch.setenv(ray_runner.ADDRESS_ENV, ray_cluster.address)
    monkeypatch.setenv(ray_runner.OUTPUT_ROOT_ENV, str(tmp_path / "cluster"))
    return tmp_path / "cluster"


def _form(export_id, model, out, hyper, runner="local", processes=1, strategy="ddp"):
    return (
        "sft",
        "tiny-cpu",
        "full",
        str(export_id),
        "",
        str(model),
        str(out),
        hyper,
        False,
        "",
        runner,
        processes,
        1,
        strategy,
    )


def _wait(client: Client, job_id: int, until, timeout: float = 400.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        view = client.predict(job_id, api_name="/train_job_view")
        if until(view) or time.monotonic() > deadline:
            return view
        time.sleep(0.5)


def _losses(view: dict) -> list[float]:
    return [m["loss"] for m in view["metrics"]]


def test_two_cpu_processes_train_like_one_with_the_same_global_batch(
    admin, review_app, export_id, tiny_model_dir, tmp_path
):
    _, engine = review_app
    one = _form(export_id, tiny_model_dir, tmp_path / "one", "max_steps: 3\nbatch_size: 4\n")
    two = _form(export_id, tiny_model_dir, tmp_path / "two", "max_steps: 3\nbatch_size: 2\n", processes=2)
    command = admin.predict(*two, api_name="/train_command")
    assert "--processes-per-node 2" in command and "--strategy" not in command  # ddp is the default
    single = _wait(admin, admin.predict(*one, api_name="/train_start"), lambda v: v["finished"])
    job_id = int(admin.predict(*two, api_name="/train_start"))
    double = _wait(admin, job_id, lambda v: v["finished"])
    assert single["status"] == "succeeded" and double["status"] == "succeeded", double["log_tail"]
    assert [m["step"] for m in double["metrics"]] == [1, 2, 3]  # rank 0 alone reports
    for a, b in zip(_losses(single), _losses(double), strict=True):
        assert abs(a - b) <= LOSS_TOLERANCE * abs(a), (_losses(single), _losses(double))
    assert "accelerate.commands.launch" not in " ".join(double["argv"])  # the job shows the user's command
    registered = [r for r in list_rerankers(engine) if r.job_id == job_id]
    assert len(registered) == 1 and registered[0].model == str(tmp_path / "two" / "final")


def test_a_failure_on_the_ranks_fails_the_job_with_their_last_lines(admin, export_id, tiny_model_dir, tmp_path):
    form = _form(export_id, tiny_model_dir, tmp_path / "bad", "max_steps: 1\nmax_length: 16\n", processes=2)
    view = _wait(admin, admin.predict(*form, api_name="/train_start"), lambda v: v["finished"], timeout=300)
    assert view["status"] == "failed"  # not "cancelled": the launcher's SIGTERM to rank 0 is not the outcome
    assert view["message"].startswith("a training process failed (launcher exit status 1); last lines:")
    assert "longer than max_length 16 tokens" in view["message"]  # the ranks' own error line


def test_a_missing_strategy_config_is_refused_with_its_path(admin, export_id, tiny_model_dir, tmp_path):
    form = _form(export_id, tiny_model_dir, tmp_path / "x", "max_steps: 1\n", processes=2, strategy="nowhere.yaml")
    view = _wait(admin, admin.predict(*form, api_name="/train_start"), lambda v: v["finished"], timeout=120)
    assert view["status"] == "failed" and "nowhere.yaml" in view["message"] and "accelerate config" in view["message"]


def test_runner_ray_trains_registers_and_cancels_from_the_tab(
    admin, review_app, export_id, tiny_model_dir, tmp_path, on_ray
):
    _, engine = review_app
    form = _form(export_id, tiny_model_dir, data_dir() / "runs" / "ray-tab", "max_steps: 3\n", runner="ray")
    job_id = int(admin.predict(*form, api_name="/train_start"))
    long_job = admin.predict(
        *_form(export_id, tiny_model_dir, tmp_path / "long", "max_steps: 2000\n", runner="ray"),
        api_name="/train_start",
    )
    view = _wait(admin, job_id, lambda v: v["finished"])
    assert view["status"] == "succeeded", (view["message"], view["log_tail"])
    assert [m["step"] for m in view["metrics"]] == [1, 2, 3]
    model_dir = on_ray / "runs" / "ray-tab" / "final"
    assert view["outputs"]["model_dir"] == str(model_dir) and (model_dir / "model.safetensors").is_file()
    registered = [r for r in list_rerankers(engine) if r.job_id == job_id]
    assert len(registered) == 1 and registered[0].model == str(model_dir)
    assert registered[0].lineage["runner"] == "ray" and registered[0].lineage["export_id"] == export_id
    running = _wait(admin, long_job, lambda v: v["finished"] or len(v["metrics"]) >= 1)
    assert running["status"] == "running", running["message"]
    cancelled = admin.predict(long_job, api_name="/train_job_cancel")
    assert cancelled["status"] == "cancelled"
    from ray.job_submission import JobSubmissionClient

    sid = cancelled["config"]["runner"]["submission_id"]
    assert str(JobSubmissionClient(ray_runner.RaySettings.from_env().address).get_job_info(sid).status.value) == (
        "STOPPED"
    )


@needs_chromium
def test_browser_starts_a_ray_job_and_the_panel_follows_it(
    browser,  # noqa: F811
    review_app,
    export_id,
    tiny_model_dir,
    on_ray,
):
    from playwright.sync_api import expect

    url, _ = review_app
    context, page = login(browser, url, ADMIN, PASSWORD)
    try:
        page.get_by_role("tab", name="Train").click()
        page.get_by_role("button", name="↻ exports").click()  # the export was written after the page loaded
        page.locator("#rr-train-export input").click()
        page.get_by_role("option", name="launch-sft").first.click()
        page.locator("#rr-train-model textarea, #rr-train-model input").first.fill(str(tiny_model_dir))
        page.locator("#rr-train-runner input").click()
        page.get_by_role("option", name="ray", exact=True).click()
        expect(page.locator("#rr-train-cmd")).to_contain_text(f"--data export:{export_id}")
        page.locator("#rr-train-start").click()
        status = page.get_by_text("(train) — ")
        expect(status).to_contain_text("succeeded", timeout=300_000)
        expect(page.get_by_text(" on ray at ")).to_be_visible()
        expect(page.locator("#rr-train-model-info")).to_contain_text("Registered model")
        plot = page.locator(".rr-job-curves").first
        expect(plot.locator("svg.rr-chart").first).to_be_visible()
        assert plot.locator("path.rr-line").count() >= 1  # the loss curve is drawn as a line
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "train-ray-job.png"), full_page=True)
        plot.screenshot(path=str(ARTIFACTS / "train-ray-curves.png"))
    finally:
        context.close()
