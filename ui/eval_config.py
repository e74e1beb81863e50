"""The Eval form as `reasonrank eval`'s EvalConfig: the datasets it offers, the form's values, the
config they describe and the exact command a Start runs.

A missing or contradictory field is an InputError (or ValueError) here; the tab (ui.evaluate)
turns it into a message, or into a `# not a valid form` line in the command preview.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from sqlalchemy import Engine

from db.engine import data_dir, private_files
from db.registry import get_reranker, list_rerankers, reranker_spec
from db.seed import SAMPLE
from reasonrank.backends import BACKEND_KINDS
from reasonrank.bright import BrightSource
from reasonrank.bright_mini import MINI_TASK
from reasonrank.evaluate import EvalConfig
from reasonrank.io import InputError
from reasonrank.methods import METHOD_NAMES, METHODS, with_defaults
from reasonrank.retrieve import CandidateSource
from reasonrank.window import WindowConfig
from ui.form import form_int
from ui.jobs import LOCAL_RUNNER, job_command

DATASETS = {  # choice → label
    "bright-mini": "BRIGHT mini (theoremqa_questions over its 231 gold documents; a stand-in, not BRIGHT)",
    "bright": "BRIGHT tasks from a directory (official layout)",
    "dl19": "TREC DL19 (bundled BM25 top-100)",
    "noveleval": "NovelEval (bundled BM25 top-20)",
}
BM25, RUN_FILE = "BM25", "TREC run file"
NO_RERANKER = "none (first stage only)"
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


def reranker_choices(engine: Engine) -> list[str]:
    """Registry rerankers that are model backends (the Eval runs them through `reasonrank eval`)."""
    return [NO_RERANKER] + [r.name for r in list_rerankers(engine) if r.backend in BACKEND_KINDS]


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


def form_command(engine: Engine, *values) -> str:
    """The shell command equivalent to the form as it stands (the output folder is made at Start)."""
    try:
        form = EvalValues.from_values(*values)
        return job_command(eval_config(engine, form, str(data_dir() / "evals" / "NEW")), form.runner)
    except (InputError, ValueError) as exc:
        return f"# not a valid form: {exc}"
