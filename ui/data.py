"""Data tab (admins only): import a file into the label store, write and download exports.

Each panel is a form over the CLI's config (ImportConfig, ExportConfig): it shows the exact
`reasonrank import|export …` command as the admin edits, and runs the same function the CLI
runs (reasonrank.cli.data.run_import / run_export), so the UI and the shell never disagree.
The role is checked on the server for every call (request.username → User.role): hiding the
tab would not stop an annotator from calling the API directly.

Layout: `import_panel` / `export_panel` build the components and return them by name; the
handlers are module-level functions of the form's values that return `{component: value}`.
Gradio is imported at module level on purpose (handlers' gr.Request hints); this module is only
imported inside ui.build_app.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import gradio as gr
from sqlalchemy import Engine

from db.exports import list_exports
from reasonrank.cli import config_to_command
from reasonrank.cli.data import (
    EXPORT_FORMATS,
    ExportConfig,
    ImportConfig,
    describe_export,
    describe_import,
    run_export,
    run_import,
)
from reasonrank.export import DECISIONS
from reasonrank.imports import ALPHA, KINDS
from reasonrank.io import InputError
from ui.auth import require_admin
from ui.downloads import download_copy
from ui.form import form_float, form_int, form_text, number_box
from ui.render import md_text

EXPORT_COLUMNS = ["id", "name", "format", "rows", "sha256", "path", "created by", "created at"]
SUMMARY_FIELDS = (
    "items_created",
    "items_updated",
    "items_unchanged",
    "labels_created",
    "labels_kept",
    "labels_unchanged",
    "passages_created",
    "queries_created",
    "qrels_unmatched",
)
RUN_DEPTH = "Run depth (trec-run; empty: every rank)"
MIN_CONSISTENCY = f"Min self-consistency (empty: no filter; α = {ALPHA} is the paper's)"


def _words(text: str | None) -> list[str]:
    return [word.strip() for word in (text or "").split(",") if word.strip()]


def upload_name(path: str | None) -> str | None:
    """The name the user gave an uploaded file (Gradio keeps it as the basename of its temp copy)."""
    return Path(path).name if path else None


@dataclass
class ImportForm:
    """The import panel's fields, in the order of the /import_file and /import_command inputs."""

    upload: gr.File
    kind: gr.Dropdown
    dataset: gr.Textbox
    run_depth: gr.Textbox
    model: gr.Textbox
    candidates: gr.File
    qrels: gr.File

    def inputs(self) -> list:
        return [self.upload, self.kind, self.dataset, self.run_depth, self.model, self.candidates, self.qrels]


@dataclass
class ImportPanel:
    form: ImportForm
    command: gr.Code
    button: gr.Button
    message: gr.Markdown
    issues: gr.Textbox
    summary: gr.JSON


@dataclass
class ExportForm:
    """The export panel's fields, in the order of the /write_export and /export_command inputs."""

    fmt: gr.Dropdown
    name: gr.Textbox
    datasets: gr.Textbox
    statuses: gr.CheckboxGroup
    min_consistency: gr.Textbox
    agreed_only: gr.Checkbox
    without_reasoning: gr.Checkbox
    overwrite: gr.Checkbox

    def inputs(self) -> list:
        return [
            self.fmt,
            self.name,
            self.datasets,
            self.statuses,
            self.min_consistency,
            self.agreed_only,
            self.without_reasoning,
            self.overwrite,
        ]


@dataclass
class ExportPanel:
    form: ExportForm
    command: gr.Code
    button: gr.Button
    message: gr.Markdown
    details: gr.JSON
    download: gr.File
    history: gr.Dataframe
    refresh: gr.Button


def import_config(path, kind, dataset, run_depth, model, candidates, qrels) -> ImportConfig:
    """The form's ImportConfig; `path` and the file fields hold the uploads' server-side temp paths."""
    return ImportConfig(
        path=path or "",
        kind=kind or "auto",
        dataset=form_text(dataset),
        candidates=candidates or None,
        qrels=qrels or None,
        run_depth=form_int(run_depth, RUN_DEPTH, minimum=1),
        model=form_text(model),
    )


def shown_import_command(config: ImportConfig) -> str:
    """The command as the admin would type it: uploads by the names they gave them."""
    return config_to_command(
        ImportConfig(
            **{
                **config.__dict__,
                "path": upload_name(config.path) or "",
                "candidates": upload_name(config.candidates),
                "qrels": upload_name(config.qrels),
            }
        )
    )


def export_config(
    fmt, name, datasets, statuses, min_consistency, agreed_only, without_reasoning, overwrite
) -> ExportConfig:
    """The form's ExportConfig; an empty min consistency means no consistency filter."""
    return ExportConfig(
        format=fmt or "sft",
        name=(name or "").strip(),
        datasets=_words(datasets),
        statuses=list(statuses or []),
        agreed_only=bool(agreed_only),
        allow_empty_reasoning=bool(without_reasoning),
        overwrite=bool(overwrite),
        min_consistency=form_float(min_consistency, MIN_CONSISTENCY, minimum=0.0, maximum=1.0),
    )


def export_table(engine: Engine) -> list[list]:
    """Past exports as Dataframe rows (EXPORT_COLUMNS), newest first."""
    return [
        [r.id, r.name, r.kind, r.count, r.sha256, r.path, r.created_by or "", r.created_at.isoformat(" ", "seconds")]
        for r in list_exports(engine)
    ]


def import_command(path, kind, dataset, run_depth, model, candidates, qrels) -> str:
    """The shell command equivalent to the import form, as it stands."""
    try:
        return shown_import_command(import_config(path, kind, dataset, run_depth, model, candidates, qrels))
    except InputError as exc:
        return f"# not a valid form: {exc}"


def import_file(engine: Engine, panel: ImportPanel, values: list, request) -> dict:
    """Validate, then import; every issue is listed (file:line: field: message, the file named as
    the admin named it) and nothing is written."""
    require_admin(engine, request)
    path, *_, candidates, qrels = values
    if not path:
        return _refusal(panel.message, "upload a file to import first")
    try:
        config = import_config(*values)
        outcome = run_import(config, engine)
    except InputError as exc:
        return _refusal(panel.message, _user_names(str(exc), path, candidates, qrels))
    command = shown_import_command(config)
    if outcome.issues:
        issues = [_user_names(issue, path, candidates, qrels) for issue in outcome.issues]
        return {
            panel.command: command,
            panel.message: f"⚠️ {outcome.problems} in {upload_name(path)}; nothing was written.",
            panel.issues: "\n".join(issues),
            panel.summary: None,
        }
    summary = outcome.summary
    counts = {"datasets": summary.datasets, **{key: getattr(summary, key) for key in SUMMARY_FIELDS}}
    message = describe_import(config, summary).replace(str(path), upload_name(path))
    return {panel.command: command, panel.message: "✓ " + message, panel.issues: "", panel.summary: counts}


def _refusal(message: gr.Markdown, reason: str) -> dict:
    """A form that cannot run says why in its message and leaves every other output as it was
    (a raised gr.Error would also mark each output of the event with an "Error" badge)."""
    return {message: f"⚠️ {md_text(reason)}"}


def _user_names(text: str, *paths: str | None) -> str:
    """`text` with each upload's temp path replaced by the file's own name."""
    for path in paths:
        if path:
            text = text.replace(str(path), upload_name(path))
    return text


def export_command(*values) -> str:
    """The shell command equivalent to the export form, as it stands (NAME until one is given)."""
    try:
        config = export_config(*values)
        return config_to_command(config if config.name else replace(config, name="NAME"))
    except (InputError, ValueError) as exc:
        return f"# not a valid form: {exc}"


def write_export(engine: Engine, panel: ExportPanel, values: list, request) -> dict:
    """Write the export: the command, what was written and what was left out (and why), the file
    to download and the past exports."""
    admin = require_admin(engine, request)
    try:
        config = export_config(*values)
        if not config.name:
            raise InputError("give the export a name")
        outcome = run_export(config, engine, created_by=admin)
    except (InputError, ValueError) as exc:
        return _refusal(panel.message, str(exc))
    file = outcome.file
    # not "path": gradio_client would take a dict with a "path" key for a file to download
    details = {"written_to": str(file.path), "count": file.count, "sha256": file.sha256, "skipped": outcome.skipped}
    return {
        panel.command: config_to_command(config),
        panel.message: "✓ " + "\n\n".join(describe_export(config, outcome)),
        panel.details: details,
        panel.download: download_copy(file.path),
        panel.history: export_table(engine),
    }


def import_panel() -> ImportPanel:
    with gr.Accordion("Import", open=True):
        with gr.Row():
            upload = gr.File(label="File to import", type="filepath", elem_id="rr-import-file")
            candidates = gr.File(label="Candidate file (trec-run)", type="filepath", elem_id="rr-import-cand")
            qrels = gr.File(label="Qrels file (optional)", type="filepath", elem_id="rr-import-qrels")
        with gr.Row():
            kind = gr.Dropdown(["auto", *KINDS], value="auto", label="Kind", elem_id="rr-import-kind")
            dataset = gr.Textbox(label="Dataset (default: the file name)", elem_id="rr-import-dataset")
            run_depth = number_box(RUN_DEPTH, elem_id="rr-import-depth", placeholder="every rank")
            model = gr.Textbox(label="Model that wrote the labels", elem_id="rr-import-model")
        form = ImportForm(upload, kind, dataset, run_depth, model, candidates, qrels)
        command = gr.Code(
            "reasonrank import FILE",
            label="Equivalent command",
            language="shell",
            interactive=False,
            elem_id="rr-import-cmd",
        )
        button = gr.Button("Validate and import", variant="primary", elem_id="rr-import")
        message = gr.Markdown(elem_id="rr-import-msg")
        issues = gr.Textbox(
            label="Issues (file:line: field: message)", lines=8, interactive=False, elem_id="rr-import-issues"
        )
        summary = gr.JSON(label="Summary", elem_id="rr-import-summary")
    return ImportPanel(form, command, button, message, issues, summary)


def export_panel() -> ExportPanel:
    with gr.Accordion("Export", open=True):
        with gr.Row():
            fmt = gr.Dropdown(list(EXPORT_FORMATS), value="sft", label="Format", elem_id="rr-export-format")
            name = gr.Textbox(label="Name (file exports/NAME.jsonl)", elem_id="rr-export-name")
            datasets = gr.Textbox(label="Datasets (comma-separated; empty: all)", elem_id="rr-export-datasets")
        with gr.Row():
            statuses = gr.CheckboxGroup(
                list(DECISIONS), value=list(DECISIONS), label="Decisions", elem_id="rr-export-statuses"
            )
            min_consistency = number_box(MIN_CONSISTENCY, elem_id="rr-export-min", placeholder="no filter")
        with gr.Row():
            agreed_only = gr.Checkbox(False, label="Agreed only (no adjudicated items)", elem_id="rr-export-agreed")
            without_reasoning = gr.Checkbox(
                False,
                label="SFT/alpaca: include items without reasoning (empty <think> block)",
                elem_id="rr-export-no-reasoning",
            )
            overwrite = gr.Checkbox(False, label="Overwrite an export of this name", elem_id="rr-export-overwrite")
        form = ExportForm(fmt, name, datasets, statuses, min_consistency, agreed_only, without_reasoning, overwrite)
        initial = export_command(*(field.value for field in form.inputs()))
        command = gr.Code(
            initial, label="Equivalent command", language="shell", interactive=False, elem_id="rr-export-cmd"
        )
        button = gr.Button("Write export", variant="primary", elem_id="rr-export")
        message = gr.Markdown(elem_id="rr-export-msg")
        details = gr.JSON(label="Written", elem_id="rr-export-details")
        download = gr.File(label="Download", interactive=False, elem_id="rr-export-file")
        history = gr.Dataframe(
            headers=EXPORT_COLUMNS, label="Past exports", interactive=False, elem_id="rr-export-history"
        )
        refresh = gr.Button("Refresh past exports", elem_id="rr-export-refresh")
    return ExportPanel(form, command, button, message, details, download, history, refresh)


#: output order of /import_file and /write_export (what an API caller receives, by name)
IMPORT_OUTPUTS = ("command", "message", "issues", "summary")
EXPORT_OUTPUTS = ("command", "message", "details", "download", "history")


def build(engine: Engine) -> None:
    def on_import(path, kind, dataset, run_depth, model, candidates, qrels, request: gr.Request):
        return import_file(engine, imports, [path, kind, dataset, run_depth, model, candidates, qrels], request)

    def on_export(
        fmt, name, datasets, statuses, min_consistency, agreed_only, without_reasoning, overwrite, request: gr.Request
    ):
        values = [fmt, name, datasets, statuses, min_consistency, agreed_only, without_reasoning, overwrite]
        return write_export(engine, exports, values, request)

    def past_exports(request: gr.Request) -> list[list]:
        """Every recorded export, newest first."""
        require_admin(engine, request)
        return export_table(engine)

    with gr.Tab("Data", id="data"):
        gr.Markdown("Admins only. Each form shows the `reasonrank` command it runs.")
        imports = import_panel()
        exports = export_panel()

    import_inputs = imports.form.inputs()
    gr.on(
        [field.change for field in import_inputs],
        import_command,
        import_inputs,
        imports.command,
        api_name="import_command",
    )
    imports.button.click(
        on_import, import_inputs, [getattr(imports, name) for name in IMPORT_OUTPUTS], api_name="import_file"
    )
    export_inputs = exports.form.inputs()
    gr.on(
        [field.change for field in export_inputs],
        export_command,
        export_inputs,
        exports.command,
        api_name="export_command",
    )
    exports.button.click(
        on_export, export_inputs, [getattr(exports, name) for name in EXPORT_OUTPUTS], api_name="write_export"
    )
    exports.refresh.click(past_exports, None, exports.history, api_name="past_exports")
