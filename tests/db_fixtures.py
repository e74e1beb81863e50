"""Fixtures for the label-store tests: a migrated database on SQLite and on a real PostgreSQL.

Migrating once per session and copying is what keeps the parametrised tests fast: each SQLite
test gets a copy of a migrated file, each PostgreSQL test a `CREATE DATABASE … TEMPLATE` of a
migrated database (tens of milliseconds instead of a full Alembic run).
Import the fixtures into a test module with `from db_fixtures import *`.
"""

from __future__ import annotations

import itertools
import shutil
from contextlib import ExitStack

import pytest
from pg import pg_bin_dir, pg_server
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from db.engine import get_engine, init_db
from reasonrank.imports import ImportBatch
from reasonrank.types import CandidateList, Label, Passage, Query

__all__ = [
    "pg_cluster",
    "sqlite_template",
    "sqlite_engine",
    "engine",
    "make_batch",
    "make_label",
    "ANNOTATORS",
    "ADMIN",
    "PASSWORD",
]

_TEMPLATE = "reasonrank_template"
_names = itertools.count()
ANNOTATORS = ["alice", "bob", "carol"] + [f"worker{i}" for i in range(8)]
ADMIN = "root"
PASSWORD = "correct horse battery staple"


def _migrate_and_seed(engine) -> None:
    """Migrate, then add the test users with one shared argon2 hash.

    Hashing is deliberately slow (up to a second per hash on this shared 2-core box), so the
    users every test needs are written once into the template; db.users itself is tested on
    users it creates.
    """
    from argon2 import PasswordHasher

    from db.engine import write_session
    from db.models import User

    init_db(engine)
    password_hash = PasswordHasher().hash(PASSWORD)
    with write_session(engine) as session:
        session.add_all([User(name=name, role="annotator", password_hash=password_hash) for name in ANNOTATORS])
        session.add(User(name=ADMIN, role="admin", password_hash=password_hash))


# Each test module imports these fixtures, which makes pytest see one definition per module;
# the cache makes them one per session all the same (one server, one template).
_session_cache: dict[str, object] = {}


@pytest.fixture(scope="session")
def pg_cluster(request):
    """(server URL, autocommit admin engine) of a throwaway cluster with a migrated template DB."""
    if pg_bin_dir() is None:
        pytest.skip(
            "PostgreSQL is not installed (/usr/lib/postgresql/*/bin/initdb missing); "
            "CI installs it with `apt-get install postgresql`"
        )
    if "pg" not in _session_cache:
        stack = ExitStack()
        request.config.add_cleanup(stack.close)
        url = stack.enter_context(pg_server())
        admin = create_engine(url, isolation_level="AUTOCOMMIT")
        stack.callback(admin.dispose)
        with admin.connect() as conn:
            conn.execute(text(f"CREATE DATABASE {_TEMPLATE}"))
        template = get_engine(make_url(url).set(database=_TEMPLATE).render_as_string(hide_password=False))
        _migrate_and_seed(template)
        template.dispose()
        _session_cache["pg"] = (url, admin)
    return _session_cache["pg"]


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory):
    if "sqlite" not in _session_cache:
        path = tmp_path_factory.mktemp("sqlite-template") / "reasonrank.db"
        template = get_engine(f"sqlite:///{path}")
        _migrate_and_seed(template)
        template.dispose()  # the last connection to close checkpoints the WAL into the main file
        _session_cache["sqlite"] = path
    return _session_cache["sqlite"]


@pytest.fixture
def sqlite_engine(sqlite_template, tmp_path):
    """A migrated SQLite store of the test's own (test users included), for tests that need
    SQLite only: a file other processes open, snapshots of it."""
    path = tmp_path / "reasonrank.db"
    shutil.copyfile(sqlite_template, path)
    built = get_engine(f"sqlite:///{path}")
    yield built
    built.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path):
    """A freshly migrated, empty database on each engine."""
    if request.param == "sqlite":
        path = tmp_path / "reasonrank.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        built = get_engine(f"sqlite:///{path}")
        yield built
        built.dispose()
        return
    url, admin = request.getfixturevalue("pg_cluster")
    name = f"test_{next(_names)}"
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name} TEMPLATE {_TEMPLATE}"))
    built = get_engine(make_url(url).set(database=name).render_as_string(hide_password=False))
    yield built
    built.dispose()
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE {name} WITH (FORCE)"))


def make_label(
    qid: str,
    docids: list[str],
    ranking: list[str] | None = None,
    *,
    relevant: list[str] | None = None,
    qrels: dict[str, int] | None = None,
    reasoning: str | None = "because [1] answers it",
    dataset: str = "toy",
    source: str = "teacher",
    query: str | None = None,
    texts: dict[str, str] | None = None,
) -> Label:
    """A teacher label over passages whose text is derived from the docid (unless given)."""
    texts = texts or {}
    candidates = CandidateList(
        Query(qid, query or f"query {qid}"),
        [Passage(d, texts.get(d, f"text of {d}")) for d in docids],
        qrels=qrels,
        dataset=dataset,
    )
    return Label(
        candidates=candidates,
        ranking=list(ranking or docids),
        source=source,
        reasoning=reasoning,
        model="teacher-x",
        relevant_docids=relevant,
    )


def make_batch(
    labels: list[Label] = (),
    candidates: list[CandidateList] = (),
    *,
    dataset: str = "toy",
    qrels: dict[str, dict[str, int]] | None = None,
    kind: str = "labels",
) -> ImportBatch:
    return ImportBatch(
        labels=list(labels), candidates=list(candidates), qrels=qrels or {}, dataset=dataset, kind=kind, issues=[]
    )
