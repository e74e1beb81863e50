"""ReasonRank Studio's library: reasoning listwise reranking, parsing, metrics and rewards.

The names in `__all__` are the public entry points. They load on first use (PEP 562), so
`import reasonrank` stays cheap and never pulls in gradio, torch, transformers or the database;
a backend's heavy libraries load only when `make_backend` builds that backend.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

# public name -> the module that defines it
_EXPORTS = {
    "rerank": "reasonrank.window",
    "WindowConfig": "reasonrank.window",
    "BackendConfig": "reasonrank.backends",
    "BackendError": "reasonrank.backends",
    "make_backend": "reasonrank.backends",
    "CandidateList": "reasonrank.types",
    "Passage": "reasonrank.types",
    "Query": "reasonrank.types",
    "RankResult": "reasonrank.types",
    "WindowCall": "reasonrank.types",
    "GenerationParams": "reasonrank.types",
    "parse_ranking": "reasonrank.parse",
    "build_messages": "reasonrank.prompts",
    "prepare_passages": "reasonrank.prompts",
    "prepare_query": "reasonrank.prompts",
    "ndcg_at_k": "reasonrank.metrics",
    "recall_at_k": "reasonrank.metrics",
    "mrr_at_k": "reasonrank.metrics",
    "evaluate_run": "reasonrank.metrics",
    "mean_metrics": "reasonrank.metrics",
    "reward_terms": "reasonrank.metrics",
    "ranking_reward": "reasonrank.metrics",
    "format_reward": "reasonrank.metrics",
    "read_candidate_file": "reasonrank.io",
    "read_qrels": "reasonrank.io",
    "InputError": "reasonrank.errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'reasonrank' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
