"""Leaderboard tab: every recorded eval run, best nDCG@10 first, with its comparison and
quality-cost charts. Public: on a Space anonymous visitors see it beside the Arena. It only reads
(the Eval tab, for admins, records finished runs)."""

from __future__ import annotations

from functools import partial

import gradio as gr
from gradio.context import Context
from sqlalchemy import Engine

from db.evalruns import leaderboard
from ui.auth import public
from ui.render_eval import LEADERBOARD_COLUMNS, comparison_chart, frontier_chart, leaderboard_frame


def leaderboard_view(engine: Engine) -> tuple:
    """(board, comparison chart, frontier chart) as recorded now."""
    runs = leaderboard(engine)
    return leaderboard_frame(runs), comparison_chart(runs), frontier_chart(runs)


def build(engine: Engine) -> None:
    with gr.Tab("Leaderboard", id="leaderboard") as tab:
        gr.Markdown(
            "Every recorded evaluation run, best nDCG@10 first: the reranker and its method, the first "
            "stage it reranked, and what it cost per query. Runs are started from the Eval tab (admins)."
        )
        board = gr.Dataframe(None, headers=LEADERBOARD_COLUMNS, interactive=False, elem_id="rr-lb-board")
        chart = gr.HTML(elem_id="rr-lb-chart")
        frontier = gr.HTML(elem_id="rr-lb-frontier")
        refresh = gr.Button("Refresh", size="sm", elem_id="rr-lb-refresh")
    outputs = [board, chart, frontier]
    view = public(partial(leaderboard_view, engine))
    Context.root_block.load(view, None, outputs, api_visibility="private")
    refresh.click(view, None, outputs, api_name="leaderboard")
    # opening the tab shows the runs recorded since the page loaded (an eval finished meanwhile)
    tab.select(view, None, outputs, api_visibility="private")
