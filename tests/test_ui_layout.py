"""The app's tabs all sit in one tab bar, in the intended order.

A component created at the Blocks' top level between two tabs (a gr.api, a State, a Timer)
makes Gradio start a second tab group, drawn under every page: easy to miss in API tests.
"""

from __future__ import annotations

import os

from db.engine import get_engine, init_db

EXPECTED = ["Arena", "Start", "Review", "Agreement (admin)", "Synthesize", "Data", "Train", "Eval", "Leaderboard"]


def test_every_tab_is_in_one_tab_bar_in_order(tmp_path):
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import gradio as gr

    from ui import build_app

    engine = get_engine(f"sqlite:///{tmp_path / 'layout.db'}")
    init_db(engine)
    demo = build_app(engine)
    tabs = [block for block in demo.blocks.values() if isinstance(block, gr.Tab)]
    top = [tab for tab in tabs if isinstance(tab.parent, gr.Tabs) and tab.parent.parent is demo]
    assert [tab.label for tab in top] == EXPECTED
    assert len({id(tab.parent) for tab in top}) == 1
    engine.dispose()


def test_review_handlers_run_outside_the_queue_and_model_work_inside_it(tmp_path):
    """Review's database-bound handlers skip Gradio's queue (docs/benchmarks.md: its round trips
    cost more than the work); anything that runs a model stays queued."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from ui import build_app

    engine = get_engine(f"sqlite:///{tmp_path / 'queue.db'}")
    init_db(engine)
    by_name = {fn.api_name: fn for fn in build_app(engine).fns.values() if fn.api_name}
    for review_endpoint in ("next_item", "open_item", "accept", "fix", "reject", "skip"):
        assert by_name[review_endpoint].queue is False, review_endpoint
    for model_endpoint in ("arena_run", "train_start", "eval_start"):
        assert by_name[model_endpoint].queue is True, model_endpoint
    engine.dispose()
