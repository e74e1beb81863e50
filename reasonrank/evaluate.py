"""Benchmark runs: first stage → optional listwise rerank → metrics table, per dataset.

One EvalConfig describes the whole run so the CLI, the UI form and a job record hold the same
thing. All datasets are reranked in ONE sliding-window pass (lists of every dataset share each
window position's batched model call), so twelve BRIGHT tasks cost as many sequential model
calls as one.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from reasonrank.backends.base import Backend, BackendConfig, TokenizerLike
from reasonrank.bright import BrightSource, load_bright
from reasonrank.io import InputError, write_calls_jsonl, write_trec_run
from reasonrank.methods import get_method
from reasonrank.metrics import evaluate_run, mean_metrics
from reasonrank.reproduce import eval_reproduce
from reasonrank.retrieve import CandidateSource, FirstStage, load_source
from reasonrank.types import CandidateList, RankResult, WindowCall
from reasonrank.window import WindowConfig, rerank, window_spans

DEFAULT_METRICS = ("ndcg@1", "ndcg@5", "ndcg@10", "recall@10", "mrr@10")
FIRST_STAGE = "first-stage"
RERANKED = "reranked"
AVERAGE = "average"


@dataclass
class EvalConfig:
    """What to evaluate and how; the `reasonrank eval` flags map onto it one to one.

    `trec` is a DL19-style set (queries TSV + qrels + a run, candidate file or corpus for BM25);
    `bright` names BRIGHT tasks on disk. `window.top_k` is both the first-stage depth and the
    reranked head. Without `reranker` only the first stage is scored.
    """

    trec: CandidateSource | None = None
    bright: BrightSource | None = None
    window: WindowConfig = field(default_factory=WindowConfig)
    reranker: BackendConfig | None = None
    rel_level: int = 1
    metrics: tuple[str, ...] = DEFAULT_METRICS
    out: str | None = None  # directory for results.json, runs and calls

    def __post_init__(self) -> None:
        self.metrics = tuple(self.metrics)  # a list from a form or JSON compares equal after parsing

    @property
    def top_k(self) -> int:
        return self.window.top_k


@dataclass
class DatasetScores:
    """One dataset at one stage: per-query values and their mean (fractions, not ×100)."""

    dataset: str
    stage: str
    per_query: dict[str, dict[str, float]]
    mean: dict[str, float]


#: what a reranked run cost per query (means over the dataset's queries), in COSTS order
COSTS = ("tokens_in", "tokens_out", "tokens_reasoning", "calls", "rounds", "seconds")


@dataclass
class EvalReport:
    metrics: tuple[str, ...]
    scores: list[DatasetScores]
    results: dict[str, list[RankResult]]  # per dataset: the final rankings (reranked if a reranker ran)
    #: per reranked dataset: COSTS per query (see `query_costs`)
    costs: dict[str, dict[str, float]] = field(default_factory=dict)

    def rows(self) -> list[dict]:
        """The table: one row per dataset and stage, plus the macro average when several datasets."""
        rows = [{"dataset": s.dataset, "stage": s.stage, "queries": len(s.per_query), **s.mean} for s in self.scores]
        for stage in dict.fromkeys(s.stage for s in self.scores):
            staged = [s for s in self.scores if s.stage == stage]
            if len(staged) > 1:
                average = {m: sum(s.mean[m] for s in staged) / len(staged) for m in self.metrics}
                queries = sum(len(s.per_query) for s in staged)
                rows.append({"dataset": AVERAGE, "stage": stage, "queries": queries, **average})
        return rows


def load_datasets(config: EvalConfig) -> list[FirstStage]:
    """Every dataset the config names, first stage run, checked to carry judgments."""
    stages: list[FirstStage] = []
    if config.trec is not None:
        stages.append(load_source(config.trec, config.top_k))
    if config.bright is not None:
        if not config.bright.root:
            raise InputError("BRIGHT tasks need a root directory (--bright-root)")
        stages.extend(load_bright(config.bright, config.top_k))
    if not stages:
        raise InputError(
            "no dataset: give --qrels with --run, --candidates or --corpus/--queries, or --bright-root with --task"
        )
    for stage in stages:
        if not stage.qrels:
            raise InputError(f"dataset {stage.name!r} has no judgments (give --qrels)")
    return stages


def evaluate(
    config: EvalConfig,
    backend: Backend | None = None,
    on_step: Callable[[int, int], None] | None = None,
) -> EvalReport:
    """Score the first stage of every dataset, then (with a reranker) rerank and score again.

    `backend` overrides `config.reranker` (tests and the app pass a live one); a backend built
    here from the config is closed before returning. `on_step(done, total)` counts model calls
    (one per window of one query), reported as they finish (see `CallProgress`).
    """
    stages = load_datasets(config)
    # First-stage runs are scored from their scores, as trec_eval does (ties by docid).
    scores = [
        _score(s.name, FIRST_STAGE, {q: dict(hits) for q, hits in s.run.items()}, s.qrels, config) for s in stages
    ]
    results = {s.name: [RankResult(qid, [d for d, _ in hits]) for qid, hits in s.run.items()] for s in stages}
    costs: dict[str, dict[str, float]] = {}
    if config.reranker is not None or backend is not None:
        lists_per_stage = [s.require_lists() for s in stages]
        began = time.perf_counter()
        reranked, tokenizer = _rerank_all(lists_per_stage, config, backend, on_step)
        # one batched sweep served every dataset: its wall time is shared evenly by all queries
        per_query = (time.perf_counter() - began) / max(sum(len(lists) for lists in lists_per_stage), 1)
        for stage, stage_results in zip(stages, reranked):
            run = {r.qid: r.ranking for r in stage_results}
            scores.append(_score(stage.name, RERANKED, run, stage.qrels, config))
            results[stage.name] = stage_results
            costs[stage.name] = query_costs(stage_results, per_query, tokenizer)
    return EvalReport(tuple(config.metrics), scores, results, costs)


def query_costs(results: Sequence[RankResult], seconds: float, tokenizer: TokenizerLike | None) -> dict[str, float]:
    """COSTS per query, means over `results`: prompt, output and reasoning tokens, model calls,
    sequential rounds (distinct pass and position of a query's calls: what it waited for in a
    batched run) and `seconds` (the wall time each query was given).

    Reasoning tokens are the call's own count when a reasoning budget recorded one, else the
    recorded reasoning text re-tokenized with `tokenizer` (whitespace words without one).
    """
    totals = dict.fromkeys(COSTS, 0.0)
    for result in results:
        totals["calls"] += len(result.calls)
        totals["rounds"] += len({(call.pass_index, call.position) for call in result.calls})
        for call in result.calls:
            totals["tokens_in"] += call.tokens_in
            totals["tokens_out"] += call.tokens_out
            totals["tokens_reasoning"] += reasoning_tokens(call, tokenizer)
    count = max(len(results), 1)
    averaged = {name: value / count for name, value in totals.items()}
    averaged["seconds"] = seconds
    return averaged


def reasoning_tokens(call: WindowCall, tokenizer: TokenizerLike | None) -> int:
    """How many tokens of `call` were reasoning (see `query_costs`)."""
    if call.tokens_reasoning is not None:
        return call.tokens_reasoning
    if not call.reasoning:
        return 0
    return len(tokenizer.tokenize(call.reasoning)) if tokenizer is not None else len(call.reasoning.split())


def _rerank_all(
    lists_per_stage: list[list[CandidateList]],
    config: EvalConfig,
    backend: Backend | None,
    on_step: Callable[[int, int], None] | None,
) -> tuple[list[list[RankResult]], TokenizerLike | None]:
    """Rerank all datasets in one batched sweep, then split the results back per dataset; with
    the backend's tokenizer (it counts reasoning tokens)."""
    from reasonrank.backends import make_backend

    own = backend is None
    backend = backend or make_backend(config.reranker)
    lists = [cl for stage_lists in lists_per_stage for cl in stage_lists]
    try:
        if on_step is None:
            flat = rerank(lists, backend, config.window)
        elif get_method(config.window.method).paradigm != "listwise":
            # their number of calls is not known ahead (second passes, heapsort rounds): the
            # method reports its own sequential steps
            flat = rerank(lists, backend, config.window, on_step)
        else:
            chunk = config.reranker.batch_size if config.reranker and config.reranker.kind == "transformers" else None
            reporting = CallProgress(backend, model_calls(lists, config.window), on_step, chunk)
            flat = rerank(lists, reporting, config.window)
        tokenizer = backend.tokenizer
    finally:
        if own:
            backend.close()
    split, offset = [], 0
    for lists in lists_per_stage:
        split.append(flat[offset : offset + len(lists)])
        offset += len(lists)
    return split, tokenizer


def model_calls(lists: list[CandidateList], window: WindowConfig) -> int:
    """How many model calls a rerank of `lists` makes: one per window of each list, per pass."""
    per_pass = sum(len(window_spans(len(cl.candidates), window.window, window.step, window.top_k)) for cl in lists)
    return per_pass * window.passes


class CallProgress:
    """The backend as `rerank` sees it, reporting model calls as they finish.

    A window position is one `generate` call over every query's window; on a CPU that is minutes
    of silence. With `chunk` (a transformers backend's own batch size, so the batches the model
    sees are the ones it would form anyway) the call is made chunk by chunk and each finished
    chunk is reported; otherwise the whole position is reported when it ends.
    """

    def __init__(self, backend: Backend, total: int, on_step: Callable[[int, int], None], chunk: int | None) -> None:
        self._backend = backend
        self._on_step = on_step
        self._chunk = chunk if chunk and chunk > 0 else None
        self.total = total
        self.done = 0

    def __getattr__(self, name: str):
        return getattr(self._backend, name)

    def generate(self, prompts: list, params) -> list:
        size = self._chunk or max(len(prompts), 1)
        completions: list = []
        for start in range(0, len(prompts), size):
            completions.extend(self._backend.generate(prompts[start : start + size], params))
            self.done = min(self.total, self.done + len(prompts[start : start + size]))
            self._on_step(self.done, self.total)
        return completions


def _score(name: str, stage: str, run: dict, qrels: dict, config: EvalConfig) -> DatasetScores:
    per_query = evaluate_run(run, qrels, tuple(config.metrics), config.rel_level)
    if not per_query:
        raise InputError(f"dataset {name!r}: no query of the {stage} run has judgments (qid mismatch?)")
    return DatasetScores(name, stage, per_query, mean_metrics(per_query))


# ----------------------------------------------------------------------------- presentation
def metric_label(name: str) -> str:
    """'ndcg@10' → 'nDCG@10', 'recall@10' → 'Recall@10', 'mrr@10' → 'MRR@10' (the paper's names)."""
    family, _, k = name.partition("@")
    return {"ndcg": "nDCG", "recall": "Recall", "mrr": "MRR"}.get(family.lower(), family) + f"@{k}"


def format_table(report: EvalReport) -> str:
    """A fixed-width table with metrics ×100 to 2 decimals, as the paper reports them."""
    labels = [metric_label(m) for m in report.metrics]
    rows = report.rows()
    name_width = max([len("dataset")] + [len(r["dataset"]) for r in rows])
    head = f"{'dataset':<{name_width}}  {'stage':<11}  {'queries':>7}  " + "  ".join(f"{label:>9}" for label in labels)
    lines = ["metrics ×100, mean over judged queries (2 decimals)", head, "-" * len(head)]
    for row in rows:
        values = "  ".join(f"{100 * row[m]:>9.2f}" for m in report.metrics)
        lines.append(f"{row['dataset']:<{name_width}}  {row['stage']:<11}  {row['queries']:>7}  {values}")
    if report.costs:
        lines.append("per query: tokens in / out / reasoning, model calls, sequential rounds, seconds")
        for name, cost in report.costs.items():
            lines.append(
                f"{name:<{name_width}}  {cost['tokens_in']:.0f} / {cost['tokens_out']:.0f} / "
                f"{cost['tokens_reasoning']:.0f}  calls {cost['calls']:.1f}  rounds {cost['rounds']:.1f}  "
                f"{cost['seconds']:.2f} s"
            )
    return "\n".join(lines)


def write_report(report: EvalReport, config: EvalConfig, out_dir: str | Path, command: str | None = None) -> Path:
    """results.json (config, what reproduces it, table, per-query values; fractions) plus each
    dataset's final run (`<dataset>.trec`) and, when reranked, its model calls
    (`<dataset>.calls.jsonl`); results.json lists those files under "runs" and "calls"."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    runs, calls = {}, {}
    for name, results in report.results.items():
        stem = re.sub(r"[^\w.-]", "_", name)
        runs[name] = str(out / f"{stem}.trec")
        write_trec_run(results, runs[name])
        if any(r.calls for r in results):
            calls[name] = str(out / f"{stem}.calls.jsonl")
            write_calls_jsonl(results, calls[name])
    payload = {
        "command": command,
        "config": asdict(config),
        "reproduce": eval_reproduce(config),
        "table": report.rows(),
        "costs": report.costs,
        "runs": runs,
        "calls": calls,
        "per_query": [asdict(s) for s in report.scores],
    }
    path = out / "results.json"
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path
