"""The generator contract every backend implements, and the one config object that selects one.

A backend is batched by contract: the sliding window hands it every prompt of one window
position across all queries at once, so backends can batch (vLLM, transformers) or run requests
concurrently (OpenAI-compatible servers).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from reasonrank.types import Completion, GenerationParams, Message


class TokenizerLike(Protocol):
    """The slice of a Hugging Face tokenizer that passage truncation needs."""

    def tokenize(self, text: str) -> list[str]: ...

    def convert_tokens_to_string(self, tokens: list[str]) -> str: ...


#: Receives streamed output as (kind, text): kind "reasoning" for a separately returned reasoning
#: field, "text" for the answer text (which holds inline <think> reasoning when the server has no
#: reasoning parser), "reset" (empty text) when a retried request starts over, so a viewer clears
#: what it has shown of the failed attempt.
DeltaSink = Callable[[str, str], None]


class BackendError(RuntimeError):
    """A failure a user can act on (unreachable server, bad model name, missing package).

    The CLI prints its message on one line instead of a traceback.
    """


class Backend(ABC):
    """Turns a batch of chat prompts into completions, one per prompt, in order."""

    name: str = "backend"

    #: tokenizer used to truncate passages to N model tokens; None means whitespace words.
    tokenizer: TokenizerLike | None = None

    @abstractmethod
    def generate(self, prompts: list[list[Message]], params: GenerationParams) -> list[Completion]:
        """Return exactly one Completion per prompt, in the same order."""

    def complete(self, texts: list[str], params: GenerationParams) -> list[Completion]:
        """Continue raw text prompts (no chat template), one Completion per text, in order.

        For methods whose reference feeds the model plain text (Rank1); backends that cannot
        send raw text say so.
        """
        raise BackendError(f"the {self.name} backend cannot continue raw text prompts")

    def stream(self, messages: list[Message], params: GenerationParams, on_delta: DeltaSink) -> Completion:
        """Generate one completion, handing its text to `on_delta` as it is produced.

        Why a separate, unbatched method: watching a model think (the Arena) needs tokens as they
        come, while reranking at scale needs batches. The default generates the whole completion
        and reports it as one delta each for reasoning and text, so every backend can be watched;
        backends that can stream (openai, transformers) override it.
        """
        [completion] = self.generate([messages], params)
        if completion.reasoning:
            on_delta("reasoning", completion.reasoning)
        if completion.text:
            on_delta("text", completion.text)
        return completion

    def close(self) -> None:  # noqa: B027 - an optional hook with a default, not abstract
        """Release engines, threads or connections; the default has nothing to release."""


@dataclass
class BackendConfig:
    """Everything needed to build a backend; shared by the CLI flags and the UI form.

    Fields that a backend does not use are ignored by it (e.g. `base_url` for vllm).
    """

    kind: str = "transformers"  # transformers | openai | vllm
    model: str = ""
    # openai
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    max_in_flight: int = 16
    timeout_s: float = 600.0
    max_retries: int = 5
    # local models (transformers, vllm)
    tokenizer: str | None = None  # path or hub id; defaults to `model`
    device: str | None = None  # transformers: "cpu", "cuda", … (auto when None)
    dtype: str = "auto"
    adapter: str | None = None  # LoRA adapter directory
    batch_size: int = 8  # transformers: prompts per generate() chunk
    tensor_parallel_size: int = 1  # vllm
    max_model_len: int | None = None  # vllm
    gpu_memory_utilization: float = 0.9  # vllm
    enforce_eager: bool = False  # vllm

    def __post_init__(self) -> None:
        from reasonrank.redact import check_env_name, check_url

        check_url(self.base_url)
        check_env_name(self.api_key_env)

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)
