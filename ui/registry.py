"""The reranker registry panel: list, add and remove the named rerankers the Arena offers.

The two baselines, "BM25" and "stored labels", and the bundled recordings (db/sample/recorded,
replayed with no model) are not rows: they are always offered, so their names are reserved.
Options are the backend's BackendConfig fields, one form field each (base URL, key variable,
device, adapter, dtype); they are checked when a reranker is added, so a typo shows up in this
panel rather than as a failed Arena column later. Keys are never typed here: the db layer refuses
an `api_key` option, only the name of the environment variable that holds one is kept, and an
entry whose variable is unset in the app's environment carries a warning.
Adding and removing are for admins (a registered endpoint is called by everyone's Arena runs).
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass

import gradio as gr
from gradio.context import Context
from sqlalchemy import Engine

from db.registry import add_reranker, list_rerankers, remove_reranker, reranker_spec
from db.seed import SAMPLE
from reasonrank.arena_specs import BM25, LABELS, RECORDED, RerankerSpec
from reasonrank.backends import BACKEND_KINDS
from reasonrank.backends.base import BackendConfig
from reasonrank.declared import declared_specs
from reasonrank.io import InputError
from reasonrank.replay import find_recordings, load_recording
from ui.auth import admin_only, require_admin

BUILTINS = {"BM25": RerankerSpec("BM25", BM25), "stored labels": RerankerSpec("stored labels", LABELS)}
RECORDINGS = SAMPLE / "recorded"
COLUMNS = ["name", "backend", "model", "options", "source", "warning"]
DEFAULTS = BackendConfig()


@dataclass(frozen=True)
class OptionsForm:
    """The registry form's option fields; empty means the BackendConfig default."""

    base_url: str = ""
    api_key_env: str = ""
    device: str = ""
    adapter: str = ""
    dtype: str = ""

    def options(self) -> dict:
        """Only the fields a person filled in, as BackendConfig options."""
        return {key: value.strip() for key, value in vars(self).items() if (value or "").strip()}


@functools.lru_cache(maxsize=8)
def _recording_heads(root: str) -> tuple[tuple[str, str, str], ...]:
    """(name, directory, dataset) of each bundled recording, read once per app (they ship with it)."""
    heads = []
    for directory in find_recordings(root):
        recording = load_recording(directory)
        heads.append((recording.name, str(directory), recording.dataset))
    return tuple(heads)


def recorded_specs(root=RECORDINGS) -> dict[str, RerankerSpec]:
    """The bundled recordings as Arena rerankers (replayed at their recorded pace by default)."""
    return {
        name: RerankerSpec(name, RECORDED, directory, {"pace": "recorded"})
        for name, directory, _ in _recording_heads(str(root))
    }


def recording_dataset(spec: RerankerSpec) -> str | None:
    """The dataset a recorded reranker can replay on (None for every other kind)."""
    if spec.backend != RECORDED:
        return None
    known = {directory: dataset for _, directory, dataset in _recording_heads(str(RECORDINGS))}
    return known[spec.model] if spec.model in known else load_recording(spec.model).dataset


def available_specs(engine: Engine | None) -> dict[str, RerankerSpec]:
    """Every reranker the Arena can run, by name: the builtins and recordings, then the registry's rows.

    Without a label store there is neither a registry nor stored labels: BM25 and the recordings.
    """
    declared = {spec.name: spec for spec in declared_specs() if spec.name not in BUILTINS}  # reasonrank.declared
    if engine is None:
        return {"BM25": BUILTINS["BM25"], **recorded_specs(), **declared}
    specs = {**BUILTINS, **recorded_specs(), **declared}
    for row in list_rerankers(engine):
        specs.setdefault(row.name, reranker_spec(row))
    return specs


def key_warning(spec: RerankerSpec) -> str:
    """A warning when an openai reranker's key variable is not set where the app runs, else ""."""
    if spec.backend != "openai":
        return ""
    variable = spec.options.get("api_key_env") or DEFAULTS.api_key_env
    if os.environ.get(variable):
        return ""
    return f"{variable} is not set where the app runs: calls carry no key"


def table_rows(engine: Engine) -> list[list[str]]:
    rows = []
    for row in list_rerankers(engine):
        warning = key_warning(reranker_spec(row))
        rows.append([row.name, row.backend, row.model, json.dumps(row.options, sort_keys=True), row.source, warning])
    return rows


def register(engine: Engine, name: str, backend: str, model: str, form: OptionsForm) -> str:
    """Check and store one reranker; returns the message to show (with a key warning if any)."""
    name = (name or "").strip()
    if name in BUILTINS or name in recorded_specs():
        raise InputError(f"{name!r} is a builtin reranker; choose another name")
    options = form.options()
    if backend not in BACKEND_KINDS:
        raise InputError(f"backend must be one of {', '.join(BACKEND_KINDS)}")
    spec = RerankerSpec(name, backend, (model or "").strip(), options)
    spec.backend_config()  # refuses unknown options
    add_reranker(engine, name, backend, spec.model, options)
    warning = key_warning(spec)
    return f"Added {name} ({backend})." + (f" Warning: {warning}." if warning else "")


def build(engine: Engine) -> list:
    """The panel; returns its add/remove events so the Arena can refresh its picker after them."""

    @admin_only
    def add(name, backend, model, base_url, api_key_env, device, adapter, dtype, request: gr.Request):
        require_admin(engine, request)
        try:
            form = OptionsForm(base_url or "", api_key_env or "", device or "", adapter or "", dtype or "")
            message = register(engine, name, backend, model, form)
        except InputError as exc:
            return gr.update(), f"⚠️ {exc}"
        return table_rows(engine), f"✓ {message}"

    @admin_only
    def remove(name, request: gr.Request):
        require_admin(engine, request)
        try:
            remove_reranker(engine, (name or "").strip())
        except InputError as exc:
            return gr.update(), f"⚠️ {exc}"
        return table_rows(engine), f"✓ Removed {name}."

    with gr.Accordion("Rerankers (registry)", open=False, elem_id="reg-panel"):
        gr.Markdown(
            "Always offered: **BM25** (lexical scores over the shown passages), **stored labels** "
            "(the label store's ranking of the query) and the bundled **recorded** runs (real model "
            "outputs replayed without a model). Admins add model rerankers here; empty fields keep "
            "the backend's defaults."
        )
        table = gr.Dataframe(None, headers=COLUMNS, interactive=False, elem_id="reg-table")
        with gr.Row():
            name = gr.Textbox(label="Name", elem_id="reg-name")
            backend = gr.Dropdown(list(BACKEND_KINDS), value="openai", label="Backend", elem_id="reg-backend")
            model = gr.Textbox(label="Model (served id, path or hub id)", elem_id="reg-model")
        with gr.Row():
            base_url = gr.Textbox(
                label="Base URL (openai)", placeholder="http://127.0.0.1:8000/v1", elem_id="reg-base-url"
            )
            api_key_env = gr.Textbox(
                label="Key variable (openai)", placeholder=DEFAULTS.api_key_env, elem_id="reg-key-env"
            )
            device = gr.Textbox(label="Device (local)", placeholder="auto: cuda if present", elem_id="reg-device")
            adapter = gr.Textbox(label="LoRA adapter dir (local)", elem_id="reg-adapter")
            dtype = gr.Textbox(label="dtype (local)", placeholder=DEFAULTS.dtype, elem_id="reg-dtype")
        with gr.Row():
            add_btn = gr.Button("Add reranker", elem_id="reg-add")
            remove_btn = gr.Button("Remove by name", variant="stop", elem_id="reg-remove")
        message = gr.Markdown(elem_id="reg-message")
    # rows others added since the app started show on the next page load
    Context.root_block.load(admin_only(lambda: table_rows(engine)), None, [table], api_visibility="private")
    added = add_btn.click(
        add,
        [name, backend, model, base_url, api_key_env, device, adapter, dtype],
        [table, message],
        api_name="add_reranker",
    )
    removed = remove_btn.click(remove, [name], [table, message], api_name="remove_reranker")
    return [added, removed]
