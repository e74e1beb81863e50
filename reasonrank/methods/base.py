"""What a reranking method is: its prompt, decoding defaults, parser and aggregation, as one spec.

A method turns candidate lists into rankings by driving a `Backend`, batched across queries: a
listwise method sends one window position of every query in one `generate`, a pointwise method
every query-passage pair of a step, a setwise method one comparison per query per sort round.
Every model call is kept as a `WindowCall` (prompt, raw output, reasoning, parsed result, repair
reasons, tokens, seconds), so the same inspector shows any method's calls.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from reasonrank.backends.base import Backend, BackendError
from reasonrank.methods.budget import Thinking
from reasonrank.types import CandidateList, Completion, GenerationParams, RankResult

if TYPE_CHECKING:
    from reasonrank.window import WindowConfig

Runner = Callable[[list[CandidateList], Backend, "WindowConfig", "Callable[[int, int], None] | None"], list[RankResult]]


@dataclass(frozen=True)
class Method:
    """One reranking method as its public code runs it.

    `source` cites the repository and commit the prompt and settings were read from;
    `checkpoints` the published model ids it was trained for; `defaults` the settings its
    README's command uses, as a function of a config (only what differs from `WindowConfig()`).
    `thinking` says how its model closes a thought (for a reasoning budget; None: no budget);
    `budgets_itself` that `run` applies the budget and think-free switch on its own (Rank1).
    """

    name: str
    paradigm: str  # listwise | pointwise | setwise
    summary: str
    source: str
    checkpoints: tuple[str, ...]
    run: Runner
    defaults: Callable[[WindowConfig], WindowConfig] = lambda config: config
    thinking: Thinking | None = None
    budgets_itself: bool = False

    def describe_defaults(self) -> str:
        """The settings this method changes from the plain defaults, for `--help`."""
        from reasonrank.window import WindowConfig

        base, own = WindowConfig(), self.defaults(WindowConfig(method=self.name))
        changed = []
        for name in ("window", "step", "top_k", "max_passage_tokens", "num_child", "sort_k", "max_query_tokens"):
            if getattr(own, name) != getattr(base, name):
                changed.append(f"{name}={getattr(own, name)}")
        for name in ("max_new_tokens", "temperature", "top_p", "top_k", "min_p"):
            if getattr(own.generation, name) != getattr(base.generation, name):
                label = "sampling_top_k" if name == "top_k" else name
                changed.append(f"{label}={getattr(own.generation, name)}")
        return ", ".join(changed)


def generate_checked(backend: Backend, prompts: list, params: GenerationParams, what: str) -> list[Completion]:
    """`backend.generate` that insists on one completion per prompt."""
    completions = backend.generate(prompts, params)
    if len(completions) != len(prompts):
        raise BackendError(
            f"backend {backend.name!r} returned {len(completions)} completions for {len(prompts)} prompts ({what})"
        )
    return completions


def with_generation(config: WindowConfig, **changes: object) -> WindowConfig:
    """`config` with its generation settings changed."""
    return replace(config, generation=replace(config.generation, **changes))
