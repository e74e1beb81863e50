"""`reasonrank …` — the command-line composition root.

Each subcommand is a form over one config dataclass (RerankConfig, EvalConfig): a table of Flags
maps every option to a field path, and the same table builds the argparse parser, turns parsed
arguments into a config, and renders a config back into the equivalent command line. So the UI
can show (and a job can run) the exact command for whatever a user set in a form.

User errors (missing or malformed files, unknown backends, unreachable servers) print one line,
`error: …`, and exit with status 2. Set REASONRANK_DEBUG=1 to get the traceback instead.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from reasonrank.backends import BACKEND_KINDS
from reasonrank.backends.base import Backend, BackendConfig, BackendError
from reasonrank.bright import BrightSource
from reasonrank.evaluate import EvalConfig, evaluate, format_table, write_report
from reasonrank.flags import Flag, FlagTable, StrictParser
from reasonrank.io import InputError, write_calls_jsonl, write_trec_run
from reasonrank.retrieve import CandidateSource, load_source
from reasonrank.types import RankResult
from reasonrank.window import WindowConfig, rerank

PROG = "reasonrank"
EXIT_USAGE = 2


@dataclass
class RerankConfig:
    """`reasonrank rerank`: rerank candidate lists with one backend, write run.trec + calls.jsonl."""

    source: CandidateSource = field(default_factory=CandidateSource)
    backend: BackendConfig = field(default_factory=BackendConfig)
    window: WindowConfig = field(default_factory=WindowConfig)
    out: str = ""


# ----------------------------------------------------------------------------- flag tables
def _optional_int(text: str) -> int | None:
    return None if text.lower() == "none" else int(text)


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
        Flag("--backend", f"{prefix}.kind", "generator backend", choices=BACKEND_KINDS, required=required,
             anchor=True),
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
        Flag("--max-model-len", f"{prefix}.max_model_len", "vllm: context length", _optional_int),
        Flag("--gpu-memory-utilization", f"{prefix}.gpu_memory_utilization", "vllm: memory share", float),
        Flag("--enforce-eager", f"{prefix}.enforce_eager", "vllm: disable CUDA graphs", kind="switch"),
    ]


_WINDOW_FLAGS = [
    Flag("--window", "window.window", "passages per model call", int),
    Flag("--step", "window.step", "window stride", int),
    Flag("--top-k", "window.top_k", "first-stage depth and reranked head", int),
    Flag("--passes", "window.passes", "back-to-front sweeps", int),
    Flag("--max-passage-tokens", "window.max_passage_tokens", "truncate each passage to N tokens", int),
    Flag("--max-new-tokens", "window.generation.max_new_tokens", "generation budget per call", int),
    Flag("--temperature", "window.generation.temperature", "sampling temperature (0 = greedy)", float),
    Flag("--top-p", "window.generation.top_p", "nucleus sampling", float),
    Flag("--seed", "window.generation.seed", "sampling seed", _optional_int),
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


# ----------------------------------------------------------------------------- parser and rendering
@dataclass(frozen=True)
class Command:
    name: str
    help: str
    flags: FlagTable
    config_type: type
    handler: Callable[[Any], int]


def build_parser() -> argparse.ArgumentParser:
    parser = StrictParser(prog=PROG, description="Reasoning listwise reranking (ReasonRank).")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="show library warnings (e.g. server retries) on stderr"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=StrictParser)
    for command in COMMANDS.values():
        subparser = sub.add_parser(command.name, help=command.help, description=command.help)
        command.flags.add_to(subparser, command.config_type())
    return parser


def config_from_args(command: Command, args: argparse.Namespace) -> Any:
    """Start from the command's default config and set every flag the user gave."""
    return command.flags.config_from(args, command.config_type())


def parse_command(argv: Sequence[str] | str) -> RerankConfig | EvalConfig:
    """A command line (string or argv list, with or without the leading `reasonrank`) → config."""
    words = shlex.split(argv) if isinstance(argv, str) else list(argv)
    if words and words[0] == PROG:
        words = words[1:]
    args = build_parser().parse_args(words)
    if args.command is None:
        raise InputError(f"no command given; choose one of: {', '.join(COMMANDS)}")
    return config_from_args(COMMANDS[args.command], args)


def config_to_argv(config: RerankConfig | EvalConfig) -> list[str]:
    """The argv (without the program name) that parses back to `config`; defaults are left out."""
    command = next((c for c in COMMANDS.values() if isinstance(config, c.config_type)), None)
    if command is None:
        raise TypeError(f"no command takes a {type(config).__name__}")
    return [command.name, *command.flags.to_argv(config)]


def config_to_command(config: RerankConfig | EvalConfig) -> str:
    """The shell command a user can paste to run exactly this config."""
    return shlex.join([PROG, *config_to_argv(config)])


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
    provenance = {"command": config_to_command(config), "config": asdict(config)}
    (out / "config.json").write_text(json.dumps(provenance, indent=2) + "\n", encoding="utf-8")
    return results


class _Progress:
    """A tqdm bar over window positions, opened at the first finished step so that a run that
    fails before any model call leaves stderr with nothing but the error line."""

    def __init__(self, desc: str) -> None:
        self.desc = desc
        self.bar = None

    def __enter__(self) -> "_Progress":
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.bar is not None:
            self.bar.close()

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=self.desc, unit="window", file=sys.stderr)
        self.bar.update(done - self.bar.n)


def _rerank_command(config: RerankConfig) -> int:
    with _Progress("rerank") as progress:
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
    with _Progress("rerank") as progress:
        report = evaluate(config, on_step=progress)
    print(format_table(report))
    if config.out:
        path = write_report(report, config, config.out, config_to_command(config))
        print(f"wrote {path}")
    return 0


COMMANDS: dict[str, Command] = {
    "rerank": Command(
        "rerank", "rerank candidate lists and write run.trec + calls.jsonl", RERANK_FLAGS, RerankConfig, _rerank_command
    ),
    "eval": Command(
        "eval",
        "score a first stage (BM25 or a run) and optionally a reranker: nDCG@1/5/10, Recall@10, MRR@10",
        EVAL_FLAGS,
        EvalConfig,
        _eval_command,
    ),
}


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _configure_logging(verbose: bool) -> None:
    """Library warnings (retries, fallbacks) only with -v: by default stderr carries the progress
    bar and, on failure, the one error line."""
    import logging

    logging.basicConfig(
        level=logging.WARNING if verbose else logging.ERROR, format="%(levelname)s %(name)s: %(message)s"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `reasonrank` console command; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        _configure_logging(args.verbose)
        if args.command is None:
            parser.print_help(sys.stderr)
            return EXIT_USAGE
        command = COMMANDS[args.command]
        return command.handler(config_from_args(command, args))
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except (InputError, BackendError, ValueError, OSError) as exc:
        if os.environ.get("REASONRANK_DEBUG"):
            raise
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
