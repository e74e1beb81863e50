"""What an Arena run is asked to run: the reranker kinds, a named reranker (`RerankerSpec`), a
model lane running another method (`with_method`), the settings such a lane takes
(`lane_config`) and the checks on a requested line-up (`check_specs`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

from reasonrank.backends import BACKEND_KINDS
from reasonrank.backends.base import BackendConfig
from reasonrank.io import InputError
from reasonrank.methods import get_method, with_defaults
from reasonrank.types import CandidateList, Label
from reasonrank.window import WindowConfig

BM25 = "bm25"
LABELS = "labels"
RECORDED = "recorded"
#: the reranker kinds the Arena runs: model backends, the two baselines and recorded runs.
ARENA_KINDS = (*BACKEND_KINDS, BM25, LABELS, RECORDED)
MAX_RERANKERS = 4

#: Finds the stored label of a candidate list (by its dataset and qid), or None when there is none.
LabelLookup = Callable[[CandidateList], Label | None]
#: joins a registry entry and a method in a lane's name ("tiny · rank1")
METHOD_JOIN = " · "


@dataclass(frozen=True)
class RerankerSpec:
    """A named reranker as the registry holds it: a kind, a model and the backend's options."""

    name: str
    backend: str  # one of ARENA_KINDS
    model: str = ""
    options: Mapping[str, Any] = field(default_factory=dict)
    method: str = ""  # a reasonrank.methods name; "" runs ReasonRank's sliding window

    def backend_config(self) -> BackendConfig:
        """The BackendConfig of a model reranker; an option that is no BackendConfig field fails."""
        if self.backend not in BACKEND_KINDS:
            raise InputError(f"reranker {self.name!r} ({self.backend}) has no model backend")
        known = {f.name for f in fields(BackendConfig)} - {"kind", "model"}
        unknown = sorted(set(self.options) - known)
        if unknown:
            raise InputError(
                f"reranker {self.name!r}: unknown option(s) {', '.join(unknown)}; valid: {', '.join(sorted(known))}"
            )
        return BackendConfig(kind=self.backend, model=self.model, **dict(self.options))


def with_method(spec: RerankerSpec, method: str) -> RerankerSpec:
    """`spec`'s model run with `method`, as the lane "<entry> · <method>"."""
    if spec.backend not in BACKEND_KINDS:
        raise InputError(f"reranker {spec.name!r} ({spec.backend}) has no model, so it runs no method")
    get_method(method)  # an unknown name fails here, with the list of methods
    return RerankerSpec(f"{spec.name}{METHOD_JOIN}{method}", spec.backend, spec.model, spec.options, method)


def lane_config(config: WindowConfig, method: str) -> WindowConfig:
    """The config a lane running `method` uses: the method's defaults, then the Arena's own
    settings (top k, window, step, max new tokens) on top, so every lane gets the same form."""
    if not method:
        return config
    own = with_defaults(method, config)
    return replace(
        own,
        top_k=config.top_k,
        window=config.window,
        step=config.step,
        generation=replace(own.generation, max_new_tokens=config.generation.max_new_tokens),
    )


def check_specs(specs: Sequence[RerankerSpec]) -> None:
    """Refuse a line-up the Arena cannot run: 1 to MAX_RERANKERS distinct names, known kinds,
    and a method only on a model reranker."""
    if not 1 <= len(specs) <= MAX_RERANKERS:
        raise InputError(f"pick 1 to {MAX_RERANKERS} rerankers, got {len(specs)}")
    names = [spec.name for spec in specs]
    if len(set(names)) != len(names):
        raise InputError(f"each reranker may run once; got {names}")
    for spec in specs:
        if spec.backend not in ARENA_KINDS:
            raise InputError(
                f"reranker {spec.name!r}: unknown backend {spec.backend!r}; expected one of {', '.join(ARENA_KINDS)}"
            )
        if spec.method:
            if spec.backend not in BACKEND_KINDS:
                raise InputError(f"reranker {spec.name!r} ({spec.backend}) has no model, so it runs no method")
            get_method(spec.method)
