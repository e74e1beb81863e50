"""The reranker registry panel: list, add and remove the named rerankers the Arena offers.

The two baselines, "BM25" and "stored labels", are not rows: they are always offered, so their
names are reserved. Options are the backend's BackendConfig fields as JSON (base_url,
api_key_env, adapter, device, …); they are checked when a reranker is added, so a typo shows up
in this panel rather than as a failed Arena column later. Keys are never typed here: the db layer
refuses an `api_key` option, only the name of the environment variable that holds one is kept.
Adding and removing are for admins (a registered endpoint is called by everyone's Arena runs).
"""

from __future__ import annotations

import json

import gradio as gr
from gradio.context import Context
from sqlalchemy import Engine

from db.registry import add_reranker, list_rerankers, remove_reranker, reranker_spec
from reasonrank.arena import BM25, LABELS, RerankerSpec
from reasonrank.backends import BACKEND_KINDS
from reasonrank.declared import declared_specs
from reasonrank.io import InputError
from ui.data import require_admin

BUILTINS = {"BM25": RerankerSpec("BM25", BM25), "stored labels": RerankerSpec("stored labels", LABELS)}
COLUMNS = ["name", "backend", "model", "options", "source"]
OPTIONS_HINT = '{"base_url": "http://127.0.0.1:8000/v1", "api_key_env": "OPENAI_API_KEY"}'


def available_specs(engine: Engine | None) -> dict[str, RerankerSpec]:
    """Every reranker the Arena can run, by name: the builtins first, then the registry's rows.

    Without a label store there is neither a registry nor stored labels: only BM25 is left.
    """
    declared = {spec.name: spec for spec in declared_specs() if spec.name not in BUILTINS}  # reasonrank.declared
    if engine is None:
        return {"BM25": BUILTINS["BM25"], **declared}
    specs = {**BUILTINS, **declared}
    for row in list_rerankers(engine):
        specs.setdefault(row.name, reranker_spec(row))
    return specs


def table_rows(engine: Engine) -> list[list[str]]:
    return [
        [row.name, row.backend, row.model, json.dumps(row.options, sort_keys=True), row.source]
        for row in list_rerankers(engine)
    ]


def parse_options(text: str) -> dict:
    """The options box: a JSON object, or nothing."""
    if not (text or "").strip():
        return {}
    try:
        options = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"options must be a JSON object: {exc.msg} at column {exc.colno}") from None
    if not isinstance(options, dict):
        raise InputError("options must be a JSON object such as " + OPTIONS_HINT)
    return options


def register(engine: Engine, name: str, backend: str, model: str, options_text: str) -> str:
    """Check and store one reranker; returns the message to show."""
    name = (name or "").strip()
    if name in BUILTINS:
        raise InputError(f"{name!r} is a builtin reranker; choose another name")
    options = parse_options(options_text)
    if backend not in BACKEND_KINDS:
        raise InputError(f"backend must be one of {', '.join(BACKEND_KINDS)}")
    RerankerSpec(name, backend, (model or "").strip(), options).backend_config()  # refuses unknown options
    add_reranker(engine, name, backend, (model or "").strip(), options)
    return f"Added {name} ({backend})."


def build(engine: Engine) -> list:
    """The panel; returns its add/remove events so the Arena can refresh its picker after them."""

    def add(name, backend, model, options_text, request: gr.Request):
        require_admin(engine, request)
        try:
            message = register(engine, name, backend, model, options_text)
        except InputError as exc:
            return gr.update(), f"⚠️ {exc}"
        return table_rows(engine), f"✅ {message}"

    def remove(name, request: gr.Request):
        require_admin(engine, request)
        try:
            remove_reranker(engine, (name or "").strip())
        except InputError as exc:
            return gr.update(), f"⚠️ {exc}"
        return table_rows(engine), f"✅ Removed {name}."

    with gr.Accordion("Rerankers (registry)", open=False, elem_id="reg-panel"):
        gr.Markdown(
            "Always offered: **BM25** (lexical scores over the shown passages) and **stored labels** "
            "(the label store's ranking of the query). Admins add model rerankers here."
        )
        table = gr.Dataframe(table_rows(engine), headers=COLUMNS, interactive=False, elem_id="reg-table")
        with gr.Row():
            name = gr.Textbox(label="Name", elem_id="reg-name")
            backend = gr.Dropdown(list(BACKEND_KINDS), value="openai", label="Backend", elem_id="reg-backend")
            model = gr.Textbox(label="Model (served id, path or hub id)", elem_id="reg-model")
        options = gr.Textbox(label="Options (JSON)", placeholder=OPTIONS_HINT, elem_id="reg-options")
        with gr.Row():
            add_btn = gr.Button("Add reranker", elem_id="reg-add")
            remove_btn = gr.Button("Remove by name", variant="stop", elem_id="reg-remove")
        message = gr.Markdown(elem_id="reg-message")
    # rows others added since the app started show on the next page load
    Context.root_block.load(lambda: table_rows(engine), None, [table], api_visibility="private")
    added = add_btn.click(add, [name, backend, model, options], [table, message], api_name="add_reranker")
    removed = remove_btn.click(remove, [name], [table, message], api_name="remove_reranker")
    return [added, removed]
