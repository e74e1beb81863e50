"""The reranker registry: named rerankers the Arena and Eval offer, trained models among them.

A reranker is a backend, a model and the backend's options (as the CLI's BackendConfig fields:
base_url, api_key_env, adapter, dtype, …). API keys never reach this table: an `api_key`
option is refused, only the name of the environment variable that holds one is stored.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import select

from db.engine import read_session, write_session
from db.models import Reranker
from reasonrank.arena_specs import ARENA_KINDS, RerankerSpec
from reasonrank.io import InputError

RERANKER_BACKENDS = ARENA_KINDS  # what the Arena and Eval can run
RERANKER_SOURCES = ("manual", "trained", "builtin")
_SECRET_OPTIONS = ("api_key", "key", "token", "password")


def _check(name: str, backend: str, options: dict[str, Any], source: str) -> None:
    if not name.strip():
        raise InputError("a reranker needs a name")
    if backend not in RERANKER_BACKENDS:
        raise InputError(f"unknown backend {backend!r}; expected one of {', '.join(RERANKER_BACKENDS)}")
    if source not in RERANKER_SOURCES:
        raise InputError(f"unknown source {source!r}; expected one of {', '.join(RERANKER_SOURCES)}")
    secret = next((key for key in options if key.lower() in _SECRET_OPTIONS), None)
    if secret is not None:
        raise InputError(
            f"option {secret!r} would store a secret; name the environment variable "
            "that holds it with api_key_env instead"
        )


def add_reranker(
    engine: Engine,
    name: str,
    backend: str,
    model: str = "",
    options: dict[str, Any] | None = None,
    *,
    source: str = "manual",
    job_id: int | None = None,
    lineage: dict[str, Any] | None = None,
    replace: bool = False,
    next_free_name: bool = False,
) -> Reranker:
    """Register a reranker under a unique name (`replace` overwrites one of the same name;
    `next_free_name` takes `name-2`, `name-3`, … instead, chosen inside the write transaction so
    two jobs finishing at once cannot both pick the same name)."""
    options = dict(options or {})
    _check(name, backend, options, source)
    with write_session(engine) as session:
        if next_free_name:
            taken = set(session.exec(select(Reranker.name).where(Reranker.name.startswith(name))))
            wanted, n = name, 1
            while name in taken:
                n += 1
                name = f"{wanted}-{n}"
        row = session.exec(select(Reranker).where(Reranker.name == name)).first()
        if row is not None and not replace:
            raise InputError(f"a reranker named {name!r} already exists")
        if row is None:
            row = Reranker(name=name, backend=backend)
            session.add(row)
        row.backend, row.model, row.options, row.source = backend, model, options, source
        row.job_id, row.lineage = job_id, dict(lineage or {})
        session.flush()
        session.refresh(row)
        session.expunge(row)
        return row


def list_rerankers(engine: Engine) -> list[Reranker]:
    with read_session(engine) as session:
        rows = list(session.exec(select(Reranker).order_by(Reranker.id)))
        for row in rows:
            session.expunge(row)
        return rows


def get_reranker(engine: Engine, name_or_id: str | int) -> Reranker:
    with read_session(engine) as session:
        if isinstance(name_or_id, int):
            row = session.get(Reranker, name_or_id)
        else:
            row = session.exec(select(Reranker).where(Reranker.name == name_or_id)).first()
        if row is None:
            raise InputError(f"no reranker {name_or_id!r}")
        session.expunge(row)
        return row


def reranker_spec(row: Reranker) -> RerankerSpec:
    """A registry row as the Arena runs it; its `backend_config()` is what Eval and Train load."""
    return RerankerSpec(row.name, row.backend, row.model, dict(row.options or {}))


def remove_reranker(engine: Engine, name: str) -> None:
    with write_session(engine) as session:
        row = session.exec(select(Reranker).where(Reranker.name == name)).first()
        if row is None:
            raise InputError(f"no reranker {name!r}")
        session.delete(row)
