"""What a benchmark run must record to be reproduced: the reranker and its settings, the prompt,
the first stage, the inputs' bytes and the library versions.

A score is only comparable to another when all of these match; a leaderboard row that cannot
say which prompt, window, seed or excluded-id rule produced it is not worth keeping. Nothing here
imports a model library: versions are read from installed package metadata.
"""

from __future__ import annotations

import hashlib
import json
import platform
import sys
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reasonrank.bright import documents_path, examples_path, task_name
from reasonrank.prompts import build_messages
from reasonrank.retrieve import BM25_B, BM25_K1

if TYPE_CHECKING:
    from reasonrank.evaluate import EvalConfig

EXCLUSION_RULE = (
    "BRIGHT's rule: each query's excluded_ids are removed from its candidates and its judgments "
    "before reranking and scoring"
)
# Distributions whose version changes what a run computes (absent ones are recorded as None).
LIBRARIES = ("reasonrank-studio", "torch", "transformers", "peft", "vllm", "openai", "bm25s", "ftfy", "numpy")


def library_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def prompt_sha256() -> str:
    """A fingerprint of ReasonRank's ranking prompt's fixed text: the [system, user] messages built
    for placeholder query and passages. Any change to the template's bytes changes it. Other
    methods' prompts are pinned by the repository commit in `method_source`."""
    probe = build_messages("{query}", ["{passage 1}", "{passage 2}"])
    return hashlib.sha256(json.dumps(probe, ensure_ascii=False).encode("utf-8")).hexdigest()


def file_sha256(path: str | Path) -> str | None:
    """The file's sha256 (streamed), or None when it is not a readable file."""
    path = Path(path)
    if not path.is_file():
        return None
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _bm25() -> dict[str, Any]:
    return {"kind": "bm25", "library": "bm25s", "k1": BM25_K1, "b": BM25_B, "stopwords": "en"}


def _first_stages(config: EvalConfig) -> tuple[dict[str, dict], list[str]]:
    """Per dataset, how its candidates were found, and every input file the run read."""
    stages: dict[str, dict] = {}
    files: list[str] = []
    if config.trec is not None:
        source = config.trec
        files += [p for p in (source.candidates, source.run, source.corpus, source.queries, source.qrels) if p]
        if source.candidates:
            stages[source.name] = {"kind": "candidates", "path": source.candidates}
        elif source.run:
            stages[source.name] = {"kind": "run", "path": source.run}
        else:
            stages[source.name] = _bm25()
    if config.bright is not None and config.bright.root:
        for task in config.bright.tasks:
            name = task_name(task)
            run = config.bright.run.format(task=name) if config.bright.run else None
            stages[name] = {"kind": "run", "path": run} if run else _bm25()
            documents = documents_path(config.bright.root, name)
            files += [str(examples_path(config.bright.root, name))] + ([str(documents)] if documents else [])
            files += [run] if run else []
    return stages, files


def eval_reproduce(config: EvalConfig) -> dict[str, Any]:
    """Everything besides the data needed to re-run `config` and expect the same numbers."""
    from reasonrank.methods import get_method

    window = config.window
    stages, files = _first_stages(config)
    return {
        "reranker": asdict(config.reranker) if config.reranker is not None else None,
        "backend": config.reranker.kind if config.reranker is not None else None,
        "method": window.method,
        "method_source": get_method(window.method).source,
        "num_child": window.num_child,
        "sort_k": window.sort_k,
        "max_query_tokens": window.max_query_tokens,
        "reasoning_budget": window.reasoning_budget,
        "think_free": window.think_free,
        "window": window.window,
        "step": window.step,
        "top_k": window.top_k,
        "passes": window.passes,
        "max_passage_tokens": window.max_passage_tokens,
        "generation": asdict(window.generation),
        "seed": window.generation.seed,
        "prompt_sha256": prompt_sha256(),
        "excluded_id_rule": EXCLUSION_RULE,
        "rel_level": config.rel_level,
        "first_stage": stages,
        "inputs": {path: file_sha256(path) for path in dict.fromkeys(files)},
        "versions": library_versions(),
        "platform": platform.platform(),
        "executable": sys.executable,
    }
