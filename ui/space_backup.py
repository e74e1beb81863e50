"""Backups panel (admins, on a Space): take a snapshot of the label store now, list them, restore
one, and push the newest snapshot or a written export to a private Hugging Face dataset repo.

A restore first snapshots the labels it replaces, so it can itself be undone by restoring that.

The Hub token is read from the secret named by REASONRANK_BACKUP_TOKEN_ENV (default HF_TOKEN)
when a push starts; it never appears in the page or the log. The repo defaults to
$REASONRANK_BACKUP_REPO.
"""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path

import gradio as gr
from gradio.context import Context
from sqlalchemy import Engine

from db.engine import data_dir
from db.snapshots import list_snapshots, push_to_hub, restore, take_snapshot
from reasonrank.io import InputError
from ui.auth import current_request, require_admin
from ui.render import md_text
from ui.space import snapshot_folder

KEEP_ON_DEMAND = 24


def snapshot_rows() -> list[list[str]]:
    return [[path.name, f"{path.stat().st_size / 1e6:.2f} MB"] for path in reversed(list_snapshots(snapshot_folder()))]


def push(engine: Engine, what: str, repo: str) -> str:
    """Push the newest snapshot ("snapshot") or the export file named `what`; returns the message."""
    if what == "newest snapshot":
        found = list_snapshots(snapshot_folder())
        if not found:
            raise InputError("no snapshot yet: take one first")
        path = found[-1]
    else:
        path = data_dir() / "exports" / Path(what).name
    token_env = os.environ.get("REASONRANK_BACKUP_TOKEN_ENV", "HF_TOKEN")
    token = os.environ.get(token_env)
    if not token:
        raise InputError(f"set the secret {token_env} to a Hub token with write access to {repo}")
    url = push_to_hub(path, (repo or "").strip(), token)
    return f"Pushed {path.name} to {repo}: {url}"


def snapshot_names() -> list[str]:
    return [path.name for path in reversed(list_snapshots(snapshot_folder()))]


def restore_named(engine: Engine, name: str | None, confirmed: bool) -> str:
    """Restore the snapshot called `name` (only a listed one: the name never becomes a path of
    its own) after snapshotting the labels it replaces; the message."""
    require_admin(engine, current_request())
    if not name:
        return "⚠️ choose a snapshot to restore"
    if not confirmed:
        return "⚠️ tick the box first: a restore replaces every label, review and user"
    chosen = {path.name: path for path in list_snapshots(snapshot_folder())}.get(name)
    if chosen is None:
        return f"⚠️ no snapshot named {md_text(name)}"
    try:
        # keep every snapshot (the scheduler prunes later): pruning now could drop `chosen`
        before = take_snapshot(engine, snapshot_folder(), keep=len(list_snapshots(snapshot_folder())) + 1)
        restore(chosen, engine)
    except InputError as exc:
        return f"⚠️ {exc}"
    return f"✓ Restored {chosen.name}; the labels it replaced are in {before.name}."


def restore_now(engine: Engine, outputs: dict, name: str | None, confirmed: bool) -> dict:
    message = restore_named(engine, name, confirmed)
    return {outputs["table"]: snapshot_rows(), outputs["choice"]: refreshed_choices(), outputs["message"]: message}


def listed() -> tuple[list[list[str]], dict]:
    """The snapshots table and the restore choices, for the admin's page load."""
    return snapshot_rows(), refreshed_choices()


def refreshed_choices() -> dict:
    return gr.update(choices=snapshot_names())


def build(engine: Engine) -> None:
    def snapshot_now(request: gr.Request):
        require_admin(engine, request)
        try:
            path = take_snapshot(engine, snapshot_folder(), keep=KEEP_ON_DEMAND)
        except InputError as exc:
            return gr.update(), f"⚠️ {exc}"
        return snapshot_rows(), f"✓ Snapshot {path.name} written."

    def push_now(what, repo, request: gr.Request):
        require_admin(engine, request)
        try:
            return f"✓ {push(engine, what, repo)}"
        except InputError as exc:
            return f"⚠️ {exc}"

    with gr.Tab("Backups", id="backups"):
        gr.Markdown(
            "Snapshots of the label store (SQLite online backup) are taken on a schedule into "
            "`<data>/snapshots`, the last N kept. Push one, or an export file, to a private Hub dataset, "
            "or restore one (the labels it replaces are snapshotted first)."
        )
        # filled by the admin-only page load: the page config is the same for every visitor
        table = gr.Dataframe(headers=["snapshot", "size"], interactive=False, elem_id="bk-table")
        snap_btn = gr.Button("Snapshot now", elem_id="bk-snapshot")
        with gr.Row():
            what = gr.Textbox("newest snapshot", label="What to push (or an export file name)", elem_id="bk-what")
            repo = gr.Textbox(
                os.environ.get("REASONRANK_BACKUP_REPO", ""),
                label="Private dataset repo (owner/name)",
                elem_id="bk-repo",
            )
        push_btn = gr.Button("Push to the Hub", elem_id="bk-push")
        with gr.Row():
            # any value reaches restore_named, which takes only a listed name (choices differ per session)
            choice = gr.Dropdown(
                [], value=None, label="Snapshot to restore", allow_custom_value=True, elem_id="bk-choice"
            )
            confirmed = gr.Checkbox(
                False, label="Replace the live labels with it (they are snapshotted first)", elem_id="bk-confirm"
            )
        restore_btn = gr.Button("Restore", variant="stop", elem_id="bk-restore")
        message = gr.Markdown(elem_id="bk-message")
    snap_btn.click(snapshot_now, None, [table, message], api_name="backup_snapshot").then(
        refreshed_choices, None, choice, api_visibility="private"
    )
    push_btn.click(push_now, [what, repo], [message], api_name="backup_push")
    Context.root_block.load(listed, None, [table, choice], api_visibility="private")
    outputs = {"table": table, "choice": choice, "message": message}
    restore_btn.click(
        partial(restore_now, engine, outputs), [choice, confirmed], [table, choice, message], api_name="backup_restore"
    )
