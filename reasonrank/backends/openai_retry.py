"""The retry policy of the OpenAI backend: which failed attempts are worth another try
(`classify`: timeouts, refused or broken connections, 408/409/429/5xx, malformed bodies), how long
to wait before it (`retry_delay`: jittered exponential backoff, or the server's Retry-After,
clipped), and the error a request raises when its retries ran out (`RetriesExhausted`).
"""

from __future__ import annotations

import email.utils
import random
import time
from typing import Any

from reasonrank.backends.base import BackendError

#: first backoff delay in seconds; doubles per retry up to BACKOFF_CAP_S, then jittered.
BACKOFF_BASE_S = 0.5
BACKOFF_CAP_S = 30.0
#: a Retry-After longer than this is clipped, so a bogus header cannot stall a batch for hours.
RETRY_AFTER_CAP_S = 120.0
#: retries when nothing listens at all (connection refused): the usual causes are a wrong URL or
#: a server still loading its model (minutes), so waiting longer only delays the message.
CONNECT_RETRIES = 2
#: HTTP statuses worth retrying: request timeout, conflict (lock), rate limit, server errors.
RETRYABLE_STATUS = frozenset({408, 409, 429})


class Transient(Exception):
    """A failed attempt worth retrying: `kind` names it in the stats, `detail` in the message."""

    def __init__(self, kind: str, detail: str, retry_after: float | None = None) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail
        self.retry_after = retry_after


class RetriesExhausted(BackendError):
    """One request kept failing transiently (rate limit, 5xx, timeout, malformed body) until its
    retries ran out. The server answers other requests, so a caller that works item by item
    (teacher synthesis) records `kind` against the item and goes on; an unreachable server is
    not this error but a plain BackendError, because no other request would get through."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


def classify(exc: Exception, timeout_s: float) -> Transient | Exception:
    """Return a `Transient` for failures worth retrying, else `exc` itself (permanent)."""
    import openai

    if isinstance(exc, (TimeoutError, openai.APITimeoutError)):
        return Transient("timeout", f"no answer within {timeout_s:g}s")
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__
        if type(cause).__name__ == "ConnectError":
            return Transient("connect", one_line(str(cause)) or "connection refused")
        return Transient("connection", f"connection failed ({one_line(repr(cause))})")
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        if status == 429:
            return Transient(
                "rate_limit", f"HTTP 429: {server_message(exc)}", retry_after_seconds(exc.response.headers)
            )
        if status >= 500 or status in RETRYABLE_STATUS:
            return Transient(
                "server_error", f"HTTP {status}: {server_message(exc)}", retry_after_seconds(exc.response.headers)
            )
        return exc
    if isinstance(exc, (ValueError, AttributeError, TypeError, IndexError)):
        # invalid JSON (JSONDecodeError is a ValueError) or JSON without the expected shape
        return Transient("malformed", f"malformed response ({one_line(str(exc))})")
    return exc


def retry_delay(attempt: int, retry_after: float | None) -> float:
    """The server's Retry-After when given (plus up to 10% jitter), else jittered backoff."""
    if retry_after is not None:
        return min(retry_after, RETRY_AFTER_CAP_S) * random.uniform(1.0, 1.1)
    return min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2**attempt) * random.uniform(0.5, 1.0)


def retry_after_seconds(headers: Any) -> float | None:
    """Parse `retry-after-ms` or `retry-after` (seconds or an HTTP date) into seconds."""
    if value := headers.get("retry-after-ms"):
        try:
            return max(0.0, float(value) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def server_message(exc: Any) -> str:
    body = exc.body
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return one_line(body["message"])
    return one_line(exc.message)


def one_line(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
