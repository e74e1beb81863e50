"""Rerankers declared in configuration instead of the admin registry (a Space, any deployment).

$REASONRANK_RERANKERS holds either a JSON list or the path of a JSON or YAML file with one
(without it, ./rerankers.json is read when present):

    [{"name": "ReasonRank-7B (endpoint)", "backend": "openai", "model": "liuwenhan/reasonrank-7B",
      "base_url": "https://xyz.endpoints.huggingface.cloud/v1", "api_key_env": "RR_ENDPOINT_KEY"},
     {"name": "ReasonRank-7B (ZeroGPU)", "backend": "zerogpu", "model": "liuwenhan/reasonrank-7B"}]

A key is only ever named (`api_key_env`, the Space secret holding it): a literal `api_key` field
is refused, and the value is read from the environment by the backend at call time, so it never
reaches the database, a log or the page. A reranker whose secret is not set still appears; its
Arena lane says so when run, and the other lanes are unaffected.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from reasonrank.arena_specs import RerankerSpec
from reasonrank.backends import BACKEND_KINDS
from reasonrank.io import InputError

ENV = "REASONRANK_RERANKERS"
DEFAULT_FILE = "rerankers.json"
TOP_LEVEL = ("name", "backend", "model", "base_url", "api_key_env", "options")


@dataclass(frozen=True)
class DeclaredSpec(RerankerSpec):
    """A RerankerSpec that needs the environment variable `secret_env` set to run."""

    secret_env: str | None = None

    def backend_config(self):
        if self.secret_env and not os.environ.get(self.secret_env):
            raise InputError(
                f"{self.name}: its key is not available: set the secret {self.secret_env} "
                "(Space settings → Variables and secrets) and restart"
            )
        return super().backend_config()


def parse_declared(text: str, where: str) -> list[DeclaredSpec]:
    """The rerankers of a JSON or YAML list; `where` names the source in messages."""
    try:
        entries = json.loads(text)
    except json.JSONDecodeError as exc:
        if where.endswith((".yaml", ".yml")):
            entries = _yaml(text, where)
        else:
            raise InputError(f"{where}: not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    if not isinstance(entries, list):
        raise InputError(f"{where}: expected a list of rerankers")
    specs = [_spec(entry, f"{where} entry {number}") for number, entry in enumerate(entries, 1)]
    names = [spec.name for spec in specs]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise InputError(f"{where}: reranker names must be unique, repeated: {', '.join(duplicates)}")
    return specs


def _yaml(text: str, where: str):
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark else ""
        raise InputError(f"{where}: not valid YAML{line}") from None


def _spec(entry, where: str) -> DeclaredSpec:
    if not isinstance(entry, dict):
        raise InputError(f"{where}: expected an object with {', '.join(TOP_LEVEL)}")
    if "api_key" in entry or "api_key" in (entry.get("options") or {}):
        # the value is never echoed: it is a secret that should not be in this file at all
        raise InputError(f"{where}: field 'api_key' is not allowed; put the key in a secret and name it in api_key_env")
    unknown = sorted(set(entry) - set(TOP_LEVEL))
    if unknown:
        raise InputError(f"{where}: unknown field(s) {', '.join(unknown)}; valid: {', '.join(TOP_LEVEL)}")
    name = str(entry.get("name") or "").strip()
    backend = str(entry.get("backend") or "").strip()
    if not name:
        raise InputError(f"{where}: field 'name' is required")
    if backend not in BACKEND_KINDS:
        raise InputError(f"{where} ({name}): field 'backend' must be one of {', '.join(BACKEND_KINDS)}")
    options = dict(entry.get("options") or {})
    for field_name in ("base_url", "api_key_env"):
        if entry.get(field_name):
            options[field_name] = str(entry[field_name])
    spec = DeclaredSpec(name, backend, str(entry.get("model") or ""), options, secret_env=options.get("api_key_env"))
    try:
        RerankerSpec.backend_config(spec)  # unknown options fail here, not in a lane later
    except (InputError, TypeError) as exc:
        raise InputError(f"{where}: {exc}") from None
    return spec


def declared_specs() -> tuple[DeclaredSpec, ...]:
    """The rerankers $REASONRANK_RERANKERS declares (inline JSON or the path of a file), else
    those of ./rerankers.json when there is one (the Space folder ships it)."""
    value = os.environ.get(ENV, "").strip()
    if not value and Path(DEFAULT_FILE).is_file():
        value = DEFAULT_FILE
    return _declared(value)


@lru_cache(maxsize=4)
def _declared(value: str) -> tuple[DeclaredSpec, ...]:
    if not value:
        return ()
    if value.startswith("["):
        return tuple(parse_declared(value, ENV))
    path = Path(value).expanduser()
    if not path.is_file():
        raise InputError(f"{ENV}: file {value} not found (give a JSON list or the path of a JSON/YAML file)")
    return tuple(parse_declared(path.read_text(encoding="utf-8"), str(path)))
