"""The transformers backend with its generation run through `@spaces.GPU` (Hugging Face ZeroGPU).

Why not vLLM: ZeroGPU forks a worker per GPU call and forbids CUDA in the main process, which
vLLM initialises at start. So the model is loaded by the main process (on ZeroGPU, `spaces` turns
its `.to("cuda")` into a record that the worker replays) and only generation runs in the
decorated functions, which stream text back as they go (TextIteratorStreamer inside the worker).

Each call asks for GPU time in proportion to what it may generate (calls × max new tokens, see
`reasonrank.spaces_gpu`): one window per streamed call, the batch's windows for `generate`.
A ZeroGPU refusal (quota used up, duration too long) becomes a BackendError with a plain message,
so the Arena shows it in that lane. Off ZeroGPU the decorator does nothing and this is exactly
the transformers backend.

The decorated functions are module-level, take picklable arguments (a key to the loaded backend,
the messages, GenerationParams) and yield picklable tuples, because ZeroGPU ships them to and
from the forked worker; the worker finds the model in `_LOADED`, inherited from the parent.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from reasonrank.backends.base import BackendConfig, BackendError, DeltaSink
from reasonrank.backends.transformers import TransformersBackend
from reasonrank.spaces_gpu import call_seconds, gpu, on_zero_gpu, quota_message
from reasonrank.types import Completion, GenerationParams, Message

_LOADED: dict[int, ZeroGPUBackend] = {}
_MODELS: dict[tuple[str, str, str], Any] = {}  # ZeroGPU only: weights shared across backends
_KEYS = itertools.count(1)
_LOCK = threading.Lock()


def _stream_seconds(key: int, messages: list[Message], params: GenerationParams) -> int:
    return call_seconds(1, params.max_new_tokens)


def _batch_seconds(key: int, prompts: list[list[Message]], params: GenerationParams) -> int:
    return call_seconds(len(prompts), params.max_new_tokens)


@gpu(duration=_stream_seconds)
def _gpu_stream(key: int, messages: list[Message], params: GenerationParams) -> Iterator[tuple[str, object]]:
    """Runs on the GPU worker: yields ("text", piece) as generated, then ("done", Completion)."""
    pieces: list[str] = []
    backend = _loaded(key)
    done, closed = threading.Event(), threading.Event()
    outcome: dict[str, object] = {}

    def sink(_kind: str, text: str) -> None:
        if closed.is_set():  # the reader went away: stop generating at the next token
            raise BackendError("the reader stopped")
        pieces.append(text)

    def work() -> None:
        try:
            outcome["completion"] = TransformersBackend.stream(backend, messages, params, sink)
        except Exception as exc:  # raised again on the generator's thread below
            outcome["error"] = exc
        finally:
            done.set()

    # TransformersBackend.stream blocks until the end; its sink fills `pieces` from a worker
    # thread and this generator hands them out as they arrive.
    worker = threading.Thread(target=work, name="zerogpu-stream", daemon=True)
    worker.start()
    sent = 0
    try:
        while not done.wait(0.02) or sent < len(pieces):
            while sent < len(pieces):
                yield ("text", pieces[sent])
                sent += 1
    finally:
        closed.set()
        worker.join()
    if "error" in outcome:
        raise outcome["error"]
    yield ("done", outcome["completion"])


@gpu(duration=_batch_seconds)
def _gpu_generate(key: int, prompts: list[list[Message]], params: GenerationParams) -> list[Completion]:
    return TransformersBackend.generate(_loaded(key), prompts, params)


def _loaded(key: int) -> ZeroGPUBackend:
    """The backend `key` as this process knows it. ZeroGPU reuses a GPU worker forked before a
    later model was loaded, which therefore lacks it: models meant for ZeroGPU load at start."""
    backend = _LOADED.get(key)
    if backend is None:
        raise BackendError(
            "this model was loaded after the GPU worker started; declare it in REASONRANK_RERANKERS "
            "so the Space loads it at start"
        )
    return backend


class ZeroGPUBackend(TransformersBackend):
    """A local Hugging Face model whose generation is scheduled on ZeroGPU when there is one.

    On ZeroGPU the loaded weights are shared by every backend of the same model (`preload` at
    start, then the Arena's pool), so the GPU worker, forked at the first call, already holds them
    and a 7B model is not loaded twice.
    """

    name = "zerogpu"

    def _load_model(self, name: str, dtype: str):
        if not on_zero_gpu() or self.config.adapter:  # an adapter is merged into its own copy
            return super()._load_model(name, dtype)
        key = (name, dtype, str(self.device))
        with _LOCK:
            model = _MODELS.get(key)
        if model is None:
            model = super()._load_model(name, dtype)
            with _LOCK:
                model = _MODELS.setdefault(key, model)
        return model

    def __init__(self, config: BackendConfig) -> None:
        super().__init__(config)
        with _LOCK:
            self.key = next(_KEYS)
            _LOADED[self.key] = self

    def generate(self, prompts: list[list[Message]], params: GenerationParams) -> list[Completion]:
        try:
            return _gpu_generate(self.key, prompts, params)
        except Exception as exc:
            _raise_plain(exc)
            raise

    def stream(self, messages: list[Message], params: GenerationParams, on_delta: DeltaSink) -> Completion:
        completion = None
        events = _gpu_stream(self.key, messages, params)
        try:
            for kind, value in events:
                if kind == "done":
                    completion = value
                else:
                    on_delta("text", value)
        except Exception as exc:
            _raise_plain(exc)
            raise
        finally:
            events.close()
        if not isinstance(completion, Completion):
            raise BackendError("the GPU worker ended without a completion")
        return completion

    def close(self) -> None:
        with _LOCK:
            _LOADED.pop(self.key, None)
        if on_zero_gpu():  # emptying the CUDA cache here would initialise CUDA in the main process
            self.model = None
            return
        super().close()


def _raise_plain(exc: Exception) -> None:
    """Raise a ZeroGPU refusal again as a BackendError with a plain sentence; return otherwise."""
    message = quota_message(exc)
    if message:
        raise BackendError(message) from exc


def preload(configs: Sequence[BackendConfig]) -> list[str]:
    """Load the zerogpu models of `configs` now (on ZeroGPU: before launch, so their weights are
    packed with the app and shared by the backends made later); returns the models loaded."""
    loaded = []
    for config in configs:
        if config.kind == "zerogpu":
            ZeroGPUBackend(config)
            loaded.append(config.model)
    return loaded
