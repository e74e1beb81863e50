"""Train tab (admins only, checked on the server): fine-tune a reranker from an export, watch it,
find the registered model, and debug the GRPO reward.

The form is a view over `reasonrank train`'s config (ui.train_config): stage, preset, fine-tune
mode (full, LoRA, QLoRA), export, base model and an editable YAML of the hyperparameters the preset
starts from; the command it shows is the one Start runs as a Job. The job panel (ui.jobs) draws
loss, learning-rate and reward-term curves from the run's metrics events. The reward debugger is
its own panel (ui.train_debugger).

Gradio is imported at module level on purpose (handlers' gr.Request hints); this module is only
imported inside ui.build_app.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import partial

import gradio as gr
from gradio.context import Context
from sqlalchemy import Engine

from db.jobs import refresh_job
from reasonrank.cli.train import check_train_config
from reasonrank.io import InputError
from reasonrank.launch import STRATEGIES
from reasonrank.train.config import FINETUNE_MODES, PRESETS, STAGES
from ui.auth import current_request, require_admin
from ui.form import command_box, form_int, number_box
from ui.jobs import LOCAL_RUNNER, JobPanel, code_span, job_panel, launch, runner_dropdown
from ui.train_config import (
    TrainValues,
    export_choices,
    form_command,
    hyperparameters_yaml,
    new_output_dir,
    preset_finetune,
    train_config,
)
from ui.train_debugger import Debugger, debugger_panel, generator_choices, wire_debugger

#: the curves the panel draws, one panel per quantity (metrics event names, see reasonrank.train.callbacks)
CURVES = {
    "loss": ("loss",),
    "learning rate": ("lr",),
    "gradient norm": ("grad_norm",),
    "reward": ("reward",),
    "reward terms": (
        "reward_ranking_reward",
        "reward_format_reward",
        "reward_ndcg10",
        "reward_recall10",
        "reward_rbo",
    ),
}


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
    name = code_span(outputs["reranker_name"])
    return (
        f"**Registered model:** {name} (reranker id {outputs['reranker_id']},"
        f" {'LoRA adapter' if outputs.get('adapter') else 'full model'} in {code_span(outputs.get('model_dir', ''))})\n\n"
        f"**Lineage:** {export} → job #{view.id} ({outputs.get('stage')}, {outputs.get('steps')} steps) → "
        f"reranker {name}"
    )


@dataclass
class TrainForm:
    """The form's fields, in the order of the /train_start and /train_command inputs."""

    stage: gr.Radio
    preset: gr.Dropdown
    finetune: gr.Dropdown
    export: gr.Dropdown
    data_path: gr.Textbox
    model: gr.Textbox
    output_dir: gr.Textbox
    hyperparameters: gr.Code
    resume: gr.Checkbox
    register_as: gr.Textbox
    runner: gr.Dropdown
    processes: gr.Number
    nodes: gr.Number
    strategy: gr.Dropdown
    refresh_exports: gr.Button  # not an input: refreshes the export choices

    def inputs(self) -> list:
        return [getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "refresh_exports"]


def start_training(engine: Engine, form: TrainValues, request) -> int:
    """Launch `reasonrank train …` as a Job (admins only, checked here) once the config is known
    to be runnable (ui.jobs.launch checks the role again); an empty output directory is a new
    folder for this launch."""
    require_admin(engine, request)
    if form.export_id and form.export_id not in {value for _, value in export_choices(engine, form.stage)}:
        raise gr.Error(f"no {form.stage} export with id {form.export_id}")
    runner = form.runner or LOCAL_RUNNER
    try:
        config = train_config(form, (form.output_dir or "").strip() or new_output_dir())
        check_train_config(config, runner)  # ray and slurm start a multi-node job on every node
    except (InputError, ValueError) as exc:
        raise gr.Error(str(exc)) from exc
    lineage = {"export_id": int(form.export_id)} if form.export_id else {}
    # the job must write to this app's store; the URL goes to the process only, never to the Job row
    # (a remote runner gets no database URL: the app registers what it trained, see db.remote_jobs)
    env = {"REASONRANK_DB": engine.url.render_as_string(hide_password=False)} if runner == LOCAL_RUNNER else {}
    return launch(engine, "train", config, request, lineage=lineage, env=env, runner=runner)


def stage_changed(engine: Engine, form: TrainForm, stage: str, preset: str | None) -> dict:
    """A new stage: its exports, and the preset's hyperparameters and fine-tune mode for it."""
    return {
        form.export: gr.update(choices=export_choices(engine, stage), value=None),
        form.hyperparameters: hyperparameters_yaml(stage, preset),
        form.finetune: preset_finetune(stage, preset),
    }


def preset_changed(form: TrainForm, stage: str, preset: str | None) -> dict:
    return {form.hyperparameters: hyperparameters_yaml(stage, preset), form.finetune: preset_finetune(stage, preset)}


def show_job(engine: Engine, text: str | None) -> int | None:
    """The training job numbered in "Show job #" (empty: none shown); another kind of job is refused."""
    try:
        job_id = form_int(text, "Show job #", minimum=1)
        if job_id is not None and refresh_job(engine, job_id).kind != "train":
            raise InputError(f"job {job_id} is not a training job")
    except LookupError as exc:
        raise gr.Error(str(exc)) from exc
    except InputError as exc:
        raise gr.Error(str(exc)) from exc
    return job_id


def train_form(engine: Engine) -> TrainForm:
    with gr.Row():
        stage = gr.Radio(list(STAGES), value="sft", label="Stage", elem_id="rr-train-stage")
        preset = gr.Dropdown(list(PRESETS), value="tiny-cpu", label="Preset", elem_id="rr-train-preset")
        finetune = gr.Dropdown(
            list(FINETUNE_MODES),
            value=preset_finetune("sft", "tiny-cpu"),
            label="Fine-tune (qlora: 4-bit base, needs CUDA + bitsandbytes)",
            elem_id="rr-train-finetune",
        )
    with gr.Row():
        export = gr.Dropdown(
            [],  # filled by the admin-only page load: the page config is the same for every visitor
            value=None,
            label="Export",
            allow_custom_value=True,
            elem_id="rr-train-export",
        )
        refresh_exports = gr.Button("↻ exports", size="sm")
        data_path = gr.Textbox(label="…or a JSONL file in the export contract", elem_id="rr-train-data")
    with gr.Row():
        model = gr.Textbox(
            label="Base model (local folder, or hub id where the hub is reachable)", elem_id="rr-train-model"
        )
        output_dir = gr.Textbox(
            label="Output directory (empty: a new folder under runs/ for each launch)",
            placeholder="a new folder per launch",
            elem_id="rr-train-out",
        )
    hyper = gr.Code(
        hyperparameters_yaml("sft", "tiny-cpu"), language="yaml", label="Hyperparameters", elem_id="rr-train-hyper"
    )
    with gr.Row():
        resume = gr.Checkbox(label="Resume from the last checkpoint in the output directory")
        register_as = gr.Textbox(label="Register the model as (default: from the output directory)")
    with gr.Row():
        runner = runner_dropdown("rr-train-runner")
        processes = gr.Number(1, label="Processes per node", precision=0, minimum=1, elem_id="rr-train-procs")
        nodes = gr.Number(
            1,
            label="Nodes",
            info="more than 1: runner ray or slurm, which start the command on every node",
            precision=0,
            minimum=1,
            elem_id="rr-train-nodes",
        )
        strategy = gr.Dropdown(
            list(STRATEGIES),
            value="ddp",
            label="Strategy (or an accelerate YAML)",
            allow_custom_value=True,
            elem_id="rr-train-strategy",
        )
    return TrainForm(
        stage,
        preset,
        finetune,
        export,
        data_path,
        model,
        output_dir,
        hyper,
        resume,
        register_as,
        runner,
        processes,
        nodes,
        strategy,
        refresh_exports,
    )


@dataclass
class TrainTab:
    """Every component of the Train tab, by name."""

    form: TrainForm
    command: gr.Code
    start_button: gr.Button
    panel: JobPanel
    registered: gr.Markdown
    past: gr.Textbox
    show: gr.Button
    debugger: Debugger


def start_job(engine: Engine, tab: TrainTab, *values) -> dict:
    """Start the form's job: the panel follows it and "Show job #" names it (what an API caller receives)."""
    job_id = start_training(engine, TrainValues.from_values(*values), current_request())
    return {tab.panel.job_id: job_id, tab.past: str(job_id)}


def refreshed_exports(engine: Engine, tab: TrainTab, stage: str) -> dict:
    """The export choices of the form (for its stage) and of the reward debugger (RL)."""
    return {
        tab.form.export: gr.update(choices=export_choices(engine, stage)),
        tab.debugger.export: gr.update(choices=export_choices(engine, "grpo")),
    }


def page_choices(engine: Engine, tab: TrainTab) -> dict:
    """What the admin-only page load fills: the exports and the rerankers the debugger samples from."""
    return {
        **refreshed_exports(engine, tab, "sft"),
        tab.debugger.generator: gr.update(choices=generator_choices(engine)),
    }


def layout(engine: Engine) -> TrainTab:
    """The tab's components: the form and its command, the job panel, the registered model, the debugger."""
    gr.Markdown(
        "Admins only. SFT (cold start) then GRPO with the multi-view reward; the form shows the "
        "`reasonrank train` command it runs as a job."
    )
    form = train_form(engine)
    command = command_box(form_command(*(field.value for field in form.inputs())), elem_id="rr-train-cmd")
    start_button = gr.Button("Start training", variant="primary", elem_id="rr-train-start")
    panel = job_panel(engine, "train", curves=CURVES)
    registered = gr.Markdown(elem_id="rr-train-model-info")
    with gr.Row():
        past = number_box("Show job #", elem_id="rr-train-past", placeholder="job number")
        show = gr.Button("Show", size="sm", elem_id="rr-train-show")
    debugger = debugger_panel()
    return TrainTab(form, command, start_button, panel, registered, past, show, debugger)


def build(engine: Engine) -> None:
    """The tab, wired: each handler binds what it needs and calls a module-level function (here, in
    ui.train_config or ui.train_debugger)."""
    with gr.Tab("Train", id="train"):
        tab = layout(engine)

    form, debugger = tab.form, tab.debugger
    inputs = form.inputs()
    # /train_command: a caller that leaves out the launch fields gets the widgets' defaults
    gr.on([field.change for field in inputs], form_command, inputs, tab.command, api_name="train_command")
    form.refresh_exports.click(
        partial(refreshed_exports, engine, tab), form.stage, [form.export, debugger.export], api_visibility="private"
    )
    form.stage.change(
        partial(stage_changed, engine, form),
        [form.stage, form.preset],
        {form.export, form.hyperparameters, form.finetune},
        api_visibility="private",
    )
    form.preset.change(
        partial(preset_changed, form),
        [form.stage, form.preset],
        {form.hyperparameters, form.finetune},
        api_visibility="private",
    )
    # A refused start is a toast with the reason; without a progress tracker on its outputs, the
    # "Show job #" box does not also turn into an "Error" badge.
    tab.start_button.click(
        partial(start_job, engine, tab),
        inputs,
        [tab.panel.job_id, tab.past],
        api_name="train_start",
        show_progress="hidden",
    )
    tab.panel.status.change(partial(render_model, engine), tab.panel.job_id, tab.registered, api_visibility="private")
    tab.show.click(partial(show_job, engine), tab.past, tab.panel.job_id, api_visibility="private")
    Context.root_block.load(
        partial(page_choices, engine, tab),
        None,
        [form.export, debugger.export, debugger.generator],
        api_visibility="private",
    )
    wire_debugger(engine, debugger)
