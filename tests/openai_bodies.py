"""What an OpenAI-compatible chat server sends: the scripted Answer and the JSON bodies made
from it — a whole chat.completion, or the chat.completion.chunk objects of a stream.

Kept apart from tests/openai_server.py (HTTP, faults, recording): these are the wire shapes the
clients under test must read, checkable without a socket.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any


@dataclass
class Answer:
    """What the scripted model says for one request."""

    content: str | None = ""
    reasoning_content: str | None = None  # DeepSeek's name for separate reasoning
    reasoning: str | None = None  # vLLM >= 0.10's name for it
    finish_reason: str = "stop"


#: the body a `Fault(malformed=True)` sends: a chat completion cut off mid-object.
TRUNCATED_JSON = b'{"id": "chatcmpl-broken", "object": "chat.completion", "choices": [{"index": 0, "mess'


def _count_words(text: str | None) -> int:
    return len(text.split()) if text else 0


#: words per streamed chunk, so a test can see a long answer arrive in many pieces.
STREAM_WORDS_PER_CHUNK = 2


def _stream_pieces(text: str | None) -> list[str]:
    """`text` cut into chunks of a few words each, whitespace kept, so the pieces join back exactly."""
    words = re.findall(r"\s*\S+\s*", text or "") or ([text] if text else [])
    return ["".join(words[i : i + STREAM_WORDS_PER_CHUNK]) for i in range(0, len(words), STREAM_WORDS_PER_CHUNK)]


def usage(request: dict[str, Any], answer: Answer) -> dict[str, int]:
    """Whitespace words: prompt = all message contents; completion = content plus reasoning."""
    prompt_tokens = sum(_count_words(m.get("content")) for m in request.get("messages", []))
    completion_tokens = sum(_count_words(t) for t in (answer.content, answer.reasoning_content, answer.reasoning))
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def completion_body(request: dict[str, Any], answer: Answer, completion_id: str) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": answer.content}
    if answer.reasoning_content is not None:
        message["reasoning_content"] = answer.reasoning_content
    if answer.reasoning is not None:
        message["reasoning"] = answer.reasoning
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.get("model"),
        "choices": [{"index": 0, "message": message, "finish_reason": answer.finish_reason, "logprobs": None}],
        "usage": usage(request, answer),
    }


def stream_chunks(request: dict[str, Any], answer: Answer, completion_id: str) -> list[dict[str, Any]]:
    """The chat.completion.chunk objects of one streamed answer, in sending order."""
    head = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": request.get("model"),
    }

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        return {**head, "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}]}

    chunks = [chunk({"role": "assistant", "content": ""})]
    for field_name in ("reasoning_content", "reasoning", "content"):
        chunks += [chunk({field_name: piece}) for piece in _stream_pieces(getattr(answer, field_name))]
    chunks.append(chunk({}, answer.finish_reason))
    if (request.get("stream_options") or {}).get("include_usage"):
        chunks.append({**head, "choices": [], "usage": usage(request, answer)})
    return chunks
