"""Backend for any OpenAI-compatible chat-completions server (vLLM serve, SGLang, DeepSeek, OpenAI).

Why our own retry loop instead of the SDK's: we need to count retries by kind for the UI, honour
Retry-After, treat a malformed body as transient, and turn permanent failures (bad key, unknown
model, wrong URL) into one-line `BackendError`s at once. So the SDK client runs with
`max_retries=0`, and a fresh client and event loop serve each `generate` call, which lets the
backend be used from plain sync code, from worker threads and from inside a running loop alike.
The policy (what is transient, how long to wait) is `openai_retry`; the wire format `openai_wire`.
The API key is read from the environment when a batch starts and is never stored or logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import os
import ssl
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from reasonrank.aio import all_or_first_failure, within
from reasonrank.backends.base import Backend, BackendConfig, BackendError, DeltaSink, TokenizerLike
from reasonrank.backends.openai_retry import (
    CONNECT_RETRIES,
    RetriesExhausted,
    Transient,
    classify,
    one_line,
    retry_delay,
    server_message,
)
from reasonrank.backends.openai_wire import post_chat, post_text, read_stream, to_completion, to_text_completion
from reasonrank.redact import redact
from reasonrank.types import Completion, GenerationParams, Message

logger = logging.getLogger(__name__)

T = TypeVar("T")


class Complete(Protocol):
    """What `OpenAIBackend.session` yields: one chat request (with retries) per call; given an
    `on_delta`, the request streams and its deltas reach it."""

    def __call__(self, messages: list[Message], on_delta: DeltaSink | None = None, /) -> Awaitable[Completion]: ...


#: seconds allowed for the GET /v1/models call that explains a 404.
MODEL_LIST_TIMEOUT_S = 5.0


@dataclass
class OpenAIStats:
    """Cumulative request counts of one backend, for progress displays and diagnostics."""

    requests: int = 0  # HTTP attempts sent (first tries and retries)
    completions: int = 0  # prompts answered
    failures: int = 0  # prompts given up on (each raised a BackendError)
    retries: Counter = field(default_factory=Counter)  # kind -> count
    tokens_in: int = 0
    tokens_out: int = 0
    last_error: str | None = None

    @property
    def total_retries(self) -> int:
        return sum(self.retries.values())


class OpenAIBackend(Backend):
    """Concurrent chat completions with a cap on requests in flight, timeouts and retries."""

    name = "openai"

    def __init__(self, config: BackendConfig) -> None:
        if not config.model:
            raise BackendError("the openai backend needs a model name (the id the server serves)")
        if config.base_url and not config.base_url.startswith(("http://", "https://")):
            raise BackendError(f"base_url must start with http:// or https://, got {config.base_url!r}")
        if config.max_in_flight < 1 or config.timeout_s <= 0 or config.max_retries < 0:
            raise BackendError("openai backend needs max_in_flight >= 1, timeout_s > 0 and max_retries >= 0")
        if importlib.util.find_spec("openai") is None:
            raise BackendError("the openai backend needs the openai package: pip install openai")
        self.config = config
        self.url = config.base_url or "https://api.openai.com/v1"
        self.stats = OpenAIStats()
        self.tokenizer: TokenizerLike | None = _load_tokenizer(config.tokenizer) if config.tokenizer else None
        self._ssl_context: ssl.SSLContext | None = None  # built on first use, see `_client`

    def generate(self, prompts: list[list[Message]], params: GenerationParams) -> list[Completion]:
        if not prompts:
            return []
        return _run_sync(self._generate_all(prompts, params))

    def complete(self, texts: list[str], params: GenerationParams) -> list[Completion]:
        """Raw text prompts through POST /completions (vLLM, SGLang; not OpenAI's chat models).

        Log-probabilities are asked for with vLLM's `return_tokens_as_token_ids`, so each token
        comes back as "token_id:N" and is keyed by its id; a server that sends token text instead
        has it mapped through `config.tokenizer` (texts that are not one token are dropped).
        """
        if not texts:
            return []
        request = self._request(params)
        if params.logprobs:
            request.update(logprobs=params.logprobs, return_tokens_as_token_ids=True)
        if params.allowed_token_ids:
            request["allowed_token_ids"] = list(params.allowed_token_ids)

        async def run_all() -> list[Completion]:
            client = self._client()
            limit = asyncio.Semaphore(self.config.max_in_flight)
            try:
                return await all_or_first_failure(
                    self._generate_one(client, limit, text, request, None, raw=True) for text in texts
                )
            finally:
                await client.close()

        return _run_sync(run_all())

    def stream(self, messages: list[Message], params: GenerationParams, on_delta: DeltaSink) -> Completion:
        """One chat completion with `stream=True`: content and `reasoning_content` / `reasoning`
        deltas reach `on_delta` as the server sends them, with the same retries as `generate`
        (a retried attempt is announced with a "reset" delta)."""
        return _run_sync(self._stream(list(messages), params, on_delta))

    # -- one batch -------------------------------------------------------------------------
    def _client(self) -> Any:
        """A client for one batch or stream (a client is bound to the event loop it runs on).

        Only the SSL context outlives it: loading the CA store is slow (docs/benchmarks.md), and
        would otherwise delay every streamed window's first token. The HTTP client gets the
        SDK's own defaults (connection limits, redirects) and the backend's `timeout_s`.
        """
        import httpx2
        import openai

        if self._ssl_context is None:
            self._ssl_context = httpx2.create_ssl_context()  # what the SDK's default client builds
        return openai.AsyncOpenAI(
            base_url=self.url,
            api_key=os.environ.get(self.config.api_key_env) or "EMPTY",
            max_retries=0,
            timeout=self.config.timeout_s,
            http_client=openai.DefaultAsyncHttpxClient(
                base_url=self.url, timeout=self.config.timeout_s, verify=self._ssl_context
            ),
        )

    def _request(self, params: GenerationParams) -> dict[str, Any]:
        request: dict[str, Any] = {
            "model": self.config.model,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "max_tokens": params.max_new_tokens,
        }
        if params.seed is not None:
            request["seed"] = params.seed
        # vLLM / SGLang sampling extensions, sent only when set (OpenAI itself rejects them)
        if params.top_k > 0:
            request["top_k"] = params.top_k
        if params.min_p > 0:
            request["min_p"] = params.min_p
        if params.stop:
            request["stop"] = list(params.stop)
        return request

    @contextlib.asynccontextmanager
    async def session(self, params: GenerationParams) -> AsyncIterator[Complete]:
        """An async `complete(messages, on_delta=None) -> Completion` that shares one client and
        the in-flight limit (with `on_delta`, the request streams its deltas there).

        For callers that take completions one at a time as they finish (teacher synthesis stores
        each label at once) instead of a whole batch: the same retries and one-line errors as
        `generate`, and a request whose retries ran out raises `RetriesExhausted`.
        """
        client = self._client()
        request = self._request(params)
        limit = asyncio.Semaphore(self.config.max_in_flight)
        try:
            yield lambda messages, on_delta=None: self._generate_one(client, limit, list(messages), request, on_delta)
        finally:
            await client.close()

    async def _generate_all(self, prompts: list[list[Message]], params: GenerationParams) -> list[Completion]:
        async with self.session(params) as complete:
            # the first failure cancels the rest and is raised
            return await all_or_first_failure(complete(messages) for messages in prompts)

    async def _stream(self, messages: list[Message], params: GenerationParams, on_delta: DeltaSink) -> Completion:
        async with self.session(params) as complete:
            return await complete(messages, on_delta)

    async def _generate_one(
        self,
        client: Any,
        limit: asyncio.Semaphore,
        messages: list[Message] | str,
        request: dict[str, Any],
        on_delta: DeltaSink | None = None,
        raw: bool = False,
    ) -> Completion:
        """One request with retries: a chat request, or with `raw` a text completion of the
        prompt string `messages`."""
        attempt = 0
        while True:
            async with limit:
                self.stats.requests += 1
                started = time.monotonic()
                try:
                    if raw:
                        response = await within(self.config.timeout_s, post_text(client, messages, request))
                        completion = to_text_completion(response, time.monotonic() - started, self._token_id)
                    elif on_delta is None:
                        response = await within(self.config.timeout_s, post_chat(client, messages, request))
                        completion = to_completion(response, time.monotonic() - started)
                    else:
                        if attempt:
                            on_delta("reset", "")
                        completion = await within(
                            self.config.timeout_s, read_stream(client, messages, request, on_delta, started)
                        )
                except BackendError:  # raised by `on_delta` (e.g. a viewer that stopped): not ours
                    raise
                except Exception as exc:  # sorted below into transient / permanent
                    failure = classify(exc, self.config.timeout_s)
                    if not isinstance(failure, Transient):
                        raise self._fail(await self._explain(client, failure)) from None
                    budget = CONNECT_RETRIES if failure.kind == "connect" else self.config.max_retries
                    if attempt >= min(budget, self.config.max_retries):
                        raise self._fail(
                            self._exhausted(failure, attempt + 1), None if failure.kind == "connect" else failure.kind
                        ) from None
                else:
                    self.stats.completions += 1
                    self.stats.tokens_in += completion.tokens_in
                    self.stats.tokens_out += completion.tokens_out
                    return completion
            delay = retry_delay(attempt, failure.retry_after)
            attempt += 1
            self.stats.retries[failure.kind] += 1
            logger.warning(
                "%s at %s; retry %d/%d in %.1fs",
                self._redact(failure.detail),
                self.url,
                attempt,
                self.config.max_retries,
                delay,
            )
            await asyncio.sleep(delay)

    def _token_id(self, token: str) -> int | None:
        """The id of a log-probability key: "token_id:N", else token text through the tokenizer."""
        if token.startswith("token_id:"):
            return int(token[len("token_id:") :])
        if self.tokenizer is None or not callable(self.tokenizer):
            return None
        ids = self.tokenizer(token, add_special_tokens=False).input_ids
        return ids[0] if len(ids) == 1 else None

    # -- error messages --------------------------------------------------------------------
    def _redact(self, text: str) -> str:
        """`text` without the API key's value (a server may echo the Authorization header)."""
        return redact(text, [os.environ.get(self.config.api_key_env)])

    def _fail(self, message: str, exhausted_kind: str | None = None) -> BackendError:
        message = self._redact(message)
        self.stats.failures += 1
        self.stats.last_error = message
        return BackendError(message) if exhausted_kind is None else RetriesExhausted(message, exhausted_kind)

    def _exhausted(self, failure: Transient, attempts: int) -> str:
        if failure.kind == "connect":
            return (
                f"cannot connect to {self.url} ({failure.detail}) after {attempts} attempts; "
                "is the server running and is base_url right?"
            )
        return f"server at {self.url} failed {attempts} attempts; last: {failure.detail}"

    async def _explain(self, client: Any, exc: Exception) -> str:
        """One line naming the cause of a permanent failure, with the fix when we know it."""
        import openai

        if not isinstance(exc, openai.APIStatusError):
            return f"request to {self.url} failed: {one_line(repr(exc))}"
        status, detail = exc.status_code, server_message(exc)
        if status == 401:
            key_state = "is set" if os.environ.get(self.config.api_key_env) else "is not set"
            return (
                f"server at {self.url} rejected the API key (HTTP 401: {detail}); "
                f"environment variable {self.config.api_key_env} {key_state}"
            )
        if status == 403:
            return f"server at {self.url} denied access (HTTP 403: {detail})"
        if status == 404:
            served = await _served_models(client)
            if served is not None and self.config.model not in served:
                return (
                    f"unknown model {self.config.model!r} at {self.url}; the server serves: "
                    f"{', '.join(served) or '(none)'}"
                )
            return f"not found at {self.url} (HTTP 404: {detail}); check that base_url ends in /v1"
        return f"server at {self.url} rejected the request (HTTP {status}: {detail})"


async def _served_models(client: Any) -> list[str] | None:
    """Model ids from GET /v1/models, or None when the listing itself fails (it is only a hint)."""
    import openai

    try:
        page = await within(MODEL_LIST_TIMEOUT_S, client.models.list())
        return [model.id for model in page.data]
    except (openai.OpenAIError, TimeoutError, ValueError, AttributeError):
        return None


def _load_tokenizer(name: str) -> TokenizerLike:
    """The model's tokenizer, so passages are truncated in model tokens as the paper does."""
    try:
        from transformers import AutoTokenizer
    except ImportError:
        raise BackendError("config.tokenizer needs the transformers package: pip install transformers") from None
    try:
        return AutoTokenizer.from_pretrained(name)
    except (OSError, ValueError) as exc:
        raise BackendError(f"cannot load tokenizer {name!r}: {one_line(str(exc))}") from None


def _run_sync(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run on a fresh event loop; from inside a running loop, on a worker thread's loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="openai-backend") as pool:
        return pool.submit(asyncio.run, coroutine).result()
