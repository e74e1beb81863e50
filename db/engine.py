"""Engine and transactions: one SQLite file by default, PostgreSQL by URL, migrated by Alembic.

SQLite is set up so that concurrent reviewers never see "database is locked" and never claim the
same item twice (docs/architecture.md §5): WAL, a 5 s busy timeout, and write transactions
opened with BEGIN IMMEDIATE, which takes the write lock up front so a transaction that read a row
cannot lose a race to upgrade its snapshot later. Read transactions stay deferred so they never
queue behind writers.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlmodel import Session

from reasonrank.io import InputError

BUSY_TIMEOUT_S = 5.0
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_BEGIN_OPTION = "reasonrank_sqlite_begin"
_MIGRATING = threading.Lock()
_WRITE_LOCKS: dict[str, threading.RLock] = {}  # SQLite file -> this process's writer lock
_WRITE_LOCKS_GUARD = threading.Lock()
_MIGRATION_LOCK = 0x7265_6173  # any fixed bigint: the advisory lock that serialises migrations
CHUNK = 2000  # values per IN (...) list: far below SQLite's bound-parameter limit
FIRST_ADMIN_PASSWORD = "initial-admin-password.txt"  # in the data dir, written by app.py on the first run
SPACE_STORAGE = Path("/data")  # a Hugging Face Space's persistent storage, when the Space has it


def data_dir() -> Path:
    """Where the database file and exports live (created): $REASONRANK_DATA, else the persistent
    storage of a Hugging Face Space (SPACE_ID set, /data writable: the container's own disk is
    wiped on every restart), else ./data."""
    chosen = os.environ.get("REASONRANK_DATA")
    if not chosen and os.environ.get("SPACE_ID") and SPACE_STORAGE.is_dir() and os.access(SPACE_STORAGE, os.W_OK):
        chosen = str(SPACE_STORAGE)
    path = Path(chosen or "data")
    path.mkdir(parents=True, exist_ok=True)
    return path


def database_url(url: str | None = None) -> str:
    """The URL in force: the argument, else $REASONRANK_DB, else the SQLite file in data_dir()."""
    chosen = url or os.environ.get("REASONRANK_DB")
    if chosen:
        return chosen
    return f"sqlite:///{(data_dir() / 'reasonrank.db').resolve()}"


def get_engine(url: str | None = None) -> Engine:
    """Build the engine for `database_url(url)`; only SQLite and postgresql+psycopg are supported."""
    resolved = database_url(url)
    try:
        parsed = make_url(resolved)
    except Exception as exc:  # sqlalchemy raises ArgumentError with a long message
        raise InputError(f"database URL {resolved!r} is not a valid SQLAlchemy URL") from exc
    if parsed.drivername in ("sqlite", "sqlite+pysqlite"):
        return _sqlite_engine(resolved)
    if parsed.drivername == "postgresql+psycopg":
        return create_engine(resolved, pool_pre_ping=True)
    raise InputError(
        f"database URL scheme {parsed.drivername!r} is not supported; "
        "use sqlite:///path.db or postgresql+psycopg://user@host:port/db"
    )


def _sqlite_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.database and parsed.database != ":memory:" and not Path(parsed.database).parent.is_dir():
        # a typo in --db must not create directories and a new, empty database
        raise InputError(f"database {parsed.database}: directory {Path(parsed.database).parent} does not exist")
    engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_S, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record) -> None:
        # Take transaction control away from pysqlite so our "begin" hook decides the BEGIN kind.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        for pragma in (
            "journal_mode=WAL",
            "synchronous=NORMAL",
            "foreign_keys=ON",
            f"busy_timeout={int(BUSY_TIMEOUT_S * 1000)}",
        ):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn) -> None:
        immediate = conn.get_execution_options().get(_BEGIN_OPTION) == "IMMEDIATE"
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def private_files(engine: Engine) -> set[Path]:
    """Files of the data directory no form may name as an input: the SQLite database with its
    journal files (only SQLite may open them: closing any other descriptor of the file drops the
    process's locks) and the first admin's password."""
    files = {(data_dir() / FIRST_ADMIN_PASSWORD).resolve()}
    if is_sqlite(engine) and engine.url.database and engine.url.database != ":memory:":
        database = Path(engine.url.database).resolve()
        files |= {database, *(Path(f"{database}{suffix}") for suffix in ("-wal", "-shm", "-journal"))}
    return files


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


@contextmanager
def write_session(engine: Engine) -> Iterator[Session]:
    """A session whose transaction holds the write lock from its first statement (SQLite) and
    commits on success, rolls back on any exception.

    On SQLite, writers of one process also queue on a lock of their own before BEGIN IMMEDIATE:
    SQLite's busy handler waits by sleeping in growing steps (up to 100 ms each), so threads
    racing for the file's write lock would pay those sleeps as tail latency; a thread lock hands
    over at once. Other processes (CLI, jobs) still meet the busy timeout.
    """
    with _process_write_lock(engine), Session(_writer(engine), expire_on_commit=False) as session, session.begin():
        yield session


@contextmanager
def write_connection(engine: Engine) -> Iterator[Connection]:
    """write_session's transaction for Core statements, without an ORM unit of work (the review
    queue's hot paths: building and loading ORM objects costs more than their SQL)."""
    with _process_write_lock(engine), _writer(engine).begin() as connection:
        yield connection


@contextmanager
def read_connection(engine: Engine) -> Iterator[Connection]:
    """read_session's transaction for Core statements."""
    with engine.begin() as connection:
        yield connection


@contextmanager
def read_session(engine: Engine) -> Iterator[Session]:
    """A short read-only session (deferred BEGIN on SQLite, so readers never wait on writers)."""
    with Session(engine, expire_on_commit=False) as session, session.begin():
        yield session


def chunks(values: Sequence, size: int = CHUNK) -> Iterator[Sequence]:
    """Consecutive slices of `values`, for IN lists and executemany batches of bounded size."""
    for start in range(0, len(values), size):
        yield values[start : start + size]


def utcnow() -> datetime:
    """Aware UTC time, what SQLModel's UTCDateTime columns require on both engines."""
    return datetime.now(timezone.utc)


def _process_write_lock(engine: Engine) -> threading.RLock | nullcontext:
    """The lock this process's writers to one SQLite file share (none for other databases)."""
    if not is_sqlite(engine):
        return nullcontext()
    with _WRITE_LOCKS_GUARD:
        return _WRITE_LOCKS.setdefault(str(engine.url.database), threading.RLock())


def _writer(engine: Engine) -> Engine:
    """The engine whose transactions start with the write lock (itself, except on SQLite)."""
    return engine.execution_options(**{_BEGIN_OPTION: "IMMEDIATE"}) if is_sqlite(engine) else engine


def init_db(engine: Engine) -> None:
    """Migrate the database to the newest Alembic revision (idempotent; no CLI needed).

    Several processes may start at once: migrations run one at a time (SQLite write lock,
    a PostgreSQL advisory lock) and the later ones find the schema already at head. Within one
    process a lock serialises callers, since Alembic's `context` is a module-level global.
    """
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with _MIGRATING, _writer(engine).connect() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
        connection.commit()
