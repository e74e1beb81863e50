"""Data tab (admins only): import a file into the label store, write and download exports.

Each panel is a form over the CLI's config (ImportConfig, ExportConfig): it shows the exact
`reasonrank import|export …` command as the admin edits, and runs the same function the CLI
runs (reasonrank.cli.data.run_import / run_export), so the UI and the shell never disagree.
The role is checked on the server for every call (request.username → User.role): hiding the
tab would not stop an annotator from calling the API directly.
Gradio is imported at module level on purpose (handlers' gr.Request hints); this module is only
imported inside ui.build_app.
"""

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
from ui.form import form_int, form_text

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


def _words(text: str | None) -> list[str]:
    return [word.strip() for word in (text or "").split(",") if word.strip()]


def import_config(path, kind, dataset, run_depth, model, candidates, qrels) -> ImportConfig:
    """The form's ImportConfig; `path` and the file fields hold the uploads' server-side temp paths."""
    return ImportConfig(
        path=path or "",
        kind=kind or "auto",
        dataset=form_text(dataset),
        candidates=candidates or None,
        qrels=qrels or None,
        run_depth=form_int(run_depth),
        model=form_text(model),
    )


def export_config(fmt, name, datasets, statuses, min_consistency, agreed_only, overwrite) -> ExportConfig:
    """The form's ExportConfig; an empty min consistency means no consistency filter."""
    return ExportConfig(
        format=fmt or "sft",
        name=(name or "").strip(),
        datasets=_words(datasets),
        statuses=list(statuses or []),
        agreed_only=bool(agreed_only),
        overwrite=bool(overwrite),
        min_consistency=None if min_consistency in (None, "") else float(min_consistency),
    )


def export_table(engine: Engine) -> list[list]:
    """Past exports as Dataframe rows (EXPORT_COLUMNS), newest first."""
    return [
        [r.id, r.name, r.kind, r.count, r.sha256, r.path, r.created_by or "", r.created_at.isoformat(" ", "seconds")]
        for r in list_exports(engine)
    ]


def build(engine: Engine) -> None:
    def import_command(path, kind, dataset, run_depth, model, candidates, qrels) -> str:
        """The shell command equivalent to the import form, as it stands."""
        return config_to_command(import_config(path, kind, dataset, run_depth, model, candidates, qrels))

    def import_file(path, kind, dataset, run_depth, model, candidates, qrels, request: gr.Request):
        """Validate, then import; every issue is listed (path:line: field: message) and nothing written."""
        require_admin(engine, request)
        if not path:
            raise gr.Error("upload a file to import first")
        config = import_config(path, kind, dataset, run_depth, model, candidates, qrels)
        command = config_to_command(config)
        try:
            outcome = run_import(config, engine)
        except InputError as exc:
            raise gr.Error(str(exc)) from exc
        if outcome.issues:
            message = f"⚠️ {outcome.problems} in all; nothing was written."
            return command, message, "\n".join(outcome.issues), None
        summary = outcome.summary
        counts = {"datasets": summary.datasets, **{key: getattr(summary, key) for key in SUMMARY_FIELDS}}
        return command, "✅ " + describe_import(config, summary), "", counts

    def export_command(fmt, name, datasets, statuses, min_consistency, agreed_only, overwrite) -> str:
        """The shell command equivalent to the export form, as it stands."""
        try:
            return config_to_command(
                export_config(fmt, name, datasets, statuses, min_consistency, agreed_only, overwrite)
            )
        except ValueError as exc:
            return f"(not a valid form: {exc})"

    def write(fmt, name, datasets, statuses, min_consistency, agreed_only, overwrite, request: gr.Request):
        """Write the export; returns command, message, details (path, count, sha256), the file, past exports."""
        admin = require_admin(engine, request)
        config = export_config(fmt, name, datasets, statuses, min_consistency, agreed_only, overwrite)
        if not config.name:
            raise gr.Error("give the export a name")
        try:
            outcome = run_export(config, engine, created_by=admin)
        except (InputError, ValueError) as exc:
            raise gr.Error(str(exc)) from exc
        file = outcome.file
        # not "path": gradio_client would take a dict with a "path" key for a file to download
        details = {"written_to": str(file.path), "count": file.count, "sha256": file.sha256, "skipped": outcome.skipped}
        return (
            config_to_command(config),
            "✅ " + "\n\n".join(describe_export(config, outcome)),
            details,
            download_copy(file.path),
            export_table(engine),
        )

    def past_exports(request: gr.Request) -> list[list]:
        """Every recorded export, newest first."""
        require_admin(engine, request)
        return export_table(engine)

    with gr.Tab("Data", id="data"):
        gr.Markdown("Admins only. Each form shows the `reasonrank` command it runs.")
        with gr.Accordion("Import", open=True):
            with gr.Row():
                upload = gr.File(label="File to import", type="filepath", elem_id="rr-import-file")
                candidates = gr.File(label="Candidate file (trec-run)", type="filepath", elem_id="rr-import-cand")
                qrels = gr.File(label="Qrels file (optional)", type="filepath", elem_id="rr-import-qrels")
            with gr.Row():
                kind = gr.Dropdown(["auto", *KINDS], value="auto", label="Kind", elem_id="rr-import-kind")
                dataset = gr.Textbox(label="Dataset (default: the file name)", elem_id="rr-import-dataset")
                run_depth = gr.Number(
                    None, label="Run depth (trec-run)", precision=0, minimum=1, elem_id="rr-import-depth"
                )
                model = gr.Textbox(label="Model that wrote the labels", elem_id="rr-import-model")
            import_cmd = gr.Code(
                label="Equivalent command", language="shell", interactive=False, elem_id="rr-import-cmd"
            )
            import_btn = gr.Button("Validate and import", variant="primary", elem_id="rr-import")
            import_msg = gr.Markdown(elem_id="rr-import-msg")
            issues = gr.Textbox(
                label="Issues (path:line: field: message)", lines=8, interactive=False, elem_id="rr-import-issues"
            )
            summary = gr.JSON(label="Summary", elem_id="rr-import-summary")
        with gr.Accordion("Export", open=True):
            with gr.Row():
                fmt = gr.Dropdown(list(EXPORT_FORMATS), value="sft", label="Format", elem_id="rr-export-format")
                name = gr.Textbox(label="Name (file exports/NAME.jsonl)", elem_id="rr-export-name")
                datasets = gr.Textbox(label="Datasets (comma-separated; empty: all)", elem_id="rr-export-datasets")
            with gr.Row():
                statuses = gr.CheckboxGroup(
                    list(DECISIONS), value=list(DECISIONS), label="Decisions", elem_id="rr-export-statuses"
                )
                min_consistency = gr.Number(
                    None,
                    minimum=0,
                    maximum=1,
                    step=0.05,
                    label=f"Min self-consistency (empty: none; α = {ALPHA} is the paper's)",
                    elem_id="rr-export-min",
                )
                agreed_only = gr.Checkbox(False, label="Agreed only (no adjudicated items)", elem_id="rr-export-agreed")
                overwrite = gr.Checkbox(False, label="Overwrite an export of this name", elem_id="rr-export-overwrite")
            export_cmd = gr.Code(
                label="Equivalent command", language="shell", interactive=False, elem_id="rr-export-cmd"
            )
            export_btn = gr.Button("Write export", variant="primary", elem_id="rr-export")
            export_msg = gr.Markdown(elem_id="rr-export-msg")
            details = gr.JSON(label="Written", elem_id="rr-export-details")
            download = gr.File(label="Download", interactive=False, elem_id="rr-export-file")
            history = gr.Dataframe(
                headers=EXPORT_COLUMNS, label="Past exports", interactive=False, elem_id="rr-export-history"
            )
            refresh = gr.Button("Refresh past exports", elem_id="rr-export-refresh")

        import_inputs = [upload, kind, dataset, run_depth, model, candidates, qrels]
        gr.on(
            [field.change for field in import_inputs],
            import_command,
            import_inputs,
            import_cmd,
            api_name="import_command",
        )
        import_btn.click(import_file, import_inputs, [import_cmd, import_msg, issues, summary], api_name="import_file")
        export_inputs = [fmt, name, datasets, statuses, min_consistency, agreed_only, overwrite]
        gr.on(
            [field.change for field in export_inputs],
            export_command,
            export_inputs,
            export_cmd,
            api_name="export_command",
        )
        export_btn.click(
            write, export_inputs, [export_cmd, export_msg, details, download, history], api_name="write_export"
        )
        refresh.click(past_exports, None, history, api_name="past_exports")
