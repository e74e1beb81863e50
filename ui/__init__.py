"""The Gradio app, one module per tab; `build_app` assembles them (app.py launches it)."""

from __future__ import annotations

import os

#: Options for every `launch` of the app (app.py, benches, tests). Gradio's run history is off: it
#: copies each run's inputs and outputs into the browser's localStorage (up to 100 runs) and
#: re-serialises that list on every click, which made the Arena's click-to-first-token ~30 ms
#: slower (bench/arena_latency.py) and grows with use; and reviewers' passages, labels and model
#: reasoning should not pile up in browser storage. The app keeps its own record (jobs, eval runs).
LAUNCH_OPTIONS = {"run_history": False}


def build_app(engine=None):
    """Build the Blocks without touching any model library (the app must idle light on CPU).

    `engine` is the label store (db.engine.get_engine()); without one only the Arena (with the
    bundled samples and no registry) and the Start tab are built.
    On a Hugging Face Space (SPACE_ID set) a LoginButton offers HF OAuth instead of password auth.
    """
    import gradio as gr

    from ui import arena, home

    with gr.Blocks(title="ReasonRank Studio") as demo:
        if os.environ.get("SPACE_ID"):
            gr.LoginButton()
        arena.build(engine)  # the first tab: rerankers side by side
        home.build()
        if engine is not None:
            from ui import agreement, data, evaluate, review, synth, train

            review.build(engine)
            agreement.build(engine)
            synth.build(engine)
            data.build(engine)
            train.build(engine)
            evaluate.build(engine)
            if os.environ.get("SPACE_ID"):
                from ui import space_backup

                space_backup.build(engine)  # admins: snapshots and pushes to a private Hub dataset
    return demo
