"""The Gradio app, one module per tab; `build_app` assembles them (app.py launches it)."""
from __future__ import annotations

import os


def build_app(engine=None):
    """Build the Blocks without touching any model library (the app must idle light on CPU).

    `engine` is the label store (db.engine.get_engine()); without one the Review, Agreement and
    Data tabs are left out.
    On a Hugging Face Space (SPACE_ID set) a LoginButton offers HF OAuth instead of password auth.
    """
    import gradio as gr

    from ui import home

    with gr.Blocks(title="ReasonRank Studio") as demo:
        if os.environ.get("SPACE_ID"):
            gr.LoginButton()
        home.build()
        if engine is not None:
            from ui import agreement, data, review

            review.build(engine)
            agreement.build(engine)
            data.build(engine)
    return demo
