"""The chat-completions wire format for the OpenAI backend: posting a request, reading a reply
and reading a stream of deltas, with reasoning taken from wherever the server puts it.

Kept apart from the retry policy (`openai_retry.py`) and the error messages (`openai.py`): this
is what changes when a server speaks a slightly different dialect (DeepSeek's
`reasoning_content`, vLLM's `reasoning`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from reasonrank.backends.base import DeltaSink
from reasonrank.types import Completion, Message


async def post_chat(client: Any, messages: list[Message], request: dict[str, Any]) -> Any:
    """POST /chat/completions with the body as is: `chat.completions.create` walks every message
    through the SDK's type-driven param transform, CPU time that grows with the turns of a
    teacher prompt and would cap synthesis throughput (docs/benchmarks.md). Our body is plain JSON already
    (the transform would change nothing), so we use the SDK's documented low-level `post`."""
    from openai.types.chat import ChatCompletion

    return await client.post("/chat/completions", body={"messages": messages, **request}, cast_to=ChatCompletion)


async def post_text(client: Any, prompt: str, request: dict[str, Any]) -> Any:
    """POST /completions (a raw text prompt, no chat template), through the same low-level `post`."""
    from openai.types import Completion as TextCompletion

    return await client.post("/completions", body={"prompt": prompt, **request}, cast_to=TextCompletion)


def to_text_completion(response: Any, seconds: float, token_id: Callable[[str], int | None]) -> Completion:
    """A /completions reply; `top_logprobs` keyed by token id (`token_id` maps each key)."""
    choice = response.choices[0]
    usage = response.usage
    top = None
    logprobs = choice.logprobs
    if logprobs is not None and logprobs.top_logprobs is not None:
        top = []
        for position in logprobs.top_logprobs:
            ids = ((token_id(token), value) for token, value in (position or {}).items())
            top.append({i: value for i, value in ids if i is not None})
    return Completion(
        text=choice.text or "",
        tokens_in=usage.prompt_tokens if usage else 0,
        tokens_out=usage.completion_tokens if usage else 0,
        finish_reason=choice.finish_reason,
        seconds=seconds,
        top_logprobs=top,
    )


def to_completion(response: Any, seconds: float) -> Completion:
    choice = response.choices[0]
    message = choice.message
    usage = response.usage
    return Completion(
        text=message.content or "",
        reasoning=_separate_reasoning(message),
        tokens_in=usage.prompt_tokens if usage else 0,
        tokens_out=usage.completion_tokens if usage else 0,
        finish_reason=choice.finish_reason,
        seconds=seconds,
    )


async def read_stream(
    client: Any, messages: list[Message], request: dict[str, Any], on_delta: DeltaSink, started: float
) -> Completion:
    """One streamed request, its deltas passed on as they arrive and gathered into a Completion.

    Usage comes in a last chunk without choices (`stream_options.include_usage`, which vLLM,
    SGLang and OpenAI honour); a server that ignores it leaves the token counts at 0.
    """
    text: list[str] = []
    reasoning: list[str] = []
    usage = finish_reason = None
    stream = await client.chat.completions.create(
        messages=messages, stream=True, stream_options={"include_usage": True}, **request
    )
    async with stream:
        async for chunk in stream:
            usage = chunk.usage or usage
            if not chunk.choices:
                continue
            choice = chunk.choices[0]
            finish_reason = choice.finish_reason or finish_reason
            delta = choice.delta
            if delta is None:
                continue
            if piece := _separate_reasoning(delta):
                reasoning.append(piece)
                on_delta("reasoning", piece)
            if delta.content:
                text.append(delta.content)
                on_delta("text", delta.content)
    return Completion(
        text="".join(text),
        reasoning="".join(reasoning) or None,
        tokens_in=usage.prompt_tokens if usage else 0,
        tokens_out=usage.completion_tokens if usage else 0,
        finish_reason=finish_reason,
        seconds=time.monotonic() - started,
    )


def _separate_reasoning(message: Any) -> str | None:
    """DeepSeek sends `reasoning_content`, vLLM >= 0.10 `reasoning`; the SDK keeps both as extras
    (on a whole message and on a streamed delta alike)."""
    for name in ("reasoning_content", "reasoning"):
        value = getattr(message, name, None)
        if isinstance(value, str) and value:
            return value
    return None
