"""The shared job panel's API through gradio_client: watch a real job, refuse an annotator's
cancel, let an admin cancel. (Each tab's own tests launch jobs through its form.)"""

from __future__ import annotations

import time

import pytest
from openai_server import Fault, OpenAIServer

from db import jobs as db_jobs
from db.engine import get_engine, init_db
from db.users import add_user, verify

PASSWORD = "panel pass 7"


@pytest.fixture(scope="module")
def panel_app(tmp_path_factory):
    """A Blocks holding only an eval job panel, on a migrated SQLite file with two users."""
    import gradio as gr

    from ui.jobs import job_panel

    root = tmp_path_factory.mktemp("panel")
    engine = get_engine(f"sqlite:///{root / 'reasonrank.db'}")
    init_db(engine)
    add_user(engine, "admin1", "admin", PASSWORD)
    add_user(engine, "ann1", "annotator", PASSWORD)
    with gr.Blocks() as demo:
        job_panel(engine, "eval")
    _, url, _ = demo.launch(
        server_name="127.0.0.1",
        prevent_thread_lock=True,
        quiet=True,
        auth=lambda u, p: verify(engine, u, p) is not None,
    )
    yield url, engine
    demo.close()
    engine.dispose()


def _client(url: str, user: str):
    from gradio_client import Client

    return Client(url, auth=(user, PASSWORD), verbose=False)


def test_panel_shows_a_job_and_only_an_admin_cancels_it(panel_app, tmp_path, monkeypatch):
    url, engine = panel_app
    monkeypatch.setenv("REASONRANK_DATA", str(tmp_path))
    lists = tmp_path / "lists.jsonl"
    lists.write_text(
        '{"qid": "q", "query": "x", "candidates": [{"docid": "a", "text": "t"}, {"docid": "b", "text": "u"}]}\n'
    )
    with OpenAIServer(responder=lambda messages, request: Fault(hang_s=30)) as server:
        argv = [
            "rerank",
            "--candidates",
            str(lists),
            "--backend",
            "openai",
            "--model",
            "test-model",
            "--base-url",
            server.base_url,
            "--timeout",
            "60",
            "--out",
            str(tmp_path / "out"),
        ]
        job_id = db_jobs.launch_job(engine, "eval", argv, {})
        deadline = time.monotonic() + 30
        while not server.chat_requests and time.monotonic() < deadline:
            time.sleep(0.1)
        annotator, admin = _client(url, "ann1"), _client(url, "admin1")
        view = annotator.predict(job_id, api_name="/eval_job_view")
        assert view["status"] == "running" and view["argv"][0] == "rerank"
        with pytest.raises(Exception, match="not an admin"):
            annotator.predict(job_id, api_name="/eval_job_cancel")
        assert admin.predict(job_id, api_name="/eval_job_view")["status"] == "running"
        cancelled = admin.predict(job_id, api_name="/eval_job_cancel")
    assert cancelled["status"] == "cancelled" and cancelled["finished"]
    assert db_jobs.refresh_job(engine, job_id).status == "cancelled"


def test_render_helpers_show_figures_eta_and_curves():
    from db.jobs import JobView
    from ui.jobs import code_span, curve_points, render_bar, render_curves, render_status

    view = JobView(
        id=3,
        kind="train",
        status="running",
        argv=["train", "sft"],
        config={},
        progress={
            "time": 10.0,
            "event": "progress",
            "done": 5,
            "total": 20,
            "unit": "step",
            "errors": {"429": 2},
            "cost_usd": 0.125,
        },
        metrics=[{"step": 1, "loss": 2.0, "reward": -1}, {"step": 2, "loss": 1.5}],
        message="",
        outputs={},
        log_tail="",
        eta_seconds=75.0,
        created_by=None,
        lineage={},
    )
    status = render_status(view)
    assert "5/20 steps" in status and "ETA 1:15" in status and "429 2" in status and "$: 0.125" in status
    assert 'aria-valuenow="25"' in render_bar(view)
    curves = {"loss": ("loss",), "reward": ("reward",), "lr": ("lr",)}
    assert curve_points(view, curves) == {
        "loss": {"loss": [(1.0, 2.0), (2.0, 1.5)]},
        "reward": {"reward": [(1.0, -1.0)]},
        "lr": {},
    }
    drawn = render_curves(view, curves)
    assert drawn.count('class="rr-line"') == 2 and drawn.count('class="rr-chart"') == 2  # no panel for lr
    assert "`reasonrank train sft`" in status
    failed = JobView(**{**view.__dict__, "status": "failed", "message": "model 'x' at https://h/x. ```<b>y</b>"})
    shown = render_status(failed)
    # the message is shown as written: no entity (&#x27;), no link, no markup interpreted
    assert "````text\nmodel 'x' at https://h/x. ```<b>y</b>\n````" in shown and "&#x27;" not in shown
    assert code_span("a `b` c") == "``a `b` c``"
