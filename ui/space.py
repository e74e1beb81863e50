"""What the app does once at start on a Hugging Face Space (SPACE_ID set): the role rule for
signed-in users, the snapshot schedule of the label store, and ZeroGPU's decorated functions.

Settings (Space variables): REASONRANK_ADMINS (comma list of HF names besides the owner),
REASONRANK_SNAPSHOT_MINUTES (default 60) and REASONRANK_SNAPSHOT_KEEP (default 24).
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import Engine

from db.engine import data_dir, is_sqlite
from reasonrank.io import InputError
from reasonrank.spaces_gpu import on_zero_gpu
from ui import space_roles


def snapshot_folder() -> Path:
    return data_dir() / "snapshots"


def _positive(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip() or str(default)
    if not value.isdigit() or int(value) < 1:
        raise InputError(f"{name} must be a whole number of at least 1, got {value!r}")
    return int(value)


#: events that may wait in Gradio's queue at once on ZeroGPU (see `start`)
QUEUE_MAX_SIZE = 64


def start(engine: Engine, demo) -> None:
    space_roles.install(engine)
    if is_sqlite(engine):
        from db.snapshots import SnapshotScheduler

        minutes = _positive("REASONRANK_SNAPSHOT_MINUTES", 60)
        keep = _positive("REASONRANK_SNAPSHOT_KEEP", 24)
        SnapshotScheduler(engine, snapshot_folder(), interval_s=minutes * 60, keep=keep).start()
    if on_zero_gpu():
        # On ZeroGPU Gradio lets one event wait in its queue unless told otherwise; one page load
        # sends several (pickers, tables), and the rest failed with "application is busy".
        demo.queue(max_size=QUEUE_MAX_SIZE)
        # ZeroGPU wants its @spaces.GPU functions defined, and models loaded, when the app starts
        from reasonrank.backends.zerogpu import preload
        from reasonrank.declared import declared_specs

        for model in preload([spec.backend_config() for spec in declared_specs() if spec.backend == "zerogpu"]):
            print(f"ZeroGPU: loaded {model}")
