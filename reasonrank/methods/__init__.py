"""Reranking methods, one module each, run through the same backends and call records.

`get_method(name).run(lists, backend, config, on_step)` reranks; `with_defaults(name, config)`
gives a config with the method's own defaults (what its repository's README runs), which the
CLI applies before the user's flags.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from reasonrank.io import InputError
from reasonrank.methods.base import Method
from reasonrank.methods.grouprank import GROUPRANK
from reasonrank.methods.rank1 import RANK1
from reasonrank.methods.rank_k import RANK_K
from reasonrank.methods.rank_r1 import RANK_R1, RANK_R1_V02
from reasonrank.methods.rearank import REARANK
from reasonrank.methods.reasonrank import REASONRANK, REASONRANK_QWEN3

if TYPE_CHECKING:
    from reasonrank.window import WindowConfig

METHODS: dict[str, Method] = {
    m.name: m for m in (REASONRANK, REASONRANK_QWEN3, REARANK, RANK_K, RANK1, RANK_R1, RANK_R1_V02, GROUPRANK)
}
METHOD_NAMES = tuple(METHODS)


def get_method(name: str) -> Method:
    method = METHODS.get(name)
    if method is None:
        raise InputError(f"unknown method {name!r}; choose one of: {', '.join(METHOD_NAMES)}")
    return method


def with_defaults(name: str, config: WindowConfig) -> WindowConfig:
    """`config` switched to method `name` with that method's default settings."""
    return get_method(name).defaults(replace(config, method=name))


__all__ = ["METHODS", "METHOD_NAMES", "Method", "get_method", "with_defaults"]
