"""Train tab (admins only, checked on the server): fine-tune a reranker from an export, watch it,
find the registered model, and debug the GRPO reward.

The form is a view over `reasonrank train`'s config: stage, preset, export, base model and an
editable YAML of the hyperparameters the preset starts from. Only the values that differ from the
preset become flags, so the command shown (and run as a Job) is the shortest exact one. The job
panel (ui.jobs) draws loss, learning-rate and reward-term curves from the run's metrics events.

Gradio is imported at module level on purpose (handlers' gr.Request hints); this module is only
imported inside ui.build_app.
"""
from __future__ import annotations

import dataclasses
import html
import time
from typing import Any

import gradio as gr
import pandas as pd
from sqlalchemy import Engine

from db.engine import data_dir
from db.exports import list_exports
from db.jobs import refresh_job
from reasonrank.cli import config_to_command
from reasonrank.cli.train import EXPORT_PREFIX, RunOverrides, TrainConfig
from reasonrank.io import InputError
from reasonrank.train.config import PRESETS, STAGES, apply_values, default_run_config
from reasonrank.train.data import load_rows
from reasonrank.train.debugger import debug_completion, group_advantages
from ui.data import require_admin
from ui.jobs import job_panel, launch

#: the curves the panel draws (metrics event names, see reasonrank.train.callbacks)
CURVES = ("loss", "lr", "grad_norm", "reward", "reward_ranking_reward", "reward_format_reward", "reward_ndcg10",
          "reward_recall10", "reward_rbo")
#: fields with their own widget, left out of the hyperparameter YAML
FORM_FIELDS = ("model", "data", "output_dir", "preset", "resume")
EXPORT_KINDS = {"sft": ("sft", "alpaca"), "grpo": ("rl",)}
DEBUG_COLUMNS = ["#", "reward", "advantage", "format_ok", "count_ok", "ndcg10", "recall10", "rbo", "format_score",
                 "parsed order"]
COMPLETION_SEPARATOR = "\n---\n"


def hyperparameters_yaml(stage: str, preset: str | None) -> str:
    """The preset's values of every field the YAML editor holds."""
    import yaml

    values = dataclasses.asdict(default_run_config(stage, preset or None))
    return yaml.safe_dump({k: v for k, v in values.items() if k not in FORM_FIELDS}, sort_keys=False)


def _edited_values(text: str) -> dict[str, Any]:
    import yaml

    try:
        values = yaml.safe_load(text or "") or {}
    except yaml.YAMLError as exc:
        raise InputError(f"hyperparameters: not valid YAML ({' '.join(str(exc).split())})") from None
    if not isinstance(values, dict):
        raise InputError("hyperparameters: expected field: value lines")
    shadowed = sorted(set(values) & set(FORM_FIELDS))
    if shadowed:
        raise InputError(f"hyperparameters: set {', '.join(shadowed)} with the form fields above")
    return values


def default_output_dir() -> str:
    return str(data_dir() / "runs" / time.strftime("run-%Y%m%d-%H%M%S"))


def export_choices(engine: Engine, stage: str) -> list[tuple[str, str]]:
    """Recorded exports this stage can train on, newest first, as (label, id)."""
    return [(f"#{e.id} {e.name} ({e.kind}, {e.count} rows)", str(e.id))
            for e in list_exports(engine) if e.kind in EXPORT_KINDS.get(stage, ())]


def train_config(stage: str, preset: str | None, export_id: str | None, data_path: str | None, model: str | None,
                 output_dir: str | None, hyperparameters: str, resume: bool, register_as: str | None) -> TrainConfig:
    """The form as a TrainConfig: only hyperparameters that differ from the preset become flags."""
    baseline = default_run_config(stage, preset or None)
    edited = apply_values(baseline, _edited_values(hyperparameters), "hyperparameters")
    changed = {f.name: getattr(edited, f.name) for f in dataclasses.fields(edited)
               if f.name not in FORM_FIELDS and getattr(edited, f.name) != getattr(baseline, f.name)}
    data = f"{EXPORT_PREFIX}{export_id}" if export_id else (data_path or "").strip()
    run = RunOverrides(preset=preset or None, model=(model or "").strip() or None, data=data or None,
                       output_dir=(output_dir or "").strip() or None, resume=True if resume else None, **changed)
    return TrainConfig(stage=stage, run=run, register_as=(register_as or "").strip() or None)


def render_model(engine: Engine, job_id: int | None) -> str:
    """The model a finished job registered, with its lineage export → job → model."""
    if job_id is None:
        return ""
    try:
        view = refresh_job(engine, int(job_id))
    except LookupError:
        return ""
    outputs = view.outputs or {}
    if "reranker_name" not in outputs:
        return "" if not view.finished else f"Job {view.id} registered no model ({view.status})."
    lineage = outputs.get("lineage") or {}
    export = f"export #{lineage['export_id']}" if lineage.get("export_id") is not None else "a JSONL file"
    where = html.escape(str(outputs.get("model_dir", "")))
    return (f"**Registered model:** `{html.escape(outputs['reranker_name'])}` (reranker id {outputs['reranker_id']},"
            f" {'LoRA adapter' if outputs.get('adapter') else 'full model'} in `{where}`)\n\n"
            f"**Lineage:** {export} → job #{view.id} ({outputs.get('stage')}, {outputs.get('steps')} steps) → "
            f"reranker `{html.escape(outputs['reranker_name'])}`")


def debug_frame(texts: list[str], row: dict, format_weight: float) -> tuple[pd.DataFrame, dict]:
    """The reward debugger's table (one line per completion) and its raw figures; advantages
    only for a group (two or more completions)."""
    reports = [debug_completion(text, row, format_weight) for text in texts]
    rewards = [report.reward for report in reports]
    advantages = group_advantages(rewards)[2] if len(reports) > 1 else [None]
    rows = []
    for index, (report, advantage) in enumerate(zip(reports, advantages), 1):
        terms = report.terms
        rows.append([index, report.reward, advantage, terms.format_ok, terms.count_ok, terms.ndcg10, terms.recall10,
                     terms.rbo, report.format_score, " > ".join(f"[{i + 1}]" for i in report.parsed.order)])
    figures = {"rewards": rewards, "advantages": advantages, "terms": [dataclasses.asdict(r.terms) for r in reports],
               "format_checks": [r.format_checks for r in reports]}
    return pd.DataFrame(rows, columns=DEBUG_COLUMNS), figures


def build(engine: Engine) -> None:
    def form_command(stage: str, preset: str | None, export_id: str | None, data_path: str | None,
                     model: str | None, output_dir: str | None, hyperparameters: str, resume: bool,
                     register_as: str | None) -> str:
        """The shell command the form stands for."""
        try:
            config = train_config(stage, preset, export_id, data_path, model, output_dir, hyperparameters, resume,
                                  register_as)
            return f"```\n{config_to_command(config)}\n```"
        except (InputError, ValueError) as exc:
            return f"(not a valid form: {html.escape(str(exc))})"

    def start(stage: str, preset: str | None, export_id: str | None, data_path: str | None, model: str | None,
              output_dir: str | None, hyperparameters: str, resume: bool, register_as: str | None,
              request: gr.Request) -> tuple[int, int]:
        """Launch `reasonrank train …` as a Job (admins only, checked here); the job id goes to the
        panel and to the "Show job #" box (which is what an API caller receives)."""
        require_admin(engine, request)
        try:
            config = train_config(stage, preset, export_id, data_path, model, output_dir, hyperparameters, resume,
                                  register_as)
        except (InputError, ValueError) as exc:
            raise gr.Error(str(exc)) from exc
        if export_id and export_id not in {value for _, value in export_choices(engine, stage)}:
            raise gr.Error(f"no {stage} export with id {export_id}")
        lineage = {"export_id": int(export_id)} if export_id else {}
        # the job must write to this app's store; the URL goes to the process only, never to the Job row
        env = {"REASONRANK_DB": engine.url.render_as_string(hide_password=False)}
        job_id = launch(engine, "train", config, request, lineage=lineage, env=env)
        return job_id, job_id

    def on_stage(stage: str, preset: str | None):
        return (gr.update(choices=export_choices(engine, stage), value=None),
                hyperparameters_yaml(stage, preset))

    def reward_debug(export_id: str | None, data_path: str | None, index: float | None, completions: str,
                     format_weight: float | None, request: gr.Request):
        """Score pasted completions (separated by a line `---`) against one RL row of an export."""
        require_admin(engine, request)
        try:
            path = next((e.path for e in list_exports(engine) if str(e.id) == str(export_id)), None) \
                if export_id else (data_path or "").strip()
            if not path:
                raise InputError("choose an RL export or give an RL JSONL path")
            rows = load_rows(path, "grpo")
            position = int(index or 0)
            if not 0 <= position < len(rows):
                raise InputError(f"row {position} does not exist: the file has {len(rows)} rows")
            texts = [t for t in (completions or "").split(COMPLETION_SEPARATOR) if t.strip()]
            if not texts:
                raise InputError("paste at least one completion")
            frame, figures = debug_frame(texts, rows[position], float(format_weight or 0.0))
        except InputError as exc:
            raise gr.Error(str(exc)) from exc
        row = rows[position]
        about = (f"Row {position}: {len(row['initial_list'])} passages; teacher order "
                 f"{html.escape(' > '.join(row['teacher_list']))}; relevant {html.escape(', '.join(row['relevant_docids']) or 'none')}")
        return about, frame, figures

    with gr.Tab("Train", id="train"):
        gr.Markdown("Admins only. SFT (cold start) then GRPO with the multi-view reward; the form shows the "
                    "`reasonrank train` command it runs as a job.")
        with gr.Row():
            stage = gr.Radio(list(STAGES), value="sft", label="Stage", elem_id="rr-train-stage")
            preset = gr.Dropdown(list(PRESETS), value="tiny-cpu", label="Preset", elem_id="rr-train-preset")
        with gr.Row():
            export = gr.Dropdown(export_choices(engine, "sft"), value=None, label="Export", allow_custom_value=True,
                                 elem_id="rr-train-export")
            refresh_exports = gr.Button("↻ exports", size="sm")
            data_path = gr.Textbox(label="…or a JSONL file in the export contract", elem_id="rr-train-data")
        with gr.Row():
            model = gr.Textbox(label="Base model (local folder, or hub id where the hub is reachable)",
                               elem_id="rr-train-model")
            output_dir = gr.Textbox(default_output_dir, label="Output directory", elem_id="rr-train-out")
        hyper = gr.Code(hyperparameters_yaml("sft", "tiny-cpu"), language="yaml", label="Hyperparameters",
                        elem_id="rr-train-hyper")
        with gr.Row():
            resume = gr.Checkbox(label="Resume from the last checkpoint in the output directory")
            register_as = gr.Textbox(label="Register the model as (default: from the output directory)")
        form = [stage, preset, export, data_path, model, output_dir, hyper, resume, register_as]
        command = gr.Markdown(elem_id="rr-train-cmd")
        start_button = gr.Button("Start training", variant="primary", elem_id="rr-train-start")
        panel = job_panel(engine, "train", curves=CURVES)
        registered = gr.Markdown(elem_id="rr-train-model-info")
        with gr.Row():
            past = gr.Number(None, label="Show job #", precision=0, minimum=1)
            show = gr.Button("Show", size="sm")

        with gr.Accordion("Reward debugger", open=False):
            gr.Markdown("Paste completions for one RL row (separate several with a line `---`): each reward term, "
                        "the total, and for a group the advantages GRPO would train on.")
            with gr.Row():
                debug_export = gr.Dropdown(export_choices(engine, "grpo"), value=None, label="RL export",
                                           allow_custom_value=True)
                debug_path = gr.Textbox(label="…or an RL JSONL file")
                debug_index = gr.Number(0, label="Row", precision=0, minimum=0)
                debug_weight = gr.Number(0.0, label="Format reward weight")
            debug_text = gr.Textbox(lines=6, label="Completions")
            debug_button = gr.Button("Score")
            debug_about = gr.Markdown()
            debug_table = gr.Dataframe(headers=DEBUG_COLUMNS, interactive=False, label="Reward terms")
            debug_json = gr.JSON(label="Figures")

    for component in form:
        component.change(form_command, form, command, api_visibility="private")
    refresh_exports.click(lambda s: (gr.update(choices=export_choices(engine, s)),
                                     gr.update(choices=export_choices(engine, "grpo"))),
                          stage, [export, debug_export], api_visibility="private")
    stage.change(on_stage, [stage, preset], [export, hyper], api_visibility="private")
    preset.change(lambda s, p: hyperparameters_yaml(s, p), [stage, preset], hyper, api_visibility="private")
    start_button.click(start, form, [panel.job_id, past], api_name="train_start")
    gr.api(form_command, api_name="train_command")
    panel.status.change(lambda job: render_model(engine, job), panel.job_id, registered, api_visibility="private")
    show.click(lambda job: int(job) if job else None, past, panel.job_id, api_visibility="private")
    debug_button.click(reward_debug, [debug_export, debug_path, debug_index, debug_text, debug_weight],
                       [debug_about, debug_table, debug_json], api_name="reward_debug")
