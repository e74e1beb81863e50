"""The Gradio app, one module per tab; `build_app` assembles them (app.py launches it)."""
from __future__ import annotations


def build_app():
    """Build the Blocks without touching any model library (the app must idle light on CPU)."""
    import gradio as gr

    from ui import home

    with gr.Blocks(title="ReasonRank Studio") as demo:
        home.build()
    return demo
