"""The Gradio app, one module per tab; `build_app` assembles them (app.py launches it)."""

from __future__ import annotations

import os

#: Options for every `launch` of the app (app.py, benches, tests). Gradio's run history is off: it
#: copies each run's inputs and outputs into the browser's localStorage (up to 100 runs) and
#: re-serialises that list on every click, which made the Arena's click-to-first-token ~30 ms
#: slower (bench/arena_latency.py) and grows with use; and reviewers' passages, labels and model
#: reasoning should not pile up in browser storage. The app keeps its own record (jobs, eval runs).
LAUNCH_OPTIONS = {"run_history": False}

#: Tabs only admins can use: hidden until the page learns the user is an admin (their handlers
#: refuse anyone else on the server in any case, see ui.auth).
ADMIN_TABS = ("agreement", "synth", "data", "train", "eval")
ADMIN_PANELS = ("reg-panel",)  # the Arena's registry panel (adding and removing rerankers)

#: Review handlers run this many at once (Gradio's default is 1 per event, which queued every
#: annotator behind one another). They only touch the database: SQLite WAL readers never wait,
#: writers take BEGIN IMMEDIATE in turn, and each call holds the lock for milliseconds.
#: Model-bound handlers keep their own small limits (the Arena's run: 4).
REVIEW_CONCURRENCY = 16


def launch_options() -> dict:
    """LAUNCH_OPTIONS for the real app: Gradio serves nothing of the data directory.

    The data dir holds the database (and its WAL), the first admin's password, job logs and
    exports; a download is a per-download copy handed out by an admin-only handler
    (ui.downloads). Blocking the directory also stops Gradio from ever opening the database file
    itself: SQLite's POSIX locks are dropped when *any* descriptor of the file closes in a
    process, after which another process may checkpoint and delete a live WAL.
    """
    from starlette.middleware import Middleware

    from db.engine import data_dir
    from ui.auth import ClientAddress

    return {
        **LAUNCH_OPTIONS,
        "allowed_paths": [],
        "blocked_paths": [str(data_dir().resolve())],
        "app_kwargs": {"middleware": [Middleware(ClientAddress)]},  # the login throttle's client address
    }


def build_app(engine=None):
    """Build the Blocks without touching any model library (the app must idle light on CPU).

    `engine` is the label store (db.engine.get_engine()); without one only the Arena (with the
    bundled samples and no registry) and the Start tab are built.
    On a Hugging Face Space (SPACE_ID set) a LoginButton offers HF OAuth instead of password auth.
    Each tab's handlers are for the role named here unless a handler says otherwise (ui.auth);
    every function of the app is then wrapped in its role check.
    """
    import gradio as gr

    from ui import arena, auth, home

    with gr.Blocks(title="ReasonRank Studio") as demo:
        if os.environ.get("SPACE_ID"):
            gr.LoginButton()
        with auth.handlers_for(demo, auth.PUBLIC):
            arena.build(engine)  # the first tab: rerankers side by side (its registry panel: admins)
            home.build()
        if engine is not None:
            from ui import agreement, data, evaluate, review, synth, train

            with auth.handlers_for(demo, auth.SIGNED_IN):
                review.build(engine)
            with auth.handlers_for(demo, auth.ADMIN):
                agreement.build(engine)
                synth.build(engine)
                data.build(engine)
                train.build(engine)
                evaluate.build(engine)
            _admin_tabs_for_admins(demo, engine)
    for block_fn in demo.fns.values():
        if getattr(block_fn, "rr_scope", None) == auth.SIGNED_IN and block_fn.concurrency_limit == "default":
            block_fn.concurrency_limit = REVIEW_CONCURRENCY
    auth.enforce(demo, engine)
    return demo


def _admin_tabs_for_admins(demo, engine) -> None:
    """Admin tabs and panels start hidden; the page load shows them to admins only."""
    import gradio as gr

    from ui import auth

    hidden = [
        block
        for block in demo.blocks.values()
        if (isinstance(block, gr.Tab) and block.id in ADMIN_TABS) or getattr(block, "elem_id", None) in ADMIN_PANELS
    ]
    for block in hidden:
        block.visible = False
    # the job panels' pollers: stopped on a non-admin's page (they would only be refused)
    timers = [block for block in demo.blocks.values() if isinstance(block, gr.Timer)]

    @auth.public
    def show():
        visible = auth.is_admin(engine, auth.current_request())
        return [gr.update(visible=visible) for _ in hidden] + [gr.Timer(active=visible) for _ in timers]

    demo.load(show, None, hidden + timers, api_visibility="private", show_progress="hidden")
