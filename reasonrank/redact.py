"""Secrets stay out of every message, log line and stored field.

Keys are named by environment variable only; these checks refuse a key typed where the name
belongs or embedded in a URL, and `redact` removes a key's value from any text a server or
library wrote (an error body may echo the Authorization header back).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import parse_qsl, urlsplit

from reasonrank.io import InputError

REDACTED = "[redacted]"
MIN_SECRET_CHARS = 6  # shorter values (e.g. "EMPTY", "x") would blank ordinary words out of messages
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
_SECRET_WORDS = ("key", "token", "secret", "password", "passwd", "auth", "signature", "sig")


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """`text` with every occurrence of each secret value replaced by [redacted]."""
    for secret in secrets:
        if secret and len(secret) >= MIN_SECRET_CHARS:
            text = text.replace(secret, REDACTED)
    return text


def check_env_name(name: str, field: str = "api_key_env") -> str:
    """An environment variable's NAME; a value that looks like the key itself is refused."""
    if not _ENV_NAME.fullmatch(name or ""):
        raise InputError(
            f"{field} must be the NAME of an environment variable (letters, digits, _), not a key; got {len(name or '')} characters"
        )
    mixed = any(c.islower() for c in name) and any(c.isupper() for c in name) and any(c.isdigit() for c in name)
    if mixed and len(name) >= 20:
        raise InputError(
            f"{field} looks like a key, not the NAME of an environment variable; put the key in the environment"
        )
    return name


def check_url(url: str | None, field: str = "base_url") -> str | None:
    """A URL without credentials: user:password@ or a key-like query parameter are refused."""
    if not url:
        return url
    parts = urlsplit(url)
    if parts.username or parts.password or "@" in parts.netloc:
        raise InputError(f"{field} must not carry credentials (user:key@host); name the key's variable in api_key_env")
    for key, _ in parse_qsl(parts.query, keep_blank_values=True):
        if any(word in key.lower() for word in _SECRET_WORDS):
            raise InputError(f"{field} must not carry a credential in its query ({key}=…); use api_key_env")
    return url


def check_config(values: dict) -> None:
    """Every `base_url` and `*_env` field in a (nested) config mapping, before it is stored."""
    for key, value in values.items():
        if isinstance(value, dict):
            check_config(value)
        elif key == "base_url" or key.endswith("_url"):
            check_url(value, key)
        elif key.endswith("_env") and value:
            check_env_name(value, key)
