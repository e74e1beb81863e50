"""The `run` every listwise method shares: reasonrank.window's sliding window over the windows a
method describes as a `ListwiseFormat` (its prompt, passage preparation, parser and window
positions), which each method's own module defines."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from reasonrank.backends.base import Backend
from reasonrank.methods.base import Runner
from reasonrank.types import CandidateList, RankResult

if TYPE_CHECKING:
    from reasonrank.window import ListwiseFormat, WindowConfig


def sliding_window_runner(window_format: Callable[[], ListwiseFormat]) -> Runner:
    """A `Method.run` that reranks with the sliding window in the format `window_format()` gives.

    The format is built when the method runs, not when it is defined: reasonrank.window loads the
    prompts (and ftfy), which importing reasonrank.methods must not."""

    def run(
        lists: list[CandidateList],
        backend: Backend,
        config: WindowConfig,
        on_step: Callable[[int, int], None] | None = None,
    ) -> list[RankResult]:
        from reasonrank.window import sliding_window

        return sliding_window(lists, backend, config, on_step, window_format())

    return run
