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

import gradio as gr
from sqlalchemy import Engine

from db.models import ITEM_STATUSES
from db.synth import dataset_names
from reasonrank.cli import config_to_command
from reasonrank.cli.synth import ANY_STATUS, SynthConfig
from reasonrank.io import InputError
from reasonrank.synth import PROMPTS
from ui.form import form_float, form_int, form_text, number_box
from ui.jobs import job_panel, launch

STATUSES = (*ITEM_STATUSES, ANY_STATUS)


def synth_config(
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
) -> SynthConfig:
    """The form's widgets → the CLI's config (empty fields take the CLI's defaults)."""
    defaults = SynthConfig()
    return SynthConfig(
        dataset=form_text(dataset),
        status=status or defaults.status,
        limit=form_int(limit, "Limit", minimum=1),
        candidates=form_text(candidates),
        base_url=form_text(base_url) or defaults.base_url,
        model=form_text(model) or defaults.model,
        api_key_env=form_text(api_key_env) or defaults.api_key_env,
        prompt=prompt or defaults.prompt,
        max_tokens=form_int(max_tokens) or defaults.max_tokens,
        temperature=defaults.temperature if temperature in (None, "") else float(temperature),
        answers=form_text(answers),
        alpha=defaults.alpha if alpha in (None, "") else float(alpha),
        max_in_flight=form_int(max_in_flight) or defaults.max_in_flight,
        timeout_s=form_float(timeout_s) or defaults.timeout_s,
        max_retries=defaults.max_retries if max_retries in (None, "") else int(max_retries),
        max_requests=form_int(max_requests, "Request budget", minimum=1),
        price_in=form_float(price_in, "USD per M prompt tokens", minimum=0.0),
        price_out=form_float(price_out, "USD per M completion tokens", minimum=0.0),
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

    def inputs(self) -> list:
        return [getattr(self, f.name) for f in dataclasses.fields(self)]


def form_command(*values) -> str:
    """The shell command equivalent to the form as it stands."""
    try:
        return config_to_command(synth_config(*values))
    except (InputError, ValueError) as exc:
        return f"# not a valid form: {exc}"


def start_synthesis(engine: Engine, values: list, request) -> tuple[int, str]:
    """Launch `reasonrank synth` for the form as a job of the logged-in admin (checked in launch):
    the job id and the message to show (naming a key variable that is not set here)."""
    try:
        config = synth_config(*values)
    except (InputError, ValueError) as exc:
        raise gr.Error(str(exc)) from exc
    if config.dataset is None and config.candidates is None:
        raise gr.Error("choose a dataset of the store, or upload a candidate file")
    # the job writes to this app's store; the URL travels in the environment, not the config
    job_id = launch(
        engine, "synth", config, request, env={"REASONRANK_DB": engine.url.render_as_string(hide_password=False)}
    )
    unset = (
        ""
        if os.environ.get(config.api_key_env)
        else f" ⚠️ {config.api_key_env} is not set where the app runs: the teacher's calls carry no key"
        " (fine for a server that needs none)."
    )
    return job_id, f"Started job {job_id}.{unset}"


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
    )


def build(engine: Engine) -> None:
    def start(request: gr.Request, *values):
        job_id, message = start_synthesis(engine, list(values), request)
        return job_id, str(job_id), message

    with gr.Tab("Synthesize", id="synth") as tab:
        gr.Markdown(
            "Admins only. A reasoning teacher (DeepSeek-R1 or any OpenAI-compatible server) labels "
            "stored items; each label is stored as it arrives, so a stopped job resumes where it ended."
        )
        form = synth_form(engine)
        inputs = form.inputs()
        shown = gr.Code(
            form_command(*(field.value for field in inputs)),
            label="Equivalent command",
            language="shell",
            interactive=False,
            elem_id="rr-synth-cmd",
        )
        start_btn = gr.Button("Start synthesis", variant="primary", elem_id="rr-synth-start")
        started = gr.Markdown(elem_id="rr-synth-msg")
        job_number = gr.Textbox(label="Job", interactive=False, max_lines=1, elem_id="rr-synth-job")
        panel = job_panel(engine, "synth")

    gr.on([field.change for field in inputs], form_command, inputs, shown, api_name="synth_command")
    start_btn.click(start, inputs, [panel.job_id, job_number, started], api_name="synth_start")
    tab.select(lambda: gr.Dropdown(choices=dataset_names(engine)), None, form.dataset, api_visibility="private")
