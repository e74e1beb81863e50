"""Backups panel (admins, on a Space): take a snapshot of the label store now, list them, and push
the newest snapshot or a written export to a private Hugging Face dataset repo.

The Hub token is read from the secret named by REASONRANK_BACKUP_TOKEN_ENV (default HF_TOKEN)
when a push starts; it never appears in the page or the log. The repo defaults to
$REASONRANK_BACKUP_REPO.
"""

from __future__ import annotations

import os
from pathlib import Path

import gradio as gr
from sqlalchemy import Engine

from db.engine import data_dir
from db.snapshots import list_snapshots, push_to_hub, take_snapshot
from reasonrank.io import InputError
from ui.auth import require_admin
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
            "`<data>/snapshots`, the last N kept. Push one, or an export file, to a private Hub dataset."
        )
        table = gr.Dataframe(snapshot_rows(), headers=["snapshot", "size"], interactive=False, elem_id="bk-table")
        snap_btn = gr.Button("Snapshot now", elem_id="bk-snapshot")
        with gr.Row():
            what = gr.Textbox("newest snapshot", label="What to push (or an export file name)", elem_id="bk-what")
            repo = gr.Textbox(
                os.environ.get("REASONRANK_BACKUP_REPO", ""),
                label="Private dataset repo (owner/name)",
                elem_id="bk-repo",
            )
        push_btn = gr.Button("Push to the Hub", elem_id="bk-push")
        message = gr.Markdown(elem_id="bk-message")
    snap_btn.click(snapshot_now, None, [table, message], api_name="backup_snapshot")
    push_btn.click(push_now, [what, repo], [message], api_name="backup_push")
