"""Train tab (admins only, checked on the server): fine-tune a reranker from an export, watch it,
find the registered model, and debug the GRPO reward.

The form is a view over `reasonrank train`'s config: stage, preset, fine-tune mode (full, LoRA,
QLoRA), export, base model and an editable YAML of the hyperparameters the preset starts from.
Only the values that differ from the preset become flags, so the command shown (and run as a Job)
is the shortest exact one. The job panel (ui.jobs) draws loss, learning-rate and reward-term
curves from the run's metrics events.

The reward debugger scores pasted completions, or a group sampled from a registered reranker
(a policy under test) on the row's own prompt.

Gradio is imported at module level on purpose (handlers' gr.Request hints); this module is only
imported inside ui.build_app.
"""

from __future__ import annotations

import dataclasses
import html
import time
import uuid
from dataclasses import dataclass
from functools import partial
from typing import Any

import gradio as gr
import pandas as pd
from gradio.context import Context
from sqlalchemy import Engine

from db.engine import data_dir
from db.exports import get_export, list_exports
from db.jobs import refresh_job
from db.registry import get_reranker, list_rerankers, reranker_spec
from reasonrank.arena import RerankerSpec
from reasonrank.backends import make_backend
from reasonrank.backends.base import BackendError
from reasonrank.cli.train import EXPORT_PREFIX, RunOverrides, TrainConfig, check_train_config
from reasonrank.io import InputError
from reasonrank.launch import STRATEGIES
from reasonrank.train.config import FINETUNE_MODES, PRESETS, STAGES, apply_values, default_run_config, yaml_values
from reasonrank.train.data import load_row
from reasonrank.train.debugger import DEFAULT_MAX_NEW_TOKENS, debug_completion, debug_group, sample_completions
from ui.auth import current_request, require_admin
from ui.form import command_box, form_int, number_box
from ui.jobs import LOCAL_RUNNER, JobPanel, code_span, job_command, job_panel, launch, runner_dropdown

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
#: what the command preview shows for the output directory a launch creates
NEW_OUTPUT_DIR = "NEW"
#: fields the form passes to the command as given (their own widgets)
DIRECT_FIELDS = ("model", "data", "output_dir", "preset", "resume")
#: fields with their own widget, left out of the hyperparameter YAML (finetune: a flag when it differs from the preset)
FORM_FIELDS = (*DIRECT_FIELDS, "finetune")
#: registry backends the debugger can sample completions from
GENERATOR_BACKENDS = ("transformers", "openai")
EXPORT_KINDS = {"sft": ("sft", "alpaca"), "grpo": ("rl",)}
DEBUG_COLUMNS = [
    "#",
    "reward",
    "advantage",
    "format_ok",
    "count_ok",
    "ndcg10",
    "recall10",
    "rbo",
    "format_score",
    "parsed order",
]
COMPLETION_SEPARATOR = "\n---\n"


def hyperparameters_yaml(stage: str, preset: str | None) -> str:
    """The preset's values of every field the YAML editor holds."""
    import yaml

    values = dataclasses.asdict(default_run_config(stage, preset or None))
    return yaml.safe_dump({k: v for k, v in values.items() if k not in FORM_FIELDS}, sort_keys=False)


def _edited_values(text: str) -> dict[str, Any]:
    values = yaml_values(text or "", "hyperparameters")
    shadowed = sorted(set(values) & set(FORM_FIELDS))
    if shadowed:
        raise InputError(f"hyperparameters: set {', '.join(shadowed)} with the form fields above")
    return values


def new_output_dir() -> str:
    """A fresh folder under <data dir>/runs for one launch (never shared by two launches)."""
    return str(data_dir() / "runs" / f"{time.strftime('run-%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}")


def export_choices(engine: Engine, stage: str) -> list[tuple[str, str]]:
    """Recorded exports this stage can train on, newest first, as (label, id)."""
    return [
        (f"#{e.id} {e.name} ({e.kind}, {e.count} rows)", str(e.id))
        for e in list_exports(engine)
        if e.kind in EXPORT_KINDS.get(stage, ())
    ]


def preset_finetune(stage: str, preset: str | None) -> str:
    """The fine-tune mode a preset starts from (the dropdown follows the preset, like the YAML)."""
    return default_run_config(stage, preset or None).finetune


@dataclass(frozen=True)
class TrainValues:
    """The form's values, in the order of the /train_start and /train_command inputs (TrainForm's);
    API callers may leave out the launch fields (runner, processes per node, nodes, strategy)."""

    stage: str
    preset: str | None
    finetune: str | None
    export_id: str | None
    data_path: str | None
    model: str | None
    output_dir: str | None
    hyperparameters: str
    resume: bool
    register_as: str | None
    runner: str | None = LOCAL_RUNNER
    processes: float | None = 1
    nodes: float | None = 1
    strategy: str | None = "ddp"

    @classmethod
    def from_values(cls, *values) -> TrainValues:
        return cls(*values)


def train_config(values: TrainValues, output_dir: str) -> TrainConfig:
    """The form as a TrainConfig writing to `output_dir`: only hyperparameters (and a fine-tune
    mode) that differ from the preset become flags; more than one process runs under
    `accelerate launch`."""
    baseline = default_run_config(values.stage, values.preset or None)
    edited_values = _edited_values(values.hyperparameters)
    if values.finetune:
        edited_values["finetune"] = values.finetune
    edited = apply_values(baseline, edited_values, "hyperparameters")
    changed = {
        f.name: getattr(edited, f.name)
        for f in dataclasses.fields(edited)
        if f.name not in DIRECT_FIELDS and getattr(edited, f.name) != getattr(baseline, f.name)
    }
    data = f"{EXPORT_PREFIX}{values.export_id}" if values.export_id else (values.data_path or "").strip()
    run = RunOverrides(
        preset=values.preset or None,
        model=(values.model or "").strip() or None,
        data=data or None,
        output_dir=output_dir,
        resume=True if values.resume else None,
        **changed,
    )
    return TrainConfig(
        stage=values.stage,
        run=run,
        register_as=(values.register_as or "").strip() or None,
        processes_per_node=int(values.processes or 1),
        nodes=int(values.nodes or 1),
        strategy=values.strategy or "ddp",
    )


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


def debug_frame(texts: list[str], row: dict, format_weight: float) -> tuple[pd.DataFrame, dict]:
    """The reward debugger's table (one line per completion) and its raw figures; advantages
    only for a group (two or more completions)."""
    if len(texts) > 1:
        group = debug_group(texts, row, format_weight)
        reports, advantages = group.completions, group.advantages
    else:
        reports, advantages = [debug_completion(text, row, format_weight) for text in texts], [None]
    rewards = [report.reward for report in reports]
    rows = []
    for index, (report, advantage) in enumerate(zip(reports, advantages), 1):
        terms = report.terms
        rows.append(
            [
                index,
                report.reward,
                advantage,
                terms.format_ok,
                terms.count_ok,
                terms.ndcg10,
                terms.recall10,
                terms.rbo,
                report.format_score,
                " > ".join(f"[{i + 1}]" for i in report.parsed.order),
            ]
        )
    figures = {
        "rewards": rewards,
        "advantages": advantages,
        "terms": [dataclasses.asdict(r.terms) for r in reports],
        "format_checks": [r.format_checks for r in reports],
    }
    return pd.DataFrame(rows, columns=DEBUG_COLUMNS), figures


def generator_choices(engine: Engine) -> list[str]:
    """Registered rerankers the debugger can sample from (model backends that take a prompt)."""
    return [row.name for row in list_rerankers(engine) if row.backend in GENERATOR_BACKENDS]


def generator_spec(engine: Engine, name: str | None) -> RerankerSpec:
    """The registry entry `name` as a spec, refused unless it is a transformers or openai reranker."""
    try:
        row = get_reranker(engine, name) if name else None
    except InputError:  # no such reranker
        row = None
    if row is None or row.backend not in GENERATOR_BACKENDS:
        raise InputError(
            f"choose a registered {' or '.join(GENERATOR_BACKENDS)} reranker to generate with"
            + (f"; {name!r} is not one" if name else "")
        )
    return reranker_spec(row)


def rl_row(engine: Engine, export_id: str | None, data_path: str | None, index: float | None) -> tuple[int, dict]:
    """(position, row) of one RL row, from a recorded export or a JSONL path (read up to that row only)."""
    path = get_export(engine, int(export_id)).path if export_id else (data_path or "").strip()
    if not path:
        raise InputError("choose an RL export or give an RL JSONL path")
    position = int(index or 0)
    return position, load_row(path, "grpo", position)


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


@dataclass
class Debugger:
    """The reward debugger's components."""

    export: gr.Dropdown
    path: gr.Textbox
    index: gr.Number
    weight: gr.Number
    generator: gr.Dropdown
    refresh_generators: gr.Button
    samples: gr.Number
    temperature: gr.Number
    max_tokens: gr.Number
    generate: gr.Button
    completions: gr.Textbox
    score: gr.Button
    about: gr.Markdown
    table: gr.Dataframe
    figures: gr.JSON


def form_command(*values) -> str:
    """The shell command the form stands for (an empty output directory: a new one per launch)."""
    try:
        form = TrainValues.from_values(*values)
        output = (form.output_dir or "").strip() or str(data_dir() / "runs" / NEW_OUTPUT_DIR)
        return job_command(train_config(form, output), form.runner)
    except (InputError, ValueError) as exc:
        return f"# not a valid form: {exc}"


def start_training(engine: Engine, form: TrainValues, request) -> int:
    """Launch `reasonrank train …` as a Job (admins only, checked here) once the config is known
    to be runnable (ui.jobs.launch checks the role again); an empty output directory is a new
    folder for this launch."""
    require_admin(engine, request)
    if form.export_id and form.export_id not in {value for _, value in export_choices(engine, form.stage)}:
        raise gr.Error(f"no {form.stage} export with id {form.export_id}")
    try:
        config = train_config(form, (form.output_dir or "").strip() or new_output_dir())
        check_train_config(config)
    except (InputError, ValueError) as exc:
        raise gr.Error(str(exc)) from exc
    lineage = {"export_id": int(form.export_id)} if form.export_id else {}
    runner = form.runner or LOCAL_RUNNER
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


def reward_debug(engine: Engine, debugger: Debugger, export_id, data_path, index, completions, format_weight) -> dict:
    """Score pasted completions (separated by a line `---`) against one RL row of an export:
    the about line, the table and the figures."""
    require_admin(engine, current_request())
    try:
        position, row = rl_row(engine, export_id, data_path, index)
        texts = [t for t in (completions or "").split(COMPLETION_SEPARATOR) if t.strip()]
        if not texts:
            raise InputError("paste at least one completion")
        frame, figures = debug_frame(texts, row, float(format_weight or 0.0))
    except InputError as exc:
        raise gr.Error(str(exc)) from exc
    about = (
        f"Row {position}: {len(row['initial_list'])} passages; teacher order "
        f"{html.escape(' > '.join(row['teacher_list']))}; relevant {html.escape(', '.join(row['relevant_docids']) or 'none')}"
    )
    return {debugger.about: about, debugger.table: frame, debugger.figures: figures}


def reward_generate(engine: Engine, export_id, data_path, index, reranker, samples, temperature, max_new_tokens) -> str:
    """Sample a group of completions of the row's prompt from a registered reranker; they fill
    the completions box (one per `---` block) for scoring."""
    require_admin(engine, current_request())
    try:
        _, row = rl_row(engine, export_id, data_path, index)
        spec = generator_spec(engine, reranker)
        backend = make_backend(spec.backend_config())
        try:
            texts = sample_completions(
                row,
                backend,
                int(samples or 0),
                float(temperature or 0.0),
                int(max_new_tokens or DEFAULT_MAX_NEW_TOKENS),
            )
        finally:
            backend.close()
    except (InputError, BackendError) as exc:
        raise gr.Error(str(exc)) from exc
    return COMPLETION_SEPARATOR.join(texts)


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
        nodes = gr.Number(1, label="Nodes", precision=0, minimum=1, elem_id="rr-train-nodes")
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


def debugger_panel(engine: Engine) -> Debugger:
    with gr.Accordion("Reward debugger", open=False):
        gr.Markdown(
            "Paste completions for one RL row (separate several with a line `---`), or generate a "
            "group with a registered reranker: each reward term, the total, and for a group the "
            "advantages GRPO would train on."
        )
        with gr.Row():
            export = gr.Dropdown([], value=None, label="RL export", allow_custom_value=True)
            path = gr.Textbox(label="…or an RL JSONL file")
            index = gr.Number(0, label="Row", precision=0, minimum=0)
            weight = gr.Number(0.0, label="Format reward weight")
        with gr.Row():
            generator = gr.Dropdown(
                [],
                value=None,
                label="Generate with",
                allow_custom_value=True,
                elem_id="rr-debug-generator",
            )
            refresh_generators = gr.Button("↻ rerankers", size="sm")
            samples = gr.Number(4, label="Samples", precision=0, minimum=1, maximum=64)
            temperature = gr.Number(1.0, label="Temperature", minimum=0.0)
            max_tokens = gr.Number(DEFAULT_MAX_NEW_TOKENS, label="Max new tokens", precision=0, minimum=1)
            generate = gr.Button("Generate")
        completions = gr.Textbox(lines=6, label="Completions")
        score = gr.Button("Score")
        about = gr.Markdown()
        table = gr.Dataframe(headers=DEBUG_COLUMNS, interactive=False, label="Reward terms")
        figures = gr.JSON(label="Figures")
    return Debugger(
        export,
        path,
        index,
        weight,
        generator,
        refresh_generators,
        samples,
        temperature,
        max_tokens,
        generate,
        completions,
        score,
        about,
        table,
        figures,
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

    def debug_inputs(self) -> list:
        """The /reward_debug inputs."""
        d = self.debugger
        return [d.export, d.path, d.index, d.completions, d.weight]

    def debug_outputs(self) -> list:
        d = self.debugger
        return [d.about, d.table, d.figures]

    def generate_inputs(self) -> list:
        """The /reward_generate inputs."""
        d = self.debugger
        return [d.export, d.path, d.index, d.generator, d.samples, d.temperature, d.max_tokens]


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


def refreshed_generators(engine: Engine) -> dict:
    return gr.update(choices=generator_choices(engine))


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
    debugger = debugger_panel(engine)
    return TrainTab(form, command, start_button, panel, registered, past, show, debugger)


def build(engine: Engine) -> None:
    """The tab, wired: each handler binds what it needs and calls a function above."""
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
    tab.start_button.click(
        partial(start_job, engine, tab), inputs, [tab.panel.job_id, tab.past], api_name="train_start"
    )
    tab.panel.status.change(partial(render_model, engine), tab.panel.job_id, tab.registered, api_visibility="private")
    tab.show.click(partial(show_job, engine), tab.past, tab.panel.job_id, api_visibility="private")
    scores = partial(reward_debug, engine, debugger)
    debugger.score.click(scores, tab.debug_inputs(), tab.debug_outputs(), api_name="reward_debug")
    debugger.refresh_generators.click(
        partial(refreshed_generators, engine), None, debugger.generator, api_visibility="private"
    )
    Context.root_block.load(
        partial(page_choices, engine, tab),
        None,
        [form.export, debugger.export, debugger.generator],
        api_visibility="private",
    )
    debugger.generate.click(
        partial(reward_generate, engine), tab.generate_inputs(), debugger.completions, api_name="reward_generate"
    ).success(scores, tab.debug_inputs(), tab.debug_outputs(), api_visibility="private")
