"""A real OpenAI-compatible chat server on 127.0.0.1 for tests, with scripted answers and faults.

Why a real server instead of mocking the client: retries, timeouts, concurrency limits and error
mapping only prove themselves over real HTTP (status codes, headers, dropped sockets, slow
replies). Anything that talks to vLLM serve / SGLang / DeepSeek (the OpenAI backend, teacher
synthesis) can be tested against this server.

Usage::

    with OpenAIServer(responder=lambda messages, request: "[2] > [1]") as server:
        server.fault_at[0] = Fault(status=500)          # first chat request fails
        server.faults.append(Fault(hang_s=5))           # then the next one hangs
        ... point a client at server.base_url ...
        assert server.chat_requests[-1].body["model"] == "test-model"

Faults are taken, per chat request, from `fault_at[index]` (0-based arrival order) first, then
from the front of the `faults` queue; a responder may also return a `Fault` itself to fail
depending on the prompt. A request with `"stream": true` is answered as server-sent events
the way vLLM serve does: the reasoning, then the content, a few words per chunk
(`stream_delay_s` apart), the finish reason, a usage chunk when `stream_options.include_usage`
asks for it, then `data: [DONE]`; `Fault(break_stream_after=n)` cuts the stream after n chunks.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from openai_bodies import TRUNCATED_JSON, Answer, completion_body, stream_chunks


@dataclass
class Fault:
    """One injected misbehaviour; fields combine (latency first, then the failure)."""

    status: int | None = None  # reply with this HTTP error status and an OpenAI error body
    message: str | None = None  # error message for `status` (a default names the status)
    retry_after: float | None = None  # Retry-After header seconds, with `status`
    hang_s: float | None = None  # sleep this long before answering (longer than the client timeout)
    malformed: bool = False  # 200 with a truncated JSON body
    raw_body: bytes | None = None  # 200 with exactly these bytes (e.g. JSON without "choices")
    drop: bool = False  # close the socket without any response
    latency_s: float = 0.0  # delay, then answer normally unless another field says otherwise
    break_stream_after: int | None = None  # streamed answers: drop the socket after n chunks


Responder = Callable[[list[dict[str, Any]], dict[str, Any]], Answer | Fault | str]


def echo_responder(messages: list[dict[str, Any]], request: dict[str, Any]) -> Answer:
    """Default answer: repeat the last user message, so tests can match replies to prompts."""
    last_user = next((m.get("content") for m in reversed(messages) if m.get("role") == "user"), "")
    return Answer(content=f"echo: {last_user}")


@dataclass
class RecordedRequest:
    """One HTTP request as the server saw it. The Authorization value is never kept."""

    index: int  # arrival order over all requests
    method: str
    path: str
    headers: dict[str, str]  # lower-case names; authorization redacted
    body: Any  # parsed JSON, or None when absent / not JSON
    authorized: bool | None  # None when the server has no expected key
    started: float  # time.monotonic() on arrival
    finished: float | None = None  # when the handler returned (None while in flight)


class _Server(ThreadingHTTPServer):
    """Holds 256 pending connects, as uvicorn under vLLM / SGLang does (socketserver's default
    of 5 resets some of 64 clients connecting at once)."""

    request_queue_size = 256


class OpenAIServer:
    """Threaded HTTP server speaking `POST /v1/chat/completions` and `GET /v1/models`.

    `models`: ids served (a request for another id gets the 404 vLLM returns); `api_key`: when
    set, requests without `Authorization: Bearer <api_key>` get 401; `latency_s`: added to every
    chat request. Usage counts are whitespace words (prompt: all message contents; completion:
    content plus reasoning), enough to check that counts are carried through.
    """

    def __init__(
        self,
        responder: Responder | None = None,
        *,
        models: tuple[str, ...] = ("test-model",),
        api_key: str | None = None,
        latency_s: float = 0.0,
        stream_delay_s: float = 0.0,
    ) -> None:
        self.responder: Responder = responder or echo_responder
        self.models = models
        self.latency_s = latency_s
        self.stream_delay_s = stream_delay_s  # pause before each streamed chunk
        self.faults: deque[Fault] = deque()
        self.fault_at: dict[int, Fault] = {}
        self.requests: list[RecordedRequest] = []
        self.max_concurrent = 0  # peak of chat requests in flight at once
        self._api_key = api_key
        self._lock = threading.Lock()
        # in-flight chat requests per reset epoch, so a request left hanging by an earlier test
        # does not count towards the concurrency peak of the next one
        self._epoch = 0
        self._in_flight: Counter[int] = Counter()
        self._chat_count = 0
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> OpenAIServer:
        self._stopping.clear()
        self._httpd = _Server(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="openai-test-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; hanging handlers wake up at once instead of sleeping out their hang."""
        if self._httpd is None:
            return
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None

    def __enter__(self) -> OpenAIServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- addresses and records -------------------------------------------------------------
    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("server is not running")
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        """What an OpenAI client takes as `base_url`."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.path.endswith("/chat/completions")]

    def reset(self) -> None:
        """Forget recorded requests, pending faults and the concurrency peak (reuse across tests)."""
        with self._lock:
            self.requests.clear()
            self.faults.clear()
            self.fault_at.clear()
            self.max_concurrent = 0
            self._chat_count = 0
            self._epoch += 1

    # -- request handling ------------------------------------------------------------------
    def _record(self, method: str, path: str, headers: dict[str, str], body: Any) -> RecordedRequest:
        auth = headers.pop("authorization", None)
        authorized = None if self._api_key is None else auth == f"Bearer {self._api_key}"
        if auth is not None:
            headers["authorization"] = "<redacted>"
        with self._lock:
            record = RecordedRequest(len(self.requests), method, path, headers, body, authorized, time.monotonic())
            self.requests.append(record)
        return record

    def _next_fault(self) -> Fault | None:
        with self._lock:
            index = self._chat_count
            self._chat_count += 1
            if index in self.fault_at:
                return self.fault_at.pop(index)
            return self.faults.popleft() if self.faults else None

    def _enter_chat(self) -> int:
        """Count a chat request in flight; returns its epoch for `_leave_chat`."""
        with self._lock:
            epoch = self._epoch
            self._in_flight[epoch] += 1
            self.max_concurrent = max(self.max_concurrent, self._in_flight[epoch])
            return epoch

    def _leave_chat(self, epoch: int) -> None:
        with self._lock:
            self._in_flight[epoch] -= 1

    def _sleep(self, seconds: float) -> None:
        if seconds > 0:
            self._stopping.wait(seconds)

    def _completion_id(self) -> str:
        with self._lock:
            return f"chatcmpl-test-{self._chat_count}"

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            # http.server writes headers and body separately; with Nagle on, the body waits for
            # the client's delayed ACK on every request. Real servers set TCP_NODELAY.
            disable_nagle_algorithm = True
            protocol_version = "HTTP/1.1"  # keep-alive, as real servers do

            def log_message(self, format: str, *args: Any) -> None:  # quiet test output
                return

            def do_GET(self) -> None:
                record = server._record("GET", self.path, self._headers(), None)
                try:
                    if not self._check_auth(record):
                        return
                    if self.path.rstrip("/") == "/v1/models":
                        data = [{"id": m, "object": "model", "created": 0, "owned_by": "test"} for m in server.models]
                        self._send_json(200, {"object": "list", "data": data})
                    else:
                        self._send_error(404, f"no route {self.path}")
                finally:
                    record.finished = time.monotonic()

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except json.JSONDecodeError:
                    body = None
                record = server._record("POST", self.path, self._headers(), body)
                try:
                    if not self._check_auth(record):
                        return
                    if self.path.rstrip("/") != "/v1/chat/completions":
                        self._send_error(404, f"no route {self.path}")
                    elif not isinstance(body, dict) or not isinstance(body.get("messages"), list):
                        self._send_error(400, "request body must be JSON with a 'messages' list")
                    else:
                        epoch = server._enter_chat()
                        try:
                            self._chat(body)
                        finally:
                            server._leave_chat(epoch)
                finally:
                    record.finished = time.monotonic()

            def _chat(self, body: dict[str, Any]) -> None:
                server._sleep(server.latency_s)
                fault = server._next_fault()
                if fault is not None and self._apply_fault(fault):
                    return
                if body.get("model") not in server.models:
                    self._send_error(404, f"The model `{body.get('model')}` does not exist.", kind="NotFoundError")
                    return
                reply = server.responder(body["messages"], body)
                if isinstance(reply, Fault):
                    if not self._apply_fault(reply):
                        raise TypeError("a Fault returned by a responder must fail the request")
                    return
                answer = Answer(content=reply) if isinstance(reply, str) else reply
                if body.get("stream"):
                    self._send_stream(
                        stream_chunks(body, answer, server._completion_id()),
                        fault.break_stream_after if fault is not None else None,
                    )
                else:
                    self._send_json(200, completion_body(body, answer, server._completion_id()))

            def _send_stream(self, chunks: list[dict[str, Any]], break_after: int | None) -> None:
                """Server-sent events over chunked transfer encoding (keep-alive, like vLLM)."""
                events = [f"data: {json.dumps(c)}\n\n".encode() for c in chunks] + [b"data: [DONE]\n\n"]
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "text/event-stream")
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for index, event in enumerate(events):
                        if break_after is not None and index >= break_after:
                            self._drop()
                            return
                        server._sleep(server.stream_delay_s)
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(event), event))
                        self.wfile.flush()
                    self.wfile.write(b"0\r\n\r\n")
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True  # the client stopped reading

            def _drop(self) -> None:
                """Close with RST instead of FIN so the client sees a hard connection failure."""
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.close_connection = True

            def _apply_fault(self, fault: Fault) -> bool:
                """Act out `fault`; True when the request is finished (no normal answer)."""
                server._sleep(fault.latency_s)
                if fault.hang_s is not None:
                    server._sleep(fault.hang_s)
                if fault.drop:
                    self._drop()
                    return True
                if fault.status is not None:
                    headers = {}
                    if fault.retry_after is not None:
                        headers["Retry-After"] = f"{fault.retry_after:g}"
                    self._send_error(fault.status, fault.message or f"injected HTTP {fault.status}", headers=headers)
                    return True
                if fault.malformed or fault.raw_body is not None:
                    body = TRUNCATED_JSON if fault.raw_body is None else fault.raw_body
                    self._send_raw(200, body, "application/json")
                    return True
                return False

            def _check_auth(self, record: RecordedRequest) -> bool:
                if record.authorized is False:
                    self._send_error(401, "Invalid API key", kind="AuthenticationError")
                    return False
                return True

            def _headers(self) -> dict[str, str]:
                return {k.lower(): v for k, v in self.headers.items()}

            def _send_error(
                self, status: int, message: str, *, kind: str = "BadRequestError", headers: dict[str, str] | None = None
            ) -> None:
                body = {"error": {"message": message, "type": kind, "param": None, "code": status}}
                self._send_json(status, body, headers=headers)

            def _send_json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
                self._send_raw(status, json.dumps(body).encode(), "application/json", headers)

            def _send_raw(
                self, status: int, payload: bytes, content_type: str, headers: dict[str, str] | None = None
            ) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(payload)))
                    for name, value in (headers or {}).items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True  # the client gave up (e.g. after a hang)

        return Handler
