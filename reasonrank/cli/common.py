"""Pieces every subcommand module shares: the Command record and a progress bar."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from reasonrank.flags import FlagTable
from reasonrank.jobs import EventLog

PROG = "reasonrank"
EXIT_USAGE = 2


@dataclass(frozen=True)
class Command:
    """One subcommand: its flags, the config dataclass they fill, and the handler that runs it."""

    name: str
    help: str
    flags: FlagTable
    config_type: type
    handler: Callable[[Any], int]


def optional_int(text: str) -> int | None:
    """A flag value that may be `none` (the argparse type of optional integer fields)."""
    return None if text.strip().lower() == "none" else int(text)


def open_store(url: str | None):
    """The label store at `url` (default: $REASONRANK_DB or the data dir's SQLite file), migrated.

    Imported here, inside the call: `reasonrank/cli` is the shell's composition root and the only
    part of the library that may use db/, and only the commands that need it pay for it.
    """
    from db.engine import get_engine, init_db

    engine = get_engine(url)
    init_db(engine)
    return engine


class Progress:
    """A tqdm bar over window positions, opened at the first finished step so that a run that
    fails before any model call leaves stderr with nothing but the error line. Under a job the
    same updates go to the job's events file (with any live figures passed along)."""

    def __init__(self, desc: str, unit: str = "window") -> None:
        self.desc = desc
        self.unit = unit
        self.bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.bar is not None:
            self.bar.close()

    def __call__(self, done: int, total: int, **figures: Any) -> None:
        EventLog.current().progress(done, total, unit=self.unit, **figures)
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=self.desc, unit=self.unit, file=sys.stderr)
        self.bar.update(done - self.bar.n)
