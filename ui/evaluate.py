"""Eval tab (admins start runs): a benchmark run as a Job, its per-task table, chart, files and a
leaderboard of past runs.

The form is a view over `reasonrank eval`'s EvalConfig: it shows the exact command as it is
edited, and Start launches that command as a job (ui.jobs), so a run started here can be re-run
from a shell and survives a browser refresh. When the job ends its outputs (table, written run
and calls, what reproduces it) are shown and recorded as an EvalRun for the leaderboard.
Gradio is imported at module level on purpose (handlers' gr.Request hints); this module is only
imported inside ui.build_app.
"""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import gradio as gr
import pandas as pd
from sqlalchemy import Engine

from db.engine import data_dir, private_files
from db.evalruns import leaderboard, record_eval_run, sync_eval_runs
from db.jobs import refresh_job
from db.registry import get_reranker, list_rerankers, reranker_spec
from db.seed import SAMPLE
from reasonrank.backends import BACKEND_KINDS
from reasonrank.bright import BRIGHT_TASKS, BrightSource
from reasonrank.bright_mini import MINI_TASK
from reasonrank.evaluate import DEFAULT_METRICS, EvalConfig, metric_label
from reasonrank.io import InputError
from reasonrank.methods import METHOD_NAMES, METHODS, with_defaults
from reasonrank.retrieve import CandidateSource
from reasonrank.window import WindowConfig
from ui.auth import current_request
from ui.charts import bar_chart, scatter_chart
from ui.downloads import download_copy
from ui.form import command_box, form_int, number_box
from ui.jobs import LOCAL_RUNNER, JobPanel, job_command, job_panel, launch, runner_dropdown
from ui.render import md_code, md_text

KIND = "eval"
DATASETS = {  # choice → label
    "bright-mini": "BRIGHT mini (theoremqa_questions over its 231 gold documents; a stand-in, not BRIGHT)",
    "bright": "BRIGHT tasks from a directory (official layout)",
    "dl19": "TREC DL19 (bundled BM25 top-100)",
    "noveleval": "NovelEval (bundled BM25 top-20)",
}
BM25, RUN_FILE = "BM25", "TREC run file"
NO_RERANKER = "none (first stage only)"
TABLE_COLUMNS = ["dataset", "stage", "queries", *(metric_label(m) for m in DEFAULT_METRICS)]
LEADERBOARD_COLUMNS = [
    "#",
    "run",
    "dataset",
    "reranker",
    "method",
    "nDCG@10",
    "Recall@10",
    "first stage",
    "gain",
    "queries",
    "tokens in / query",
    "tokens out / query",
    "reasoning tokens / query",
    "calls / query",
    "rounds / query",
    "s / query",
    "window/step/top-k",
    "job",
    "created",
]
DEFAULT_METHOD = "reasonrank"
# Bundled TREC-style sets: candidate file (text included), qrels, and the lowest grade that binary
# metrics count as relevant (DL19 judges 0-3 and TREC counts 2 and up; NovelEval judges 0-2).
TREC_SETS = {
    "dl19": ("trec-dl19", SAMPLE / "trec-dl19" / "bm25_top100_with_text.json", SAMPLE / "trec-dl19" / "qrels.txt", 2),
    "noveleval": (
        "noveleval",
        SAMPLE / "noveleval" / "candidates_with_text.json",
        SAMPLE / "noveleval" / "qrels.txt",
        1,
    ),
}
BUNDLED_MINI = SAMPLE / "bright-mini"
#: runs the comparison chart shows (the leaderboard's best first)
CHART_RUNS = 12
#: outputs of /eval_results, by name, in order
RESULT_OUTPUTS = ("message", "table", "chart", "run_file", "calls_file", "reproduce", "frontier")
_DEFAULT_WINDOW = WindowConfig()


# ----------------------------------------------------------------------------- the form's config
def mini_root() -> Path:
    """The BRIGHT mini benchmark bundled with the app (db/sample/bright-mini)."""
    if not (BUNDLED_MINI / "manifest.json").is_file():
        raise InputError(
            f"the bundled BRIGHT mini set is missing at {BUNDLED_MINI}; rebuild it with "
            "`reasonrank bright-mini --source DIR --out db/sample/bright-mini`"
        )
    return BUNDLED_MINI


def _positive_int(value, what: str) -> int:
    if value in (None, "") or int(value) < 1:
        raise InputError(f"{what} must be a whole number of at least 1")
    return int(value)


def _optional_int(value, what: str) -> int | None:
    text = str(value).strip() if value is not None else ""
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise InputError(f"{what} must be a whole number or empty, got {text!r}") from None


def reranker_backend(engine: Engine, name: str | None):
    """The registry reranker's BackendConfig and id, or (None, None) for the first stage only."""
    if not name or name == NO_RERANKER:
        return None, None
    row = get_reranker(engine, name)
    return reranker_spec(row).backend_config(), row.id


@dataclass(frozen=True)
class EvalValues:
    """The form's values, in the order of the /eval_command inputs (EvalForm's; /eval_start has the
    run name between the method and the runner)."""

    dataset: str
    bright_root: str | None
    tasks: list[str] | None
    first_stage: str
    run_file: str | None
    reranker: str | None
    window: float | None
    step: float | None
    top_k: float | None
    seed: str | None
    max_new_tokens: str | None
    max_passage_tokens: str | None
    method: str | None = DEFAULT_METHOD
    runner: str | None = LOCAL_RUNNER  # appended last: callers of the earlier inputs keep working

    @classmethod
    def from_values(cls, *values) -> EvalValues:
        return cls(*values)


def _names_a_private_file(engine: Engine, run: str, form: EvalValues) -> bool:
    """Whether the run path (with {task} filled for each task the form may run) is one of the
    data directory's private files (db.engine.private_files)."""
    tasks = [MINI_TASK, *(form.tasks or [])]
    paths = {run, *(run.replace("{task}", task) for task in tasks)}
    private = private_files(engine)
    return any(Path(path).expanduser().resolve() in private for path in paths)


def eval_config(engine: Engine, form: EvalValues, out: str) -> EvalConfig:
    """The EvalConfig the form describes; a missing or contradictory field is an InputError.
    `method` brings its own defaults (reasonrank.methods); the form's window, step and top-k
    replace them, and so do the generation/passage budgets when given (empty: the method's,
    for ReasonRank the paper's 3072 + 100 new tokens and 512-token passages); a CPU run wants
    far smaller ones."""
    run = (form.run_file or "").strip() or None
    if form.first_stage == RUN_FILE and run is None:
        raise InputError("give the first-stage run file (for BRIGHT a path with {task})")
    run = run if form.first_stage == RUN_FILE else None
    if run and _names_a_private_file(engine, run, form):
        raise InputError("the run file may not be the app's database or one of its own private files")
    backend, _ = reranker_backend(engine, form.reranker)
    method = form.method or DEFAULT_METHOD
    if method not in METHODS:
        raise InputError(f"unknown method {form.method!r}; choose one of {', '.join(METHOD_NAMES)}")
    own = with_defaults(method, WindowConfig())
    generation = replace(
        own.generation,
        seed=_optional_int(form.seed, "seed"),
        max_new_tokens=form_int(form.max_new_tokens, "max new tokens", minimum=1) or own.generation.max_new_tokens,
    )
    window_config = replace(
        own,
        window=_positive_int(form.window, "window"),
        step=_positive_int(form.step, "step"),
        top_k=_positive_int(form.top_k, "top-k"),
        max_passage_tokens=form_int(form.max_passage_tokens, "passage length", minimum=1) or own.max_passage_tokens,
        generation=generation,
    )
    common = {"window": window_config, "reranker": backend, "out": out}
    if form.dataset in TREC_SETS:
        name, candidates, qrels, rel_level = TREC_SETS[form.dataset]
        source = CandidateSource(name=name, candidates=None if run else str(candidates), run=run, qrels=str(qrels))
        return EvalConfig(trec=source, rel_level=rel_level, **common)
    if form.dataset == "bright-mini":
        return EvalConfig(bright=BrightSource(root=str(mini_root()), tasks=[MINI_TASK], run=run), **common)
    if form.dataset == "bright":
        if not (form.bright_root or "").strip():
            raise InputError("give the BRIGHT directory (examples/, documents/ …)")
        if not form.tasks:
            raise InputError("choose at least one BRIGHT task")
        return EvalConfig(bright=BrightSource(root=form.bright_root.strip(), tasks=list(form.tasks), run=run), **common)
    raise InputError(f"unknown dataset {form.dataset!r}; choose one of {', '.join(DATASETS)}")


# ----------------------------------------------------------------------------- rendering
def _percent(value) -> float | None:
    return None if value is None else round(100 * float(value), 2)


def results_table(rows: list[dict]) -> pd.DataFrame:
    """The eval table as shown: metrics ×100 to 2 decimals, as the paper reports them."""
    data = [
        [row["dataset"], row["stage"], row["queries"], *(_percent(row.get(m)) for m in DEFAULT_METRICS)] for row in rows
    ]
    return pd.DataFrame(data, columns=TABLE_COLUMNS)


def comparison_chart(engine: Engine) -> str:
    """nDCG@10 ×100 of the leaderboard's best runs: first stage and final, one bar pair per run."""
    rows = leaderboard(engine)[:CHART_RUNS]
    categories = [f"#{i} {row.name} ({row.dataset})" for i, row in enumerate(rows, 1)]
    return bar_chart(
        "nDCG@10 (×100) of the leaderboard's best runs",
        categories,
        {"first stage": [_percent(r.first_stage) for r in rows], "final": [_percent(r.final) for r in rows]},
    )


def frontier_chart(engine: Engine) -> str:
    """The quality–cost frontier: nDCG@10 ×100 against output tokens per query, one dot per
    reranked run × dataset (coloured by method), the Pareto front across them dashed."""
    series: dict[str, list[tuple[float, float, str]]] = {}
    for row in leaderboard(engine):
        if row.method is None or "tokens_out" not in row.costs:
            continue
        label = f"#{row.run_id} {row.name} ({row.dataset})"
        series.setdefault(row.method, []).append((round(row.costs["tokens_out"], 1), _percent(row.final), label))
    return scatter_chart(
        "Quality–cost frontier: nDCG@10 (×100) against output tokens per query",
        series,
        "output tokens per query",
        "nDCG@10",
    )


def _cost(row, name: str, digits: int = 1) -> float | None:
    value = row.costs.get(name)
    return None if value is None else round(value, digits)


def leaderboard_frame(engine: Engine, sync: bool = True) -> pd.DataFrame:
    """Every recorded run × dataset, best nDCG@10 first; with `sync`, finished jobs not yet
    recorded are added first (a write: admins only, so the public Leaderboard tab reads without)."""
    if sync:
        sync_eval_runs(engine)
    data = [
        [
            i,
            row.name,
            row.dataset,
            row.reranker,
            row.method or "–",
            _percent(row.final),
            _percent(row.recall),
            _percent(row.first_stage),
            _percent(row.gain),
            row.queries,
            _cost(row, "tokens_in"),
            _cost(row, "tokens_out"),
            _cost(row, "tokens_reasoning"),
            _cost(row, "calls", 2),
            _cost(row, "rounds", 2),
            _cost(row, "seconds", 3),
            f"{row.window}/{row.step}/{row.top_k}",
            row.job_id,
            row.created_at.isoformat(" ", "seconds"),
        ]
        for i, row in enumerate(leaderboard(engine), 1)
    ]
    return pd.DataFrame(data, columns=LEADERBOARD_COLUMNS)


def _reproduce_markdown(reproduce: dict) -> str:
    if not reproduce:
        return ""
    reranker = reproduce.get("reranker") or {}
    method = (
        f" · method {md_text(reproduce.get('method'))} ({md_text(reproduce.get('method_source', ''))})"
        if reranker
        else ""
    )
    versions = ", ".join(f"{k} {v}" for k, v in (reproduce.get("versions") or {}).items() if v)
    return (
        f"**Reproduce** — reranker: {md_text(reranker.get('kind', 'none'))} {md_text(reranker.get('model', ''))}{method} · window "
        f"{md_text(reproduce.get('window'))} / step {md_text(reproduce.get('step'))} / top-k {md_text(reproduce.get('top_k'))} · seed "
        f"{md_text(reproduce.get('seed'))} · prompt sha256 {md_code(str(reproduce.get('prompt_sha256', ''))[:16] + '…')}\n\n"
        f"Exclusions: {md_text(reproduce.get('excluded_id_rule', ''))}\n\nVersions: {md_text(versions)}"
    )


def job_results(engine: Engine, job_id: int | str | None):
    """(message, table, chart, run file, calls file, reproduce) of a finished eval job (RESULT_OUTPUTS)."""
    try:
        job_id = form_int(job_id, "eval job #", minimum=1)
    except InputError as exc:
        raise gr.Error(str(exc)) from exc

    def no_results(message: str):
        empty = pd.DataFrame(columns=TABLE_COLUMNS)
        return message, empty, comparison_chart(engine), None, None, "", frontier_chart(engine)

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
    return (
        message,
        results_table(rows),
        comparison_chart(engine),
        local_download(next(iter(runs.values()), None)),
        local_download(next(iter(calls.values()), None)),
        _reproduce_markdown(view.outputs.get("reproduce") or {}),
        frontier_chart(engine),
    )


def local_download(path: str | None) -> str | None:
    """A download copy of an output file, or None where this machine has no such file (a job on
    a remote runner writes its outputs on the cluster)."""
    return download_copy(path) if path and Path(path).is_file() else None


def _method_suffix(reranker: str | None, method: str | None) -> str:
    return f" · {method}" if reranker and reranker != NO_RERANKER and method and method != DEFAULT_METHOD else ""


def reranker_choices(engine: Engine) -> list[str]:
    """Registry rerankers that are model backends (the Eval runs them through `reasonrank eval`)."""
    return [NO_RERANKER] + [r.name for r in list_rerankers(engine) if r.backend in BACKEND_KINDS]


# ----------------------------------------------------------------------------- the tab
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


def form_command(engine: Engine, *values) -> str:
    """The shell command equivalent to the form as it stands (the output folder is made at Start)."""
    try:
        form = EvalValues.from_values(*values)
        return job_command(eval_config(engine, form, str(data_dir() / "evals" / "NEW")), form.runner)
    except (InputError, ValueError) as exc:
        return f"# not a valid form: {exc}"


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
    return {
        tab.form.reranker: gr.update(choices=reranker_choices(engine)),
        tab.results.board: leaderboard_frame(engine),
        tab.results.chart: comparison_chart(engine),
        tab.results.frontier: frontier_chart(engine),
    }


def job_ended(engine: Engine, results: EvalResults, job_id) -> dict:
    """Results and the leaderboard once the panel shows the job ended (its status changed)."""
    if job_id is None or not refresh_job(engine, int(job_id)).finished:
        return {component: gr.skip() for component in (*results.outputs(), results.board)}
    return {**dict(zip(results.outputs(), job_results(engine, job_id))), results.board: leaderboard_frame(engine)}


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
    chart = gr.HTML(comparison_chart(engine), elem_id="rr-eval-chart")
    frontier = gr.HTML(frontier_chart(engine), elem_id="rr-eval-frontier")
    with gr.Row():
        run_download = gr.File(label="TREC run", interactive=False, elem_id="rr-eval-run-file")
        calls_download = gr.File(label="Model calls (JSONL)", interactive=False, elem_id="rr-eval-calls-file")
    reproduce = gr.Markdown(elem_id="rr-eval-reproduce")
    board = gr.Dataframe(
        leaderboard_frame(engine),
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
    """The tab, built and wired inside it: each handler binds what it needs and calls a function above."""
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
