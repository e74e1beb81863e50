"""A synth job on a remote runner, the app's half: the selected items travel with the job, the
labels come back as events and are stored here, in the app's store.

A worker never opens the app's store (reasonrank.runners). So when the job is submitted the app
does what a local `reasonrank synth` does before its first request: it imports the candidate
file (`--candidates`, idempotently) and selects the items (dataset, review status, limit, minus
those this teacher configuration labelled already); then `prepare` writes that selection, with
each list's texts and qrels, into the job's folder as an `--items` file, which is uploaded like
any other input, and rewrites the command to label exactly that file.

The worker sends each finished label back as a `label` event (reasonrank.synth_events.label_event). As
the job's log is mirrored into its local events file, `store_label_events` stores every label
event after its own offset with db.synth.store_label, each in its own transaction, so a label is
in the Review queue one log poll after the teacher answered. Nothing is stored twice: the offset
(saved after each pass) skips what was handled, and what an app killed between storing and saving
reads again, or a duplicated event, the (item, fingerprint) unique constraint refuses. Only items
of the job's own selection and labels of its own teacher configuration are accepted; anything
else is refused with a line in the job's log.
"""

from __future__ import annotations

import json
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from db.engine import data_dir
from db.models import Job
from reasonrank import jobs
from reasonrank.io import InputError, candidate_to_dict

ITEMS_FILE = "synth-items.jsonl"  # the --items file, in the job's folder (uploaded from there)
SELECTION_FILE = "synth-selection.json"  # {"fingerprint", "items"}: what the job may label
OFFSET_FILE = "synth-labels.json"  # {"offset", "stored", "duplicates", "refused"}
_LOCK = threading.Lock()  # one storing pass at a time in this process (pollers overlap)


def prepare(engine: Engine, job_id: int, argv: list[str]) -> list[str]:
    """Import and select the items of `synth …` in the app's store, write them to the job's folder,
    and return the argv the worker runs: the same teacher flags with `--items FILE` instead of the
    selection flags (and no --db)."""
    from db.synth import ItemSelection, count_labelled, items_to_label, iter_lists
    from reasonrank.cli import config_to_argv, parse_command
    from reasonrank.cli.synth import ANY_STATUS, ITEMS_FORMAT, SynthConfig, import_candidates
    from reasonrank.synth_events import teacher_fingerprint

    config = parse_command(argv)
    if config.items is not None:
        raise InputError("--items is written by the app; select the items with --dataset or --candidates")
    if config.dataset is None and config.candidates is None:
        raise InputError("say which items to label: --dataset NAME, or --candidates FILE")
    selection = ItemSelection(
        dataset=config.dataset, status=None if config.status == ANY_STATUS else config.status, limit=config.limit
    )
    if config.candidates is not None:
        dataset, qids = import_candidates(engine, config)
        selection = replace(selection, dataset=dataset, qids=qids)
    fingerprint = teacher_fingerprint(config.teacher())
    item_ids = items_to_label(engine, selection, fingerprint)
    header = {
        "format": ITEMS_FORMAT,
        "fingerprint": fingerprint,
        "count": len(item_ids),
        "already_labelled": count_labelled(engine, fingerprint),
    }
    folder = _folder(job_id)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / ITEMS_FILE
    with open(path, "w", encoding="utf-8") as out:
        out.write(json.dumps(header) + "\n")
        for item_id, candidates in iter_lists(engine, item_ids):
            out.write(json.dumps({"key": item_id, **candidate_to_dict(candidates)}, ensure_ascii=False) + "\n")
    (folder / SELECTION_FILE).write_text(json.dumps({"fingerprint": fingerprint, "items": item_ids}))
    defaults = SynthConfig()
    run = replace(config, dataset=None, candidates=None, status=defaults.status, limit=None, db=None, items=str(path))
    return config_to_argv(run)


def store_label_events(engine: Engine, job: Job) -> int:
    """Store the `label` events mirrored since the last pass into the app's store; returns how many
    labels were new. A job without a selection file (not prepared here) has nothing to store."""
    from db.synth import store_label
    from reasonrank.synth_events import LABEL_EVENT, label_from_event

    folder = Path(job.log_path).parent
    with _LOCK:
        progress = _read(folder / OFFSET_FILE) or {"offset": 0, "stored": 0, "duplicates": 0, "refused": 0}
        events, offset = jobs.read_events(job.metrics_path, progress["offset"])
        if offset == progress["offset"]:
            return 0
        selection = _read(folder / SELECTION_FILE)
        if selection is None:
            return 0
        allowed, expected = set(selection["items"]), selection["fingerprint"]
        stored, refusals = 0, []
        for event in events:
            if event.get("event") != LABEL_EVENT:
                continue
            try:
                item_id, label, consistency, kept, fingerprint = label_from_event(event)
            except InputError as exc:
                refusals.append(str(exc))
                continue
            if fingerprint != expected or type(item_id) is not int or item_id not in allowed:
                refusals.append(f"item {item_id!r} is not in this job's selection for its teacher configuration")
                continue
            if store_label(engine, item_id, label, consistency, kept, fingerprint):
                stored += 1
            else:
                progress["duplicates"] += 1
        if refusals:
            with open(job.log_path, "a", encoding="utf-8") as log:
                log.writelines(f"[app] label event refused: {line}\n" for line in refusals)
        progress.update(offset=offset, stored=progress["stored"] + stored, refused=progress["refused"] + len(refusals))
        _write(folder / OFFSET_FILE, progress)
    return stored


def stored_counts(job: Job) -> dict[str, int]:
    """How many labels of the job the app stored, found stored already, and refused."""
    progress = _read(Path(job.log_path).parent / OFFSET_FILE) or {}
    return {name: int(progress.get(name, 0)) for name in ("stored", "duplicates", "refused")}


def _folder(job_id: int) -> Path:
    return data_dir() / "jobs" / str(job_id)


def _read(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _write(path: Path, value: dict[str, Any]) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(value))
    temporary.replace(path)
