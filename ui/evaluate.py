"""Eval tab (admins start runs): a benchmark run as a Job, its per-task table, chart, files and a
leaderboard of past runs.

The form is a view over `reasonrank eval`'s EvalConfig (ui.eval_config): it shows the exact command
as it is edited, and Start launches that command as a job (ui.jobs), so a run started here can be
re-run from a shell and survives a browser refresh. When the job ends its outputs (table, written
run and calls, what reproduces it) are shown (ui.render_eval) and recorded as an EvalRun for the
leaderboard.
Gradio is imported at module level on purpose (handlers' gr.Request hints); this module is only
imported inside ui.build_app.
"""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import gradio as gr
import pandas as pd
from sqlalchemy import Engine

from db.engine import data_dir
from db.evalruns import LeaderboardRow, leaderboard, record_eval_run, sync_eval_runs
from db.jobs import refresh_job
from reasonrank.bright import BRIGHT_TASKS
from reasonrank.io import InputError
from reasonrank.methods import METHODS
from reasonrank.window import WindowConfig
from ui.auth import current_request
from ui.downloads import download_copy
from ui.eval_config import (
    BM25,
    DATASETS,
    DEFAULT_METHOD,
    NO_RERANKER,
    RUN_FILE,
    EvalValues,
    eval_config,
    form_command,
    reranker_backend,
    reranker_choices,
)
from ui.form import command_box, form_int, number_box
from ui.jobs import LOCAL_RUNNER, JobPanel, job_panel, launch, runner_dropdown
from ui.render_eval import (
    LEADERBOARD_COLUMNS,
    TABLE_COLUMNS,
    comparison_chart,
    frontier_chart,
    leaderboard_frame,
    reproduce_markdown,
    results_table,
)

KIND = "eval"
#: outputs of /eval_results, by name, in order
RESULT_OUTPUTS = ("message", "table", "chart", "run_file", "calls_file", "reproduce", "frontier")
_DEFAULT_WINDOW = WindowConfig()


def recorded_runs(engine: Engine) -> list[LeaderboardRow]:
    """Every recorded run × dataset, best nDCG@10 first, once finished jobs not yet recorded are
    added (a write: admins only, so the public Leaderboard tab reads without)."""
    sync_eval_runs(engine)
    return leaderboard(engine)


def job_results(engine: Engine, job_id: int | str | None):
    """(message, table, chart, run file, calls file, reproduce) of a finished eval job (RESULT_OUTPUTS)."""
    try:
        job_id = form_int(job_id, "eval job #", minimum=1)
    except InputError as exc:
        raise gr.Error(str(exc)) from exc

    def no_results(message: str):
        empty = pd.DataFrame(columns=TABLE_COLUMNS)
        runs = leaderboard(engine)
        return message, empty, comparison_chart(runs), None, None, "", frontier_chart(runs)

    if job_id is None:
        return no_results("No eval run shown yet.")
    try:
        view = refresh_job(engine, int(job_id))
    except LookupError as exc:
        raise gr.Error(str(exc)) from exc
    if view.kind != KIND:
        raise gr.Error(f"job {view.id} is a {view.kind} job, not an eval")
    if not view.finished:
        return no_results(f"Job {view.id} is {view.status}; results appear when it ends.")
    if view.status != "succeeded" or "table" not in view.outputs:
        return no_results(f"Job {view.id} {view.status}: {view.message}")
    run = record_eval_run(engine, view.id)
    rows = view.outputs["table"]
    runs, calls = view.outputs.get("runs") or {}, view.outputs.get("calls") or {}
    message = f"Job {view.id} succeeded" + (f" — recorded as eval run {run.id} ({run.name})" if run else "")
    recorded = leaderboard(engine)
    return (
        message,
        results_table(rows),
        comparison_chart(recorded),
        local_download(next(iter(runs.values()), None)),
        local_download(next(iter(calls.values()), None)),
        reproduce_markdown(view.outputs.get("reproduce") or {}),
        frontier_chart(recorded),
    )


def local_download(path: str | None) -> str | None:
    """A download copy of an output file, or None where this machine has no such file (a job on
    a remote runner writes its outputs on the cluster)."""
    return download_copy(path) if path and Path(path).is_file() else None


def _method_suffix(reranker: str | None, method: str | None) -> str:
    return f" · {method}" if reranker and reranker != NO_RERANKER and method and method != DEFAULT_METHOD else ""


@dataclass
class EvalForm:
    """The form's fields, in the order of the /eval_command inputs (see EvalTab.start_inputs)."""

    dataset: gr.Radio
    bright_root: gr.Textbox
    tasks: gr.Dropdown
    first_stage: gr.Radio
    run_file: gr.Textbox
    reranker: gr.Dropdown
    window: gr.Number
    step: gr.Number
    top_k: gr.Number
    seed: gr.Textbox
    max_new_tokens: gr.Textbox
    max_passage_tokens: gr.Textbox
    method: gr.Dropdown
    runner: gr.Dropdown

    def inputs(self) -> list:
        return [getattr(self, f.name) for f in dataclasses.fields(self)]


@dataclass
class EvalResults:
    """Where a finished job's results go, by the names of RESULT_OUTPUTS, plus the leaderboard."""

    message: gr.Markdown
    table: gr.Dataframe
    chart: gr.HTML
    run_file: gr.File
    calls_file: gr.File
    reproduce: gr.Markdown
    frontier: gr.HTML
    board: gr.Dataframe

    def outputs(self) -> list:
        return [getattr(self, name) for name in RESULT_OUTPUTS]


def start_eval(engine: Engine, form: EvalValues, name: str | None, request) -> int:
    """Launch `reasonrank eval` for the form as a job (admins only, checked in ui.jobs.launch)."""
    out = data_dir() / "evals" / uuid.uuid4().hex[:12]
    try:
        config = eval_config(engine, form, str(out))
        _, reranker_id = reranker_backend(engine, form.reranker)
    except (InputError, ValueError) as exc:
        raise gr.Error(str(exc)) from exc
    default_name = f"{form.dataset} · {form.reranker or NO_RERANKER}{_method_suffix(form.reranker, form.method)}"
    lineage = {
        "name": ((name or "").strip() or default_name)[:200],
        "reranker_id": reranker_id,
        "dataset": form.dataset,
    }
    return launch(engine, KIND, config, request, lineage=lineage, runner=form.runner or LOCAL_RUNNER)


def start_job(engine: Engine, tab: EvalTab, *values) -> dict:
    """Start the form's run (EvalTab.start_inputs): the panel follows it and the "results of job #"
    box names it (what an API caller receives)."""
    *fields, name, runner = values
    job_id = start_eval(engine, EvalValues.from_values(*fields, runner), name, current_request())
    return {tab.panel.job_id: job_id, tab.past_job: str(job_id)}


def refreshed_lists(engine: Engine, tab: EvalTab) -> dict:
    """The registry's rerankers, the leaderboard and its charts, read again."""
    runs = recorded_runs(engine)
    return {
        tab.form.reranker: gr.update(choices=reranker_choices(engine)),
        tab.results.board: leaderboard_frame(runs),
        tab.results.chart: comparison_chart(runs),
        tab.results.frontier: frontier_chart(runs),
    }


def job_ended(engine: Engine, results: EvalResults, job_id) -> dict:
    """Results and the leaderboard once the panel shows the job ended (its status changed)."""
    if job_id is None or not refresh_job(engine, int(job_id)).finished:
        return {component: gr.skip() for component in (*results.outputs(), results.board)}
    shown = dict(zip(results.outputs(), job_results(engine, job_id)))
    return {**shown, results.board: leaderboard_frame(recorded_runs(engine))}


def eval_form(engine: Engine) -> EvalForm:
    with gr.Row():
        dataset = gr.Radio(
            [(label, key) for key, label in DATASETS.items()],
            value="bright-mini",
            label="Dataset",
            elem_id="rr-eval-dataset",
        )
        with gr.Column():
            bright_root = gr.Textbox(label="BRIGHT directory (official layout)", elem_id="rr-eval-bright-root")
            tasks = gr.Dropdown(list(BRIGHT_TASKS), multiselect=True, label="BRIGHT tasks", elem_id="rr-eval-tasks")
    with gr.Row():
        first_stage = gr.Radio([BM25, RUN_FILE], value=BM25, label="First stage", elem_id="rr-eval-first")
        run_file = gr.Textbox(
            label="Run file (BRIGHT: a path with {task})",
            placeholder="e.g. runs/{task}.reasonir_top100.run",
            elem_id="rr-eval-run",
        )
    with gr.Row():
        reranker = gr.Dropdown(
            reranker_choices(engine), value=NO_RERANKER, label="Reranker (registry)", elem_id="rr-eval-reranker"
        )
        window = gr.Number(20, precision=0, minimum=2, label="Window", elem_id="rr-eval-window")
        step = gr.Number(10, precision=0, minimum=1, label="Step", elem_id="rr-eval-step")
        top_k = gr.Number(100, precision=0, minimum=1, label="Top-k", elem_id="rr-eval-topk")
        seed = number_box("Seed (empty: none)", elem_id="rr-eval-seed", placeholder="none")
    with gr.Row():
        method = gr.Dropdown(
            [(f"{m.name} — {m.summary}", m.name) for m in METHODS.values()],
            value=DEFAULT_METHOD,
            label="Method (its own defaults; the fields here override them)",
            elem_id="rr-eval-method",
            scale=3,
        )
        runner = runner_dropdown("rr-eval-runner")
    with gr.Row():
        max_new = number_box(
            f"Max new tokens per call (empty: the method's; ReasonRank {_DEFAULT_WINDOW.generation.max_new_tokens})",
            elem_id="rr-eval-max-new",
            placeholder=str(_DEFAULT_WINDOW.generation.max_new_tokens),
        )
        passage = number_box(
            f"Passage length in tokens (empty: {_DEFAULT_WINDOW.max_passage_tokens})",
            elem_id="rr-eval-passage",
            placeholder=str(_DEFAULT_WINDOW.max_passage_tokens),
        )
    return EvalForm(
        dataset,
        bright_root,
        tasks,
        first_stage,
        run_file,
        reranker,
        window,
        step,
        top_k,
        seed,
        max_new,
        passage,
        method,
        runner,
    )


def results_panel(engine: Engine) -> EvalResults:
    message = gr.Markdown(elem_id="rr-eval-msg")
    table = gr.Dataframe(
        headers=TABLE_COLUMNS, label="Per-task metrics (×100)", interactive=False, elem_id="rr-eval-table"
    )
    runs = leaderboard(engine)
    chart = gr.HTML(comparison_chart(runs), elem_id="rr-eval-chart")
    frontier = gr.HTML(frontier_chart(runs), elem_id="rr-eval-frontier")
    with gr.Row():
        run_download = gr.File(label="TREC run", interactive=False, elem_id="rr-eval-run-file")
        calls_download = gr.File(label="Model calls (JSONL)", interactive=False, elem_id="rr-eval-calls-file")
    reproduce = gr.Markdown(elem_id="rr-eval-reproduce")
    board = gr.Dataframe(
        leaderboard_frame(recorded_runs(engine)),
        headers=LEADERBOARD_COLUMNS,
        label="Leaderboard",
        interactive=False,
        elem_id="rr-eval-leaderboard",
    )
    return EvalResults(message, table, chart, run_download, calls_download, reproduce, frontier, board)


@dataclass
class EvalTab:
    """Every component of the Eval tab, by name."""

    form: EvalForm
    name: gr.Textbox
    command: gr.Code
    start_btn: gr.Button
    panel: JobPanel
    results: EvalResults
    past_job: gr.Textbox
    show_btn: gr.Button
    refresh: gr.Button

    def start_inputs(self) -> list:
        """The /eval_start inputs: the form up to the method, the run name, then the runner (appended
        last, so callers of the earlier inputs keep working)."""
        *fields, runner = self.form.inputs()
        return [*fields, self.name, runner]

    def listed(self) -> list:
        """What refreshed_lists updates."""
        return [self.form.reranker, self.results.board, self.results.chart, self.results.frontier]


def layout(engine: Engine) -> EvalTab:
    """The tab's components: the form and its command, the job panel, results and leaderboard."""
    gr.Markdown(
        "Run a benchmark as a job: first stage, optional reranker and its method, nDCG@1/5/10, Recall@10 "
        "and MRR@10 per task; the leaderboard adds each run's tokens, model calls, sequential rounds and "
        "seconds per query, and the frontier chart plots nDCG@10 against output tokens per query. Admins "
        "start runs; the command below is what the job runs."
    )
    form = eval_form(engine)
    name = gr.Textbox(label="Run name (leaderboard; default: dataset · reranker)", elem_id="rr-eval-name")
    command = command_box(form_command(engine, *(field.value for field in form.inputs())), elem_id="rr-eval-cmd")
    start_btn = gr.Button("Start eval", variant="primary", elem_id="rr-eval-start")
    panel = job_panel(engine, KIND)
    results = results_panel(engine)
    with gr.Row():
        past_job = number_box("Results of eval job #", elem_id="rr-eval-past-job", placeholder="job number")
        show_btn = gr.Button("Show", size="sm", elem_id="rr-eval-show")
    refresh = gr.Button("Refresh rerankers and leaderboard", size="sm", elem_id="rr-eval-refresh")
    return EvalTab(form, name, command, start_btn, panel, results, past_job, show_btn, refresh)


def build(engine: Engine) -> None:
    """The tab, built and wired inside it: each handler binds what it needs and calls a module-level
    function (here or in ui.eval_config)."""
    with gr.Tab("Eval", id="eval") as tab_item:
        tab = layout(engine)
        inputs = tab.form.inputs()
        shown = tab.results.outputs()
        command = partial(form_command, engine)
        results = partial(job_results, engine)
        gr.on([field.change for field in inputs], command, inputs, tab.command, api_name="eval_command")
        tab.start_btn.click(
            partial(start_job, engine, tab),
            tab.start_inputs(),
            [tab.panel.job_id, tab.past_job],
            api_name="eval_start",
        )
        tab.panel.status.change(
            partial(job_ended, engine, tab.results),
            tab.panel.job_id,
            {*shown, tab.results.board},
            api_visibility="private",
        )
        tab.show_btn.click(results, tab.past_job, shown, api_name="eval_results")
        tab.panel.job_id.change(results, tab.panel.job_id, shown, api_visibility="private")
        refresh = partial(refreshed_lists, engine, tab)
        tab.refresh.click(refresh, None, tab.listed(), api_name="eval_refresh")
        tab_item.select(refresh, None, tab.listed(), api_visibility="private").then(
            command, inputs, tab.command, api_visibility="private"
        )
