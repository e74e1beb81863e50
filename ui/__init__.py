"""The Gradio app, one module per tab; `build_app` assembles them (app.py launches it)."""

from __future__ import annotations

import os

from ui.theme import OFFLINE_THEME

#: Options for every `launch` of the app (app.py, benches, tests). Gradio's run history is off: it
#: copies each run's inputs and outputs into the browser's localStorage (up to 100 runs) and
#: re-serialises that list on every click, which delays every Arena click (docs/benchmarks.md,
#: "Arena overhead") more as the list grows; and reviewers' passages, labels and model
#: reasoning should not pile up in browser storage. The app keeps its own record (jobs, eval runs).
LAUNCH_OPTIONS = {"run_history": False, "theme": OFFLINE_THEME}  # OFFLINE_THEME: system fonts, no web fonts

#: Tabs only admins can use: hidden until the page learns the user is an admin (their handlers
#: refuse anyone else on the server in any case, see ui.auth).
ADMIN_TABS = ("agreement", "synth", "data", "train", "eval", "backups")
ADMIN_PANELS = ("reg-panel",)  # the Arena's registry panel (adding and removing rerankers)
#: Tabs for signed-in users: hidden from anonymous visitors (only possible on a Space, where the
#: app runs without password auth).
SIGNED_IN_TABS = ("review",)

# Review handlers run outside Gradio's queue: they only touch the database for milliseconds
# (SQLite WAL readers never wait; in-process writers queue on a lock, then BEGIN IMMEDIATE), so
# the queue's join-then-stream round trips and its per-event concurrency limit (1 by default,
# which put every annotator behind one another) cost more than the work itself
# (docs/benchmarks.md#review-through-the-app-under-load). They then run in the server's worker
# threads like any HTTP handler. Model-bound handlers stay queued with small limits (the Arena's
# run: 4).


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
            from ui import agreement, data, evaluate, leaderboard, review, synth, train

            with auth.handlers_for(demo, auth.SIGNED_IN):
                review.build(engine)
            with auth.handlers_for(demo, auth.ADMIN):
                agreement.build(engine)
                synth.build(engine)
                data.build(engine)
                train.build(engine)
                evaluate.build(engine)
                if os.environ.get("SPACE_ID"):
                    from ui import space_backup

                    space_backup.build(engine)  # snapshots and pushes to a private Hub dataset
            with auth.handlers_for(demo, auth.PUBLIC):
                leaderboard.build(engine)  # read-only, for everyone (a Space's anonymous visitors too)
            _admin_tabs_for_admins(demo, engine)
    for block_fn in demo.fns.values():
        if getattr(block_fn, "rr_scope", None) == auth.SIGNED_IN:
            block_fn.queue = False
    # Queued functions are reachable only through the queue, so its concurrency limits hold for
    # raw HTTP callers too (Gradio opens the direct /run route to every function off Spaces).
    demo.api_open = False
    auth.enforce(demo, engine)
    return demo


def _admin_tabs_for_admins(demo, engine) -> None:
    """Admin tabs and panels start hidden, and so do signed-in tabs; the page load shows each
    to the users who may use it."""
    import gradio as gr

    from reasonrank.io import InputError
    from ui import auth

    def tab_or_panel(block, tabs, panels=()) -> bool:
        return (isinstance(block, gr.Tab) and block.id in tabs) or getattr(block, "elem_id", None) in panels

    admin = [block for block in demo.blocks.values() if tab_or_panel(block, ADMIN_TABS, ADMIN_PANELS)]
    signed_in = [block for block in demo.blocks.values() if tab_or_panel(block, SIGNED_IN_TABS)]
    for block in admin + signed_in:
        block.visible = False
    # the job panels' pollers: stopped on a non-admin's page (they would only be refused)
    timers = [block for block in demo.blocks.values() if isinstance(block, gr.Timer)]

    @auth.public
    def show():
        request = auth.current_request()
        is_admin = auth.is_admin(engine, request)
        try:
            has_user = bool(auth.reviewer(request))
        except InputError:
            has_user = False
        return (
            [gr.update(visible=is_admin) for _ in admin]
            + [gr.update(visible=has_user) for _ in signed_in]
            + [gr.Timer(active=is_admin) for _ in timers]
        )

    demo.load(show, None, admin + signed_in + timers, api_visibility="private", show_progress="hidden")
