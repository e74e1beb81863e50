"""Every method through the OpenAI-compatible backend against a real local HTTP server that
serves the tiny model (chat completions and text completions with vLLM-style log-probabilities),
compared with the same model driven directly through the transformers backend."""

from __future__ import annotations

import json
import threading
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from reasonrank.backends import make_backend
from reasonrank.backends.base import BackendConfig
from reasonrank.methods import with_defaults
from reasonrank.types import CandidateList, Completion, GenerationParams
from reasonrank.window import WindowConfig, rerank


class TinyServer:
    """POST /v1/chat/completions and /v1/completions answered by a transformers backend.

    Log-probabilities come back as vLLM's OpenAI server writes them with
    `return_tokens_as_token_ids`: `choices[0].logprobs.top_logprobs[i]` maps "token_id:N" to a
    log-probability. One request at a time reaches the model (a lock), as one GPU would serve it.
    """

    def __init__(self, backend) -> None:
        self.backend = backend
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self) -> TinyServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def answer(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        params = GenerationParams(
            max_new_tokens=body["max_tokens"],
            temperature=body["temperature"],
            top_p=body["top_p"],
            seed=body.get("seed"),
            top_k=body.get("top_k", 0),
            stop=tuple(body.get("stop") or ()),
            logprobs=body.get("logprobs") or 0,
            allowed_token_ids=tuple(body.get("allowed_token_ids") or ()),
        )
        with self.lock:
            self.requests.append((path, body))
            if path.endswith("/chat/completions"):
                [out] = self.backend.generate([body["messages"]], params)
                choice = {"index": 0, "message": {"role": "assistant", "content": out.text}}
            else:
                [out] = self.backend.complete([body["prompt"]], params)
                choice = {"index": 0, "text": out.text, "logprobs": _logprobs(out, body)}
        choice["finish_reason"] = out.finish_reason
        usage = {"prompt_tokens": out.tokens_in, "completion_tokens": out.tokens_out}
        usage["total_tokens"] = out.tokens_in + out.tokens_out
        kind = "chat.completion" if "message" in choice else "text_completion"
        return {"id": "x", "object": kind, "created": 0, "model": body["model"], "choices": [choice], "usage": usage}

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                reply = json.dumps(server.answer(self.path, body)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

        return Handler


def _logprobs(out: Completion, body: dict[str, Any]) -> dict[str, Any] | None:
    if not body.get("logprobs"):
        return None
    assert body.get("return_tokens_as_token_ids") is True
    top = [{f"token_id:{token}": value for token, value in position.items()} for position in out.top_logprobs]
    return {"tokens": None, "token_logprobs": None, "text_offset": None, "top_logprobs": top}


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    # one prompt per forward pass, so direct and served runs compute exactly the same numbers
    backend = make_backend(BackendConfig(kind="transformers", model=str(tiny_model_dir), device="cpu", batch_size=1))
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def served(tiny, tiny_model_dir):
    with TinyServer(tiny) as server:
        config = BackendConfig(kind="openai", model="tiny", base_url=server.base_url, tokenizer=str(tiny_model_dir))
        yield server, make_backend(config)


def _small(dl19, n: int) -> list[CandidateList]:
    return [CandidateList(cl.query, cl.candidates[:n]) for cl in dl19[:2]]


def test_rank1_through_the_server_equals_the_direct_run(tiny, served, dl19):
    server, remote = served
    server.requests.clear()
    lists = _small(dl19, 3)
    config = with_defaults("rank1", WindowConfig())
    config = replace(config, generation=replace(config.generation, max_new_tokens=6))
    direct, via_http = rerank(lists, tiny, config), rerank(lists, remote, config)
    assert [r.ranking for r in via_http] == [r.ranking for r in direct]
    scores = [[c.score for c in r.calls] for r in via_http]
    assert scores == [[c.score for c in r.calls] for r in direct] and all(s is not None for s in scores[0][3:])
    first, forced = server.requests[0][1], server.requests[-1][1]
    assert all(path.endswith("/v1/completions") for path, _ in server.requests) and len(server.requests) == 12
    assert first["stop"] == ["</think> true", "</think> false"] and first["logprobs"] == 20
    assert first["prompt"].endswith("\n<think>") and first["temperature"] == 0.0 and first["max_tokens"] == 6
    assert forced["max_tokens"] == 1 and len(forced["allowed_token_ids"]) == 2


def test_rank_r1_through_the_server_equals_the_direct_run(tiny, served, dl19):
    server, remote = served
    server.requests.clear()
    lists = _small(dl19, 5)
    config = with_defaults("rank-r1", WindowConfig())
    config = replace(config, num_child=2, sort_k=2, generation=replace(config.generation, max_new_tokens=5))
    direct, via_http = rerank(lists, tiny, config), rerank(lists, remote, config)
    assert [r.ranking for r in via_http] == [r.ranking for r in direct]
    assert [[c.raw_output for c in r.calls] for r in via_http] == [[c.raw_output for c in r.calls] for r in direct]
    assert all(path.endswith("/chat/completions") for path, _ in server.requests)
    # the two queries' first comparisons are sent concurrently: either may arrive first
    assert server.requests[0][1]["messages"] in [result.calls[0].prompt for result in via_http]


def test_reasonrank_qwen3_sends_its_sampling_settings(served, dl19):
    server, remote = served
    server.requests.clear()
    lists = _small(dl19, 4)
    config = with_defaults("reasonrank-qwen3", WindowConfig(top_k=4, window=4, step=2))
    config = replace(config, generation=replace(config.generation, max_new_tokens=4, seed=3))
    [first, second] = rerank(lists, remote, config)
    assert sorted(first.ranking) == sorted(lists[0].docids) and sorted(second.ranking) == sorted(lists[1].docids)
    body = server.requests[0][1]
    assert (body["temperature"], body["top_p"], body["top_k"], body["seed"]) == (0.6, 0.95, 20, 3)
    assert "min_p" not in body  # 0 is the server default and OpenAI itself rejects the field
