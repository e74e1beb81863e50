"""The Train form as `reasonrank train`'s config: the form's values, the preset's hyperparameters
the YAML editor starts from, and the exact command a launch runs.

Only the values that differ from the preset become flags, so the command shown (and run as a Job)
is the shortest exact one. A form that is not valid is an InputError or ValueError here; the tab
(ui.train) turns it into a message.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from db.engine import data_dir
from db.exports import list_exports
from reasonrank.cli.train import EXPORT_PREFIX, RunOverrides, TrainConfig
from reasonrank.io import InputError
from reasonrank.train.config import apply_values, default_run_config, yaml_values
from ui.jobs import LOCAL_RUNNER, job_command

#: what the command preview shows for the output directory a launch creates
NEW_OUTPUT_DIR = "NEW"
#: fields the form passes to the command as given (their own widgets)
DIRECT_FIELDS = ("model", "data", "output_dir", "preset", "resume")
#: fields with their own widget, left out of the hyperparameter YAML (finetune: a flag when it differs from the preset)
FORM_FIELDS = (*DIRECT_FIELDS, "finetune")
EXPORT_KINDS = {"sft": ("sft", "alpaca"), "grpo": ("rl",)}


def hyperparameters_yaml(stage: str, preset: str | None) -> str:
    """The preset's values of every field the YAML editor holds."""
    import yaml

    values = dataclasses.asdict(default_run_config(stage, preset or None))
    return yaml.safe_dump({k: v for k, v in values.items() if k not in FORM_FIELDS}, sort_keys=False)


def _edited_values(text: str) -> dict[str, Any]:
    values = yaml_values(text or "", "hyperparameters")
    shadowed = sorted(set(values) & set(FORM_FIELDS))
    if shadowed:
        raise InputError(f"hyperparameters: set {', '.join(shadowed)} with the form fields above")
    return values


def new_output_dir() -> str:
    """A fresh folder under <data dir>/runs for one launch (never shared by two launches)."""
    return str(data_dir() / "runs" / f"{time.strftime('run-%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}")


def export_choices(engine: Engine, stage: str) -> list[tuple[str, str]]:
    """Recorded exports this stage can train on, newest first, as (label, id)."""
    return [
        (f"#{e.id} {e.name} ({e.kind}, {e.count} rows)", str(e.id))
        for e in list_exports(engine)
        if e.kind in EXPORT_KINDS.get(stage, ())
    ]


def preset_finetune(stage: str, preset: str | None) -> str:
    """The fine-tune mode a preset starts from (the dropdown follows the preset, like the YAML)."""
    return default_run_config(stage, preset or None).finetune


@dataclass(frozen=True)
class TrainValues:
    """The form's values, in the order of the /train_start and /train_command inputs (TrainForm's);
    API callers may leave out the launch fields (runner, processes per node, nodes, strategy)."""

    stage: str
    preset: str | None
    finetune: str | None
    export_id: str | None
    data_path: str | None
    model: str | None
    output_dir: str | None
    hyperparameters: str
    resume: bool
    register_as: str | None
    runner: str | None = LOCAL_RUNNER
    processes: float | None = 1
    nodes: float | None = 1
    strategy: str | None = "ddp"

    @classmethod
    def from_values(cls, *values) -> TrainValues:
        return cls(*values)


def train_config(values: TrainValues, output_dir: str) -> TrainConfig:
    """The form as a TrainConfig writing to `output_dir`: only hyperparameters (and a fine-tune
    mode) that differ from the preset become flags; more than one process runs under
    `accelerate launch`."""
    baseline = default_run_config(values.stage, values.preset or None)
    edited_values = _edited_values(values.hyperparameters)
    if values.finetune:
        edited_values["finetune"] = values.finetune
    edited = apply_values(baseline, edited_values, "hyperparameters")
    changed = {
        f.name: getattr(edited, f.name)
        for f in dataclasses.fields(edited)
        if f.name not in DIRECT_FIELDS and getattr(edited, f.name) != getattr(baseline, f.name)
    }
    data = f"{EXPORT_PREFIX}{values.export_id}" if values.export_id else (values.data_path or "").strip()
    run = RunOverrides(
        preset=values.preset or None,
        model=(values.model or "").strip() or None,
        data=data or None,
        output_dir=output_dir,
        resume=True if values.resume else None,
        **changed,
    )
    return TrainConfig(
        stage=values.stage,
        run=run,
        register_as=(values.register_as or "").strip() or None,
        processes_per_node=int(values.processes or 1),
        nodes=int(values.nodes or 1),
        strategy=values.strategy or "ddp",
    )


def form_command(*values) -> str:
    """The shell command the form stands for (an empty output directory: a new one per launch)."""
    try:
        form = TrainValues.from_values(*values)
        output = (form.output_dir or "").strip() or str(data_dir() / "runs" / NEW_OUTPUT_DIR)
        return job_command(train_config(form, output), form.runner)
    except (InputError, ValueError) as exc:
        return f"# not a valid form: {exc}"
