"""Synthesize tab (admins only): a form over `reasonrank synth`, run as a job with a live panel.

The form is the CLI's SynthConfig, so the tab shows the exact command it runs, and the job is
that command in a subprocess (ui.jobs.launch): progress, rate, errors by kind, tokens and the
cost estimate arrive through the job's events. The API key is asked for by the NAME of an
environment variable of the app's process; the job inherits the environment, so the key never
passes through the form, the job's config, its log or the database.
Gradio is imported at module level on purpose (handlers' gr.Request hints); this module is only
imported inside ui.build_app.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from functools import partial

import gradio as gr
from sqlalchemy import Engine

from db.models import ITEM_STATUSES
from db.synth import dataset_names
from reasonrank.cli.synth import ANY_STATUS, SynthConfig
from reasonrank.io import InputError
from reasonrank.synth import PROMPTS
from ui.auth import current_request
from ui.form import command_box, form_float, form_int, form_text, number_box
from ui.jobs import LOCAL_RUNNER, JobPanel, job_command, job_panel, launch, runner_dropdown

STATUSES = (*ITEM_STATUSES, ANY_STATUS)


@dataclass(frozen=True)
class SynthValues:
    """The form's values, in the order of the /synth_start and /synth_command inputs (SynthForm's)."""

    dataset: str | None
    status: str | None
    limit: str | None
    candidates: str | None
    base_url: str | None
    model: str | None
    api_key_env: str | None
    prompt: str | None
    max_tokens: float | None
    temperature: float | None
    answers: str | None
    alpha: float | None
    max_in_flight: float | None
    timeout_s: float | None
    max_retries: float | None
    max_requests: str | None
    price_in: str | None
    price_out: str | None
    runner: str | None = LOCAL_RUNNER  # appended last: callers of the earlier inputs keep working

    @classmethod
    def from_values(cls, *values) -> SynthValues:
        return cls(*values)


def synth_config(form: SynthValues) -> SynthConfig:
    """The form's widgets → the CLI's config (empty fields take the CLI's defaults)."""
    defaults = SynthConfig()
    return SynthConfig(
        dataset=form_text(form.dataset),
        status=form.status or defaults.status,
        limit=form_int(form.limit, "Limit", minimum=1),
        candidates=form_text(form.candidates),
        base_url=form_text(form.base_url) or defaults.base_url,
        model=form_text(form.model) or defaults.model,
        api_key_env=form_text(form.api_key_env) or defaults.api_key_env,
        prompt=form.prompt or defaults.prompt,
        max_tokens=form_int(form.max_tokens) or defaults.max_tokens,
        temperature=defaults.temperature if form.temperature in (None, "") else float(form.temperature),
        answers=form_text(form.answers),
        alpha=defaults.alpha if form.alpha in (None, "") else float(form.alpha),
        max_in_flight=form_int(form.max_in_flight) or defaults.max_in_flight,
        timeout_s=form_float(form.timeout_s) or defaults.timeout_s,
        max_retries=defaults.max_retries if form.max_retries in (None, "") else int(form.max_retries),
        max_requests=form_int(form.max_requests, "Request budget", minimum=1),
        price_in=form_float(form.price_in, "USD per M prompt tokens", minimum=0.0),
        price_out=form_float(form.price_out, "USD per M completion tokens", minimum=0.0),
    )


@dataclass
class SynthForm:
    """The form's fields, in the order of the /synth_start and /synth_command inputs (synth_config's)."""

    dataset: gr.Dropdown
    status: gr.Dropdown
    limit: gr.Textbox
    candidates: gr.File
    base_url: gr.Textbox
    model: gr.Textbox
    api_key_env: gr.Textbox
    prompt: gr.Radio
    max_tokens: gr.Number
    temperature: gr.Number
    answers: gr.File
    alpha: gr.Number
    max_in_flight: gr.Number
    timeout_s: gr.Number
    max_retries: gr.Number
    max_requests: gr.Textbox
    price_in: gr.Textbox
    price_out: gr.Textbox
    runner: gr.Dropdown

    def inputs(self) -> list:
        return [getattr(self, f.name) for f in dataclasses.fields(self)]


def form_command(*values) -> str:
    """The shell command equivalent to the form as it stands."""
    try:
        form = SynthValues.from_values(*values)
        return job_command(synth_config(form), form.runner)
    except (InputError, ValueError) as exc:
        return f"# not a valid form: {exc}"


def start_synthesis(engine: Engine, form: SynthValues, request) -> tuple[int, str]:
    """Launch `reasonrank synth` for the form as a job of the logged-in admin (checked in launch):
    the job id and the message to show (see start_warnings)."""
    try:
        config = synth_config(form)
    except (InputError, ValueError) as exc:
        raise gr.Error(str(exc)) from exc
    if config.dataset is None and config.candidates is None:
        raise gr.Error("choose a dataset of the store, or upload a candidate file")
    runner = form.runner or LOCAL_RUNNER
    # a local job writes to this app's store: the URL travels in the environment, not the config;
    # a remote runner gets no database URL (a worker never connects to the app's store)
    env = {"REASONRANK_DB": engine.url.render_as_string(hide_password=False)} if runner == LOCAL_RUNNER else {}
    job_id = launch(engine, "synth", config, request, env=env, runner=runner)
    return job_id, f"Started job {job_id}.{start_warnings(config, runner)}"


def start_warnings(config: SynthConfig, runner: str) -> str:
    """What the admin should know about a job just started: a key variable unset here, and how a
    job on another runner gets its items and returns its labels (db.synth_remote)."""
    if runner != LOCAL_RUNNER:
        return (
            f" On {runner} the worker labels the items selected here (they travel with the job) and sends"
            " each label back in its log; this app stores them in its own store as they arrive (Review queue)."
            f" ⚠️ The teacher's key must be in {config.api_key_env} there."
        )
    if os.environ.get(config.api_key_env):
        return ""
    return (
        f" ⚠️ {config.api_key_env} is not set where the app runs: the teacher's calls carry no key"
        " (fine for a server that needs none)."
    )


def synth_form(engine: Engine) -> SynthForm:
    defaults = SynthConfig()
    with gr.Row():
        names = dataset_names(engine)
        dataset = gr.Dropdown(
            names,
            value=names[0] if names else None,
            label="Dataset",
            allow_custom_value=True,
            elem_id="rr-synth-dataset",
        )
        status = gr.Dropdown(
            list(STATUSES), value=defaults.status, label="Items with status", elem_id="rr-synth-status"
        )
        # a small first run by default: teacher calls cost money
        limit = number_box("Limit (empty: all)", 10, elem_id="rr-synth-limit", placeholder="all")
        candidates = gr.File(
            label="…or a candidate file (imported, then labelled)", type="filepath", elem_id="rr-synth-candidates"
        )
    with gr.Row():
        base_url = gr.Textbox(defaults.base_url, label="Teacher base URL", elem_id="rr-synth-url")
        model = gr.Textbox(defaults.model, label="Model", elem_id="rr-synth-model")
        api_key_env = gr.Textbox(
            defaults.api_key_env, label="API key: name of the environment variable", elem_id="rr-synth-key-env"
        )
        runner = runner_dropdown("rr-synth-runner")
    with gr.Row():
        prompt = gr.Radio(list(PROMPTS), value=defaults.prompt, label="Labelling prompt", elem_id="rr-synth-prompt")
        max_tokens = gr.Number(defaults.max_tokens, label="Max tokens", precision=0, minimum=1)
        temperature = gr.Number(defaults.temperature, label="Temperature", minimum=0)
        answers = gr.File(label="Gold answers for positive selection (optional)", type="filepath")
    with gr.Accordion("Throughput, budget, cost", open=False):
        with gr.Row():
            alpha = gr.Number(defaults.alpha, label="α (keep when nDCG@10 ≥ α)", minimum=0, maximum=1)
            max_in_flight = gr.Number(defaults.max_in_flight, label="Requests in flight", precision=0, minimum=1)
            timeout_s = gr.Number(defaults.timeout_s, label="Timeout per request (s)", minimum=0.1)
            max_retries = gr.Number(defaults.max_retries, label="Retries per request", precision=0, minimum=0)
        with gr.Row():
            max_requests = number_box("Request budget (empty: none)", elem_id="rr-synth-budget", placeholder="none")
            price_in = number_box(
                "USD per M prompt tokens (empty: built-in table)", elem_id="rr-synth-price-in", placeholder="built-in"
            )
            price_out = number_box(
                "USD per M completion tokens (empty: built-in table)",
                elem_id="rr-synth-price-out",
                placeholder="built-in",
            )
    return SynthForm(
        dataset,
        status,
        limit,
        candidates,
        base_url,
        model,
        api_key_env,
        prompt,
        max_tokens,
        temperature,
        answers,
        alpha,
        max_in_flight,
        timeout_s,
        max_retries,
        max_requests,
        price_in,
        price_out,
        runner,
    )


@dataclass
class SynthTab:
    """Every component of the Synthesize tab, by name."""

    form: SynthForm
    command: gr.Code
    start_btn: gr.Button
    started: gr.Markdown
    job_number: gr.Textbox
    panel: JobPanel


def start_job(engine: Engine, tab: SynthTab, *values) -> dict:
    """Start the form's job: the panel follows it, the Job box names it (what an API caller receives
    with the message)."""
    job_id, message = start_synthesis(engine, SynthValues.from_values(*values), current_request())
    return {tab.panel.job_id: job_id, tab.job_number: str(job_id), tab.started: message}


def dataset_choices(engine: Engine) -> gr.Dropdown:
    return gr.Dropdown(choices=dataset_names(engine))


def layout(engine: Engine) -> SynthTab:
    """The tab's components: the form and its command, Start, and the job panel."""
    gr.Markdown(
        "Admins only. A reasoning teacher (DeepSeek-R1 or any OpenAI-compatible server) labels "
        "stored items; each label is stored as it arrives, so a stopped job resumes where it ended."
    )
    form = synth_form(engine)
    command = command_box(form_command(*(field.value for field in form.inputs())), elem_id="rr-synth-cmd")
    start_btn = gr.Button("Start synthesis", variant="primary", elem_id="rr-synth-start")
    started = gr.Markdown(elem_id="rr-synth-msg")
    job_number = gr.Textbox(label="Job", interactive=False, max_lines=1, elem_id="rr-synth-job")
    panel = job_panel(engine, "synth")
    return SynthTab(form, command, start_btn, started, job_number, panel)


def build(engine: Engine) -> None:
    """The tab, wired: each handler binds what it needs and calls a function above."""
    with gr.Tab("Synthesize", id="synth") as tab_item:
        tab = layout(engine)

    inputs = tab.form.inputs()
    gr.on([field.change for field in inputs], form_command, inputs, tab.command, api_name="synth_command")
    tab.start_btn.click(
        partial(start_job, engine, tab),
        inputs,
        [tab.panel.job_id, tab.job_number, tab.started],
        api_name="synth_start",
    )
    tab_item.select(partial(dataset_choices, engine), None, tab.form.dataset, api_visibility="private")
