"""`reasonrank rerank` and `reasonrank eval`: their configs, flag tables and handlers."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from reasonrank.backends import BACKEND_KINDS
from reasonrank.backends.base import Backend, BackendConfig
from reasonrank.bright import BrightSource
from reasonrank.cli.common import Command, Progress, optional_int
from reasonrank.evaluate import EvalConfig, evaluate, format_table, write_report
from reasonrank.flags import Flag, FlagTable
from reasonrank.io import InputError, write_calls_jsonl, write_trec_run
from reasonrank.jobs import EventLog
from reasonrank.methods import METHOD_NAMES, METHODS, with_defaults
from reasonrank.reproduce import eval_reproduce
from reasonrank.retrieve import CandidateSource, load_source
from reasonrank.types import RankResult
from reasonrank.window import WindowConfig, rerank


@dataclass
class RerankConfig:
    """`reasonrank rerank`: rerank candidate lists with one backend, write run.trec + calls.jsonl."""

    source: CandidateSource = field(default_factory=CandidateSource)
    backend: BackendConfig = field(default_factory=BackendConfig)
    window: WindowConfig = field(default_factory=WindowConfig)
    out: str = ""


# ----------------------------------------------------------------------------- flag tables
def _metric_list(text: str) -> tuple[str, ...]:
    return tuple(m.strip() for m in text.split(",") if m.strip())


def _source_flags(prefix: str, anchor: bool = False) -> list[Flag]:
    return [
        Flag("--candidates", f"{prefix}.candidates", "candidate lists: our JSONL or a RankLLM retrieve-results JSON"),
        Flag("--run", f"{prefix}.run", "first-stage TREC run (qid Q0 docid rank score tag)"),
        Flag("--corpus", f"{prefix}.corpus", "passages: docid<TAB>text TSV or JSONL (id + text/content/contents)"),
        Flag("--queries", f"{prefix}.queries", "queries: qid<TAB>query TSV"),
        Flag("--qrels", f"{prefix}.qrels", "judgments: qid iter docid grade"),
        Flag("--name", f"{prefix}.name", "dataset name used in tables and outputs", anchor=anchor),
    ]


def _backend_flags(prefix: str, required: bool) -> list[Flag]:
    return [
        Flag("--backend", f"{prefix}.kind", "generator backend", choices=BACKEND_KINDS, required=required, anchor=True),
        Flag("--model", f"{prefix}.model", "model path or hub id (openai: the served model id)", required=required),
        Flag("--base-url", f"{prefix}.base_url", "openai: server URL, e.g. http://127.0.0.1:8000/v1"),
        Flag("--api-key-env", f"{prefix}.api_key_env", "openai: environment variable holding the API key"),
        Flag("--max-in-flight", f"{prefix}.max_in_flight", "openai: concurrent requests", int),
        Flag("--timeout", f"{prefix}.timeout_s", "openai: seconds per request", float),
        Flag("--max-retries", f"{prefix}.max_retries", "openai: retries of a failed request", int),
        Flag("--tokenizer", f"{prefix}.tokenizer", "tokenizer for passage truncation (default: the model's)"),
        Flag("--device", f"{prefix}.device", "transformers: cpu, cuda, … (default: auto)"),
        Flag("--dtype", f"{prefix}.dtype", "local models: torch dtype (auto, bfloat16, float32, …)"),
        Flag("--adapter", f"{prefix}.adapter", "transformers: LoRA adapter directory"),
        Flag("--batch-size", f"{prefix}.batch_size", "transformers: prompts per generate() chunk", int),
        Flag("--tensor-parallel-size", f"{prefix}.tensor_parallel_size", "vllm: GPUs per model", int),
        Flag("--max-model-len", f"{prefix}.max_model_len", "vllm: context length", optional_int),
        Flag("--gpu-memory-utilization", f"{prefix}.gpu_memory_utilization", "vllm: memory share", float),
        Flag("--enforce-eager", f"{prefix}.enforce_eager", "vllm: disable CUDA graphs", kind="switch"),
    ]


def _method_help() -> str:
    own = [
        f"{m.name} ({m.paradigm}{': ' + m.describe_defaults() if m.describe_defaults() else ''})"
        for m in METHODS.values()
    ]
    return "reranking method, with its own defaults (any flag overrides them): " + "; ".join(own)


def _use_method(config, name: str):
    """--method NAME: the method's defaults first; the other flags are applied after them."""
    return replace(config, window=with_defaults(name, config.window))


_WINDOW_FLAGS = [
    Flag("--method", "window.method", _method_help(), choices=METHOD_NAMES, preset=_use_method),
    Flag("--window", "window.window", "passages per model call", int),
    Flag("--step", "window.step", "window stride", int),
    Flag("--top-k", "window.top_k", "first-stage depth and reranked head", int),
    Flag("--passes", "window.passes", "back-to-front sweeps", int),
    Flag("--max-passage-tokens", "window.max_passage_tokens", "truncate each passage to N tokens", int),
    Flag("--max-new-tokens", "window.generation.max_new_tokens", "generation budget per call", int),
    Flag("--temperature", "window.generation.temperature", "sampling temperature (0 = greedy)", float),
    Flag("--top-p", "window.generation.top_p", "nucleus sampling", float),
    Flag("--seed", "window.generation.seed", "sampling seed", optional_int),
    Flag("--sampling-top-k", "window.generation.top_k", "top-k sampling (0 = off)", int),
    Flag("--min-p", "window.generation.min_p", "min-p sampling (0 = off)", float),
    Flag("--num-child", "window.num_child", "setwise: children per heap node (a comparison shows N + 1)", int),
    Flag("--sort-k", "window.sort_k", "setwise: how many top passages the heapsort extracts", int),
    Flag("--max-query-tokens", "window.max_query_tokens", "truncate the query to N tokens (setwise)", optional_int),
    Flag(
        "--reasoning-budget",
        "window.reasoning_budget",
        "cap thinking at N tokens per call, then close the thought the method's way and let it answer "
        "(budget forcing; local models, or --tokenizer for a server)",
        optional_int,
    ),
    Flag(
        "--think-free",
        "window.think_free",
        "answer without thinking where the model's chat template can (Qwen3's enable_thinking); Rank1 skips its "
        "first pass",
        kind="switch",
    ),
]

RERANK_FLAGS = FlagTable(
    [
        *_source_flags("source"),
        *_backend_flags("backend", required=True),
        *_WINDOW_FLAGS,
        Flag("--out", "out", "output directory (run.trec, calls.jsonl, config.json)", required=True),
    ]
)

EVAL_FLAGS = FlagTable(
    [
        *_source_flags("trec", anchor=True),
        Flag("--bright-root", "bright.root", "BRIGHT directory (examples/, documents/, runs/ …)", anchor=True),
        Flag("--task", "bright.tasks", "BRIGHT task (repeat for several)", kind="repeat"),
        Flag("--bright-run", "bright.run", "BRIGHT first-stage run path with {task} (default: BM25 over documents)"),
        *_backend_flags("reranker", required=False),
        *_WINDOW_FLAGS,
        Flag("--rel-level", "rel_level", "lowest grade that Recall and MRR count as relevant", int),
        Flag("--metrics", "metrics", "comma-separated, e.g. ndcg@10,recall@10", _metric_list, render=",".join),
        Flag("--out", "out", "directory for results.json and the final runs"),
    ],
    # Optional parts of the config come into being when one of their flags is given.
    parts={"trec": CandidateSource, "bright": BrightSource, "reranker": BackendConfig},
)


# ----------------------------------------------------------------------------- commands
def run_rerank(
    config: RerankConfig,
    backend: Backend | None = None,
    on_step: Callable[[int, int], None] | None = None,
) -> list[RankResult]:
    """Load candidates, rerank them, write DIR/run.trec, DIR/calls.jsonl and DIR/config.json.

    Inputs are read before the backend is built, so a bad file fails before a model loads.
    """
    from reasonrank.backends import make_backend

    if not config.out:
        raise InputError("an output directory is required (--out)")
    lists = load_source(config.source, config.window.top_k).require_lists()
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    own = backend is None
    backend = backend or make_backend(config.backend)
    try:
        results = rerank(lists, backend, config.window, on_step)
    finally:
        if own:
            backend.close()
    write_trec_run(results, out / "run.trec")
    write_calls_jsonl(results, out / "calls.jsonl")
    from reasonrank.cli import config_to_command

    provenance = {"command": config_to_command(config), "config": asdict(config)}
    (out / "config.json").write_text(json.dumps(provenance, indent=2) + "\n", encoding="utf-8")
    return results


def _rerank_command(config: RerankConfig) -> int:
    with Progress("rerank") as progress:
        results = run_rerank(config, on_step=progress)
    calls = [call for result in results for call in result.calls]
    repaired = sum(1 for call in calls if call.reasons)
    print(
        f"reranked {len(results)} queries with {len(calls)} window calls "
        f"({repaired} needed repair); wrote {Path(config.out) / 'run.trec'} and "
        f"{Path(config.out) / 'calls.jsonl'}"
    )
    return 0


def _eval_command(config: EvalConfig) -> int:
    """Under a job, the table, what reproduces the run and the written files become the job's
    outputs (the Eval tab and the leaderboard read them from there)."""
    with Progress("rerank", unit="model call") as progress:
        report = evaluate(config, on_step=progress)
    print(format_table(report))
    outputs = EventLog.current().outputs
    if not config.out:
        outputs.update(table=report.rows(), costs=report.costs, reproduce=eval_reproduce(config))
        return 0
    from reasonrank.cli import config_to_command

    path = write_report(report, config, config.out, config_to_command(config))
    written = json.loads(path.read_text(encoding="utf-8"))
    outputs.update({key: written[key] for key in ("table", "costs", "reproduce", "runs", "calls")}, results=str(path))
    print(f"wrote {path}")
    return 0


@dataclass
class BrightMiniConfig:
    """`reasonrank bright-mini`: build the BRIGHT mini benchmark (reasonrank/bright_mini.py)."""

    source: str = ""  # a BRIGHT directory with the theoremqa_questions examples, qrels and gold docs
    out: str = ""


BRIGHT_MINI_FLAGS = FlagTable(
    [
        Flag(
            "--source",
            "source",
            "BRIGHT directory: examples/, qrels/ and docs/theoremqa_questions_gold_docs.json",
            required=True,
        ),
        Flag("--out", "out", "directory to write the mini benchmark to (official BRIGHT layout)", required=True),
    ]
)


def _bright_mini_command(config: BrightMiniConfig) -> int:
    from reasonrank.bright_mini import MINI_TASK, build_bright_mini

    built = build_bright_mini(config.source, config.out)
    EventLog.current().outputs.update(root=str(built.root), task=MINI_TASK)
    print(
        f"wrote the BRIGHT mini benchmark (a small stand-in, not BRIGHT) to {built.root}: {built.queries} queries, "
        f"{built.documents} documents, {built.judgments} judgments, {built.excluded_in_corpus} excluded pairs in "
        f"the corpus; evaluate it with: reasonrank eval --bright-root {built.root} --task {MINI_TASK}"
    )
    return 0


RANK_COMMANDS = [
    Command(
        "rerank", "rerank candidate lists and write run.trec + calls.jsonl", RERANK_FLAGS, RerankConfig, _rerank_command
    ),
    Command(
        "eval",
        "score a first stage (BM25 or a run) and optionally a reranker: nDCG@1/5/10, Recall@10, MRR@10",
        EVAL_FLAGS,
        EvalConfig,
        _eval_command,
    ),
    Command(
        "bright-mini",
        "build the BRIGHT mini benchmark (theoremqa_questions over its gold documents; a stand-in, not BRIGHT)",
        BRIGHT_MINI_FLAGS,
        BrightMiniConfig,
        _bright_mini_command,
    ),
]
