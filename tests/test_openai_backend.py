"""OpenAIBackend against a real local HTTP server (tests/openai_server.py): no client mocking.

Timeouts are kept at 1 s and backoff is real, so each test shows the behaviour a user gets.
"""

from __future__ import annotations

import asyncio
import socket
import time

import pytest
from openai_server import Answer, Fault, OpenAIServer

from reasonrank.backends import make_backend
from reasonrank.backends.base import BackendConfig, BackendError
from reasonrank.backends.openai import OpenAIBackend
from reasonrank.types import GenerationParams

KEY_ENV = "REASONRANK_TEST_OPENAI_KEY"
PARAMS = GenerationParams(max_new_tokens=64, temperature=0.6, top_p=0.95, seed=7)


def staggered_echo(messages, request):
    """Echo the prompt, answering earlier prompts later so arrival order != prompt order."""
    text = messages[-1]["content"]
    time.sleep(0.05 * (3 - int(text.split()[-1]) % 4))
    return Answer(content=f"echo: {text}", finish_reason="length" if text.endswith("3") else "stop")


@pytest.fixture(scope="module")
def live_server():
    with OpenAIServer(responder=staggered_echo) as server:
        yield server


@pytest.fixture
def server(live_server, monkeypatch):
    live_server.reset()
    live_server.responder = staggered_echo
    live_server.latency_s = 0.0
    monkeypatch.delenv(KEY_ENV, raising=False)
    return live_server


def make(server_or_url, **overrides) -> OpenAIBackend:
    url = server_or_url if isinstance(server_or_url, str) else server_or_url.base_url
    fields = dict(
        kind="openai",
        model="test-model",
        base_url=url,
        api_key_env=KEY_ENV,
        timeout_s=1.0,
        max_retries=3,
        max_in_flight=4,
    )
    fields.update(overrides)
    backend = make_backend(BackendConfig(**fields))
    assert isinstance(backend, OpenAIBackend)
    return backend


def prompt(text: str) -> list[dict]:
    return [{"role": "system", "content": "You rank passages."}, {"role": "user", "content": text}]


def test_batch_answers_in_prompt_order_with_usage_and_params(server):
    backend = make(server)
    texts = [f"query number {i}" for i in range(8)]
    completions = backend.generate([prompt(t) for t in texts], PARAMS)

    assert [c.text for c in completions] == [f"echo: {t}" for t in texts]
    assert [c.finish_reason for c in completions] == ["length" if t.endswith("3") else "stop" for t in texts]
    # usage: the server counts whitespace words of all messages / of the answer
    assert all(c.tokens_in == 3 + 3 for c in completions)
    assert all(c.tokens_out == 4 for c in completions)
    assert all(c.reasoning is None and c.seconds > 0 for c in completions)
    bodies = [r.body for r in server.chat_requests]
    assert len(bodies) == 8
    assert {(b["model"], b["temperature"], b["top_p"], b["max_tokens"], b["seed"]) for b in bodies} == {
        ("test-model", 0.6, 0.95, 64, 7)
    }
    assert backend.stats.requests == 8 and backend.stats.completions == 8
    assert backend.stats.total_retries == 0 and backend.stats.tokens_out == 32


def test_seed_left_out_when_unset_and_empty_batch_sends_nothing(server):
    backend = make(server)
    assert backend.generate([], PARAMS) == []
    assert server.requests == []
    backend.generate([prompt("x 1")], GenerationParams(max_new_tokens=5))
    assert "seed" not in server.chat_requests[0].body


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
def test_separate_reasoning_field_is_captured(server, field):
    server.responder = lambda messages, request: Answer(content="[2] > [1]", **{field: "passage 2 answers it"})
    [completion] = make(server).generate([prompt("q 1")], PARAMS)
    assert completion.text == "[2] > [1]"
    assert completion.reasoning == "passage 2 answers it"
    assert completion.tokens_out == 3 + 4


@pytest.mark.parametrize(
    "fault, kind",
    [
        (Fault(status=500), "server_error"),
        (Fault(status=503, retry_after=0.2), "server_error"),
        (Fault(malformed=True), "malformed"),
        (Fault(raw_body=b'{"object": "chat.completion"}'), "malformed"),
        (Fault(raw_body=b'{"choices": []}'), "malformed"),
        (Fault(drop=True), "connection"),
    ],
    ids=["500", "503", "truncated-json", "no-choices", "empty-choices", "dropped-connection"],
)
def test_transient_fault_is_retried_and_counted(server, fault, kind):
    server.fault_at[0] = fault
    backend = make(server)
    [completion] = backend.generate([prompt("q 1")], PARAMS)
    assert completion.text == "echo: q 1"
    assert len(server.chat_requests) == 2
    assert backend.stats.retries == {kind: 1} and backend.stats.requests == 2


def test_rate_limit_honours_retry_after(server):
    server.fault_at[0] = Fault(status=429, retry_after=1)
    backend = make(server)
    started = time.monotonic()
    [completion] = backend.generate([prompt("q 1")], PARAMS)
    assert completion.text == "echo: q 1"
    first, second = server.chat_requests
    assert second.started - first.started >= 1.0
    assert time.monotonic() - started >= 1.0
    assert backend.stats.retries == {"rate_limit": 1}


def test_hanging_request_times_out_then_retry_succeeds(server):
    server.fault_at[0] = Fault(hang_s=5)
    backend = make(server)
    started = time.monotonic()
    [completion] = backend.generate([prompt("q 1")], PARAMS)
    elapsed = time.monotonic() - started
    assert completion.text == "echo: q 1"
    assert 1.0 <= elapsed < 3.5  # one timeout plus a short backoff, not the 5 s hang
    assert completion.seconds < 1.0  # wall time of the successful attempt only
    assert backend.stats.retries == {"timeout": 1}


def test_persistently_malformed_body_gives_clear_error(server):
    server.faults.extend(Fault(malformed=True) for _ in range(10))
    backend = make(server, max_retries=2)
    with pytest.raises(BackendError) as info:
        backend.generate([prompt("q 1")], PARAMS)
    message = str(info.value)
    assert "\n" not in message and "malformed response" in message and "3 attempts" in message
    assert server.base_url in message
    assert len(server.chat_requests) == 3
    assert backend.stats.retries == {"malformed": 2} and backend.stats.failures == 1


def test_max_in_flight_caps_concurrent_requests(server):
    server.latency_s = 0.2
    server.responder = lambda messages, request: "ok"
    backend = make(server, max_in_flight=3)
    started = time.monotonic()
    completions = backend.generate([prompt(f"q {i}") for i in range(9)], PARAMS)
    assert [c.text for c in completions] == ["ok"] * 9
    assert server.max_concurrent == 3  # the cap is reached and never exceeded
    assert time.monotonic() - started >= 3 * 0.2


def test_generate_works_inside_a_running_event_loop(server):
    backend = make(server)

    async def from_async_code():
        return backend.generate([prompt("q 1"), prompt("q 2")], PARAMS)

    completions = asyncio.run(from_async_code())
    assert [c.text for c in completions] == ["echo: q 1", "echo: q 2"]


def test_unknown_model_lists_served_models(server):
    backend = make(server, model="no-such-model")
    with pytest.raises(BackendError) as info:
        backend.generate([prompt("q 1")], PARAMS)
    message = str(info.value)
    assert "\n" not in message
    assert "unknown model 'no-such-model'" in message and "test-model" in message
    assert len(server.chat_requests) == 1 and backend.stats.total_retries == 0


def test_bad_request_fails_fast_with_server_message(server):
    server.faults.append(Fault(status=400, message="This model's maximum context length is 32"))
    backend = make(server)
    with pytest.raises(BackendError, match=r"HTTP 400: This model's maximum context length is 32"):
        backend.generate([prompt("q 1")], PARAMS)
    assert len(server.chat_requests) == 1


def test_first_permanent_failure_stops_the_whole_batch(server):
    server.latency_s = 0.3
    backend = make(server, model="no-such-model", max_in_flight=2)
    started = time.monotonic()
    with pytest.raises(BackendError, match="unknown model"):
        backend.generate([prompt(f"q {i}") for i in range(20)], PARAMS)
    assert time.monotonic() - started < 1.5
    assert len(server.chat_requests) < 20


def test_missing_key_env_sends_empty(monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    with OpenAIServer(api_key="EMPTY") as server:
        [completion] = make(server).generate([prompt("q 1")], PARAMS)
        assert completion.text == "echo: q 1"
        assert server.chat_requests[0].authorized is True
        assert server.chat_requests[0].headers["authorization"] == "<redacted>"


def test_bad_key_fails_fast_naming_the_variable_not_the_value(monkeypatch):
    monkeypatch.setenv(KEY_ENV, "sk-wrong-secret-value")
    with OpenAIServer(api_key="sk-right") as server:
        backend = make(server)
        started = time.monotonic()
        with pytest.raises(BackendError) as info:
            backend.generate([prompt("q 1"), prompt("q 2")], PARAMS)
        assert time.monotonic() - started < 2.0
        assert 1 <= len(server.chat_requests) <= 2  # each prompt sent at most once
        assert server.chat_requests[0].authorized is False
        assert backend.stats.total_retries == 0
    message = str(info.value)
    assert "HTTP 401" in message and KEY_ENV in message and "is set" in message
    assert "sk-wrong-secret-value" not in message and "\n" not in message


def test_right_key_is_sent(monkeypatch):
    monkeypatch.setenv(KEY_ENV, "sk-right")
    with OpenAIServer(api_key="sk-right") as server:
        (completion,) = make(server).generate([prompt("q 1")], PARAMS)
        assert server.chat_requests[0].authorized is True
    assert completion.text == "echo: q 1"


def test_unreachable_server_fails_within_seconds():
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    backend = make(url, max_retries=5)
    started = time.monotonic()
    with pytest.raises(BackendError) as info:
        backend.generate([prompt("q 1"), prompt("q 2")], PARAMS)
    assert time.monotonic() - started < 3.0
    message = str(info.value)
    assert "\n" not in message and f"cannot connect to {url}" in message
    assert backend.stats.retries["connect"] >= 2


@pytest.mark.parametrize(
    "overrides, cause",
    [
        ({"model": ""}, "needs a model name"),
        ({"base_url": "localhost:8000/v1"}, "must start with http"),
        ({"max_in_flight": 0}, "max_in_flight >= 1"),
    ],
)
def test_bad_config_is_rejected_in_one_line(overrides, cause):
    with pytest.raises(BackendError, match=cause) as info:
        make("http://127.0.0.1:1/v1", **overrides)
    assert "\n" not in str(info.value)


def test_tokenizer_is_loaded_from_config(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = ["[UNK]", "passage", "about", "rivers"]
    core = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=core, unk_token="[UNK]").save_pretrained(tmp_path)

    backend = make("http://127.0.0.1:1/v1", tokenizer=str(tmp_path))
    assert backend.tokenizer.tokenize("passage about lakes") == ["passage", "about", "[UNK]"]
    assert make("http://127.0.0.1:1/v1").tokenizer is None
    with pytest.raises(BackendError, match="cannot load tokenizer"):
        make("http://127.0.0.1:1/v1", tokenizer=str(tmp_path / "missing"))
