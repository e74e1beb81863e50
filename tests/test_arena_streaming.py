"""Backend.stream: real SSE from the local OpenAI-compatible server, TextIteratorStreamer on the
tiny local model, and the base class fallback that every other backend gets."""

from __future__ import annotations

import pytest
from openai_server import Answer, Fault, OpenAIServer
from scripted_backend import ScriptedBackend

from reasonrank.backends import make_backend
from reasonrank.backends.base import BackendConfig, BackendError
from reasonrank.types import GenerationParams

PARAMS = GenerationParams(max_new_tokens=24)
MESSAGES = [
    {"role": "system", "content": "You rank passages."},
    {"role": "user", "content": "[1] goldfish grow\n[2] cats sleep\nSearch Query: do goldfish grow"},
]
THOUGHT = "Passage one talks about goldfish growing, passage two is about cats, so one wins."


@pytest.fixture(scope="module")
def server():
    with OpenAIServer(stream_delay_s=0.005) as live:
        yield live


def collect():
    deltas: list[tuple[str, str]] = []
    return deltas, lambda kind, text: deltas.append((kind, text))


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
def test_openai_stream_passes_deltas_and_returns_the_whole_completion(server, field):
    server.reset()
    server.responder = lambda m, r: Answer(
        content="<answer>[1] > [2]</answer>", **{field: THOUGHT}, finish_reason="length"
    )
    backend = make_backend(BackendConfig(kind="openai", model="test-model", base_url=server.base_url))
    deltas, sink = collect()
    completion = backend.stream(MESSAGES, PARAMS, sink)

    assert len(deltas) > 5  # many pieces, not one block
    assert "".join(t for k, t in deltas if k == "reasoning") == THOUGHT == completion.reasoning
    assert "".join(t for k, t in deltas if k == "text") == "<answer>[1] > [2]</answer>" == completion.text
    assert [k for k, _ in deltas].index("text") > max(i for i, (k, _) in enumerate(deltas) if k == "reasoning")
    assert completion.finish_reason == "length"
    assert completion.tokens_out == len(THOUGHT.split()) + 3 and completion.tokens_in > 0
    body = server.chat_requests[0].body
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["max_tokens"] == 24


def test_openai_stream_cut_midway_is_retried_after_a_reset(server):
    server.reset()
    server.responder = lambda m, r: Answer(content="[1] > [2]", reasoning_content=THOUGHT)
    server.fault_at[0] = Fault(break_stream_after=3)
    backend = make_backend(BackendConfig(kind="openai", model="test-model", base_url=server.base_url, max_retries=2))
    deltas, sink = collect()
    completion = backend.stream(MESSAGES, PARAMS, sink)

    kinds = [k for k, _ in deltas]
    assert kinds.count("reset") == 1 and 0 < kinds.index("reset") < len(kinds) - 1
    after_reset = deltas[kinds.index("reset") + 1 :]
    assert "".join(t for k, t in after_reset if k == "reasoning") == THOUGHT == completion.reasoning
    assert backend.stats.retries == {"connection": 1} and len(server.chat_requests) == 2


def test_openai_stream_unknown_model_is_one_clear_error(server):
    server.reset()
    backend = make_backend(BackendConfig(kind="openai", model="nope", base_url=server.base_url))
    with pytest.raises(BackendError, match="unknown model 'nope'.*test-model"):
        backend.stream(MESSAGES, PARAMS, lambda kind, text: None)


def test_transformers_stream_matches_generate(tiny_model_dir):
    backend = make_backend(BackendConfig(kind="transformers", model=str(tiny_model_dir), device="cpu"))
    deltas, sink = collect()
    streamed = backend.stream(MESSAGES, PARAMS, sink)
    [batched] = backend.generate([MESSAGES], PARAMS)

    assert {k for k, _ in deltas} == {"text"} and len(deltas) > 1
    assert "".join(t for _, t in deltas) == streamed.text == batched.text
    assert (streamed.tokens_in, streamed.tokens_out, streamed.finish_reason) == (
        batched.tokens_in,
        batched.tokens_out,
        batched.finish_reason,
    )


def test_transformers_stream_stops_when_the_viewer_goes(tiny_model_dir):
    backend = make_backend(BackendConfig(kind="transformers", model=str(tiny_model_dir), device="cpu"))
    seen = []

    def impatient(kind, text):
        seen.append(text)
        raise BackendError("viewer left")

    with pytest.raises(BackendError, match="viewer left"):
        backend.stream(MESSAGES, GenerationParams(max_new_tokens=400), impatient)
    assert len(seen) == 1


def test_base_fallback_reports_the_generated_completion_once():
    backend = ScriptedBackend()
    deltas, sink = collect()
    completion = backend.stream(MESSAGES, PARAMS, sink)
    assert deltas == [("text", completion.text)] and "<answer>" in completion.text

    deltas, sink = collect()
    completion = ScriptedBackend(separate_reasoning=True).stream(MESSAGES, PARAMS, sink)
    assert deltas == [("reasoning", completion.reasoning), ("text", completion.text)]
    assert completion.reasoning and completion.text.startswith("<answer>")
