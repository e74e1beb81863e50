"""`reasonrank train sft|grpo [--config FILE] [--preset NAME] [--field value …]`.

The run config is the stage's dataclass (reasonrank.train.config): defaults, then a preset, then
the YAML file, then each flag given here. Every field of SFTRunConfig and GRPORunConfig has a
flag (`--learning-rate`, `--num-generations` …, generated from the dataclasses so they can never
drift apart), which is how the Train tab turns a form into the exact command it shows.

As the composition root this command also touches the label store: `--data export:ID` trains on
a recorded export, and a finished run is registered as a reranker (source "trained") with its
lineage export → job → model, so the Arena and Eval can pick it.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import sys
import typing
from dataclasses import dataclass, field, make_dataclass
from pathlib import Path
from typing import Any

from reasonrank.cli.common import Command, open_store, optional_int
from reasonrank.flags import Flag, FlagTable
from reasonrank.io import InputError
from reasonrank.jobs import EventLog, current_job_id
from reasonrank.runners import registered_by_app
from reasonrank.train.config import RUN_CONFIG_TYPES, STAGES, RunConfig, check_run_config, load_run_config

EXPORT_PREFIX = "export:"

_HELP = {
    "model": "base model: local folder or hub id",
    "data": "training rows: export JSONL path, or export:ID (a recorded export)",
    "output_dir": "where checkpoints, the final model and metrics.jsonl go",
    "preset": "start from a preset: paper-7b-full, paper-32b-lora, tiny-cpu",
    "finetune": "full, lora or qlora (LoRA over a 4-bit NF4 base; needs CUDA and bitsandbytes)",
    "lora_targets": "comma-separated module names, or all-linear",
    "max_steps": "optimiser steps (> 0 overrides num-epochs)",
    "batch_size": "per-device batch (GRPO: completions)",
    "max_length": "token limit (SFT: whole example; GRPO: prompt)",
    "on_overlong": "examples over max-length: refuse, truncate (SFT) or drop",
    "save_steps": "checkpoint every N steps (0: final model only)",
    "resume": "continue from the last checkpoint in output-dir (true/false)",
    "device": "auto, cpu or cuda",
    "precision": "auto, bf16, fp16 or fp32",
    "format_reward_weight": "GRPO: weight of the graded format reward",
    "generation": "GRPO rollouts: auto (vLLM on CUDA when installed), vllm or transformers",
    "beta": "GRPO: KL coefficient",
    "num_generations": "GRPO: completions per prompt",
}


def _override_fields() -> dict[str, Any]:
    """Every run-config field of either stage with its type (first stage that declares it wins)."""
    hints: dict[str, Any] = {}
    for config_type in RUN_CONFIG_TYPES.values():
        for name, hint in typing.get_type_hints(config_type).items():
            hints.setdefault(name, hint)
    return hints


_FIELD_TYPES = _override_fields()
#: the run-config fields as all-optional overrides: None means "not given on the command line"
RunOverrides = make_dataclass("RunOverrides", [(name, Any, field(default=None)) for name in _FIELD_TYPES])
RunOverrides.__doc__ = "Run-config fields given as flags (None: not given)."


@dataclass
class TrainConfig:
    """`reasonrank train STAGE`: a YAML file and/or a preset, plus per-field overrides."""

    stage: str = "sft"
    config: str | None = None
    run: Any = field(default_factory=RunOverrides)
    register_as: str | None = None
    no_register: bool = False
    db: str | None = None
    processes_per_node: int = 1
    nodes: int = 1
    strategy: str = "ddp"
    node_rank: int = 0
    main_address: str | None = None

    def overrides(self) -> dict[str, Any]:
        return {name: value for name, value in vars(self.run).items() if value is not None and name != "preset"}


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered not in ("true", "false", "1", "0", "yes", "no"):
        raise InputError(f"expected true or false, got {text!r}")
    return lowered in ("true", "1", "yes")


def _flag(name: str, hint: Any) -> Flag:
    kinds = set(typing.get_args(hint) or (hint,)) - {type(None)}
    help_text = _HELP.get(name, name.replace("_", " "))
    option = "--" + name.replace("_", "-")
    if kinds == {bool}:
        return Flag(option, f"run.{name}", help_text, _bool, render=lambda v: "true" if v else "false")
    if kinds == {int}:
        return Flag(option, f"run.{name}", help_text, optional_int if type(None) in typing.get_args(hint) else int)
    if kinds == {float}:
        return Flag(option, f"run.{name}", help_text, float, render=repr)
    return Flag(option, f"run.{name}", help_text)


TRAIN_FLAGS = FlagTable(
    [
        Flag("stage", "stage", "training stage", kind="positional", choices=STAGES, required=True),
        Flag("--config", "config", "YAML file of run-config fields (any subset; `preset:` applies first)"),
        *(_flag(name, hint) for name, hint in _FIELD_TYPES.items()),
        Flag("--register-as", "register_as", "reranker name for the trained model (default: from output-dir)"),
        Flag("--no-register", "no_register", "do not register the trained model as a reranker", kind="switch"),
        Flag("--db", "db", "database URL (default: $REASONRANK_DB or SQLite in $REASONRANK_DATA)"),
        Flag(
            "--processes-per-node",
            "processes_per_node",
            "training processes per node (GPUs; > 1 runs under accelerate launch)",
            int,
        ),
        Flag("--nodes", "nodes", "nodes of a multi-node launch (this command runs once on each)", int),
        Flag("--strategy", "strategy", "ddp, zero3 or fsdp (configs/accelerate/), or an accelerate YAML"),
        Flag("--node-rank", "node_rank", "this node's rank in a multi-node launch", int),
        Flag("--main-address", "main_address", "host[:port] of node 0 in a multi-node launch"),
    ]
)


def resolve_run_config(config: TrainConfig) -> RunConfig:
    """The stage's run config: defaults → preset → YAML file → flags."""
    return load_run_config(config.stage, config.config, preset=config.run.preset, overrides=config.overrides())


def hub_offline_reason() -> str | None:
    """Why the Hugging Face hub cannot be reached from here (None when it can): the offline
    switches, or no TCP connection to the hub's host within 3 s."""
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on"):
            return f"{name} is set"
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    host = endpoint.split("://", 1)[-1].split("/", 1)[0]
    name, _, port = host.partition(":")
    try:
        socket.create_connection((name, int(port or 443)), timeout=3).close()
    except (OSError, ValueError) as exc:
        return f"{host} is unreachable ({exc.__class__.__name__})"
    return None


def check_base_model(model: str) -> None:
    """Refuse, before a run starts, a base model that cannot be loaded here.

    A local folder must hold a config.json. Anything else is a hub id: fine when its files are in
    the local Hugging Face cache or the hub is reachable; otherwise transformers would retry for
    about a minute and then fail, so the refusal comes now, in one line.
    """
    path = Path(model).expanduser()
    if path.exists() or model.startswith((".", "/", "~")):
        if not (path / "config.json").is_file():
            raise InputError(f"model {model}: no config.json there (give a model folder or a hub id)")
        return
    from huggingface_hub import try_to_load_from_cache
    from huggingface_hub.errors import HFValidationError

    try:
        cached = try_to_load_from_cache(model, "config.json")
    except HFValidationError:
        raise InputError(f"model {model!r} is neither a local folder nor a valid hub id") from None
    if isinstance(cached, str):
        return
    reason = hub_offline_reason()
    if reason:
        raise InputError(
            f"model {model!r} is not a local folder and not in the Hugging Face cache, and the hub cannot be "
            f"reached ({reason}): give a local model folder, or download it where the hub is reachable"
        )


def check_launch(config: TrainConfig, runner: str = "local") -> None:
    """Refuse a multi-node launch the runner cannot make. A `local` job (or a command typed on a
    node) is one command on one node: more nodes need --main-address and this command started on
    every node with its --node-rank. An orchestrating runner (ray, slurm) starts it on every node
    itself and supplies both (reasonrank.runners.multinode), so the job may not give them."""
    from reasonrank.runners.multinode import ORCHESTRATING_RUNNERS

    if config.nodes < 1 or config.processes_per_node < 1:
        raise InputError("processes-per-node and nodes must be at least 1")
    if runner in ORCHESTRATING_RUNNERS:
        if config.nodes > 1 and (config.main_address or config.node_rank):
            raise InputError(
                f"the {runner} runner starts a {config.nodes}-node job on every node with its node rank and "
                "node 0's address: leave out --node-rank and --main-address"
            )
        return
    if config.nodes > 1 and not config.main_address:
        raise InputError(
            f"{config.nodes} nodes need --main-address (host[:port] of node 0) and this command started "
            f"on every node with its --node-rank; a {runner} job runs on one node: use processes per node, "
            f"or a runner that starts it on every node ({', '.join(ORCHESTRATING_RUNNERS)})"
        )


def check_train_config(config: TrainConfig, runner: str = "local") -> RunConfig:
    """The resolved run config, refused now if it could not train (bad values, no base model, a
    hub id while offline, more nodes than `runner` can start: check_launch); the Train tab calls
    this before it starts a job."""
    from reasonrank.train.common import check_qlora_support

    check_launch(config, runner)
    run_config = resolve_run_config(config)
    check_run_config(run_config)
    check_qlora_support(run_config)  # the one fix to make comes first (torch is imported only for qlora)
    check_base_model(run_config.model)
    return run_config


def _export_path(engine, data: str) -> tuple[str, int]:
    """`export:ID` → the export file's path and id."""
    from db.exports import get_export

    text = data[len(EXPORT_PREFIX) :]
    if not text.isdigit():
        raise InputError(f"data {data!r}: expected export:ID with a numeric export id")
    export = get_export(engine, int(text))
    return export.path, export.id


def register_model(
    engine, result, config: TrainConfig, export_id: int | None, job_id: int | None, where: dict | None = None
):
    """Record the trained model as a transformers reranker (base + adapter, or the full folder);
    `where` (runner, cluster) goes into the lineage of a model that lives on a remote runner."""
    from db.registry import add_reranker

    name = config.register_as or f"{result.stage}-{Path(result.output_dir).name}"
    options = {"adapter": result.model_dir} if result.adapter else {}
    model = result.base_model if result.adapter else result.model_dir
    lineage = {
        "export_id": export_id,
        "job_id": job_id,
        "stage": result.stage,
        "base_model": result.base_model,
        "output_dir": result.output_dir,
        **(where or {}),
    }
    return add_reranker(
        engine,
        name,
        "transformers",
        model,
        options,
        source="trained",
        job_id=job_id,
        lineage=lineage,
        next_free_name=True,
    )


def run_train(config: TrainConfig):
    """Resolve the config (and export:ID), train, register; returns (TrainResult, Reranker | None)."""
    from reasonrank.train import run_training
    from reasonrank.train.common import is_main_process

    run_config = check_train_config(config)
    engine = None
    export_id = None
    if run_config.data.startswith(EXPORT_PREFIX):
        engine = open_store(config.db)
        path, export_id = _export_path(engine, run_config.data)
        run_config = dataclasses.replace(run_config, data=path)
    result = run_training(run_config)
    reranker = None
    if not config.no_register and is_main_process() and not registered_by_app():
        engine = engine or open_store(config.db)
        reranker = register_model(engine, result, config, export_id, current_job_id())
    return result, reranker


def _launch_command(config: TrainConfig) -> int:
    """Run this command again under `accelerate launch` (see reasonrank.launch)."""
    from reasonrank.cli import config_to_argv
    from reasonrank.launch import child_argv, launcher_argv, run_launch
    from reasonrank.train.common import resolve_device

    device = resolve_device(resolve_run_config(config))
    launcher = launcher_argv(
        config.processes_per_node, config.nodes, config.strategy, device, config.node_rank, config.main_address
    )
    code, last = run_launch(launcher, child_argv(config_to_argv(config)))
    events = EventLog.current()
    events.delegated_end = True  # rank 0 wrote the end of a run that succeeded
    if code != 0:
        print(f"error: a training process failed (launcher exit status {code})", file=sys.stderr)
        events.end("failed", f"a training process failed (launcher exit status {code}); last lines:\n{last}")
    return 0 if code == 0 else 1


def _train_command(config: TrainConfig) -> int:
    from reasonrank.launch import is_launched_child

    if config.processes_per_node * config.nodes > 1 and not is_launched_child():
        return _launch_command(config)
    result, reranker = run_train(config)
    outputs = EventLog.current().outputs
    outputs.update(
        stage=result.stage,
        output_dir=result.output_dir,
        model_dir=result.model_dir,
        adapter=result.adapter,
        base_model=result.base_model,
        steps=result.steps,
        seconds=round(result.seconds, 2),
        metrics=result.metrics,
        lengths=result.lengths,
    )
    print(
        f"trained {result.stage} for {result.steps} steps in {result.seconds:.1f} s; "
        f"{'adapter' if result.adapter else 'model'} in {result.model_dir}"
    )
    if reranker is not None:
        outputs.update(reranker_id=reranker.id, reranker_name=reranker.name, lineage=reranker.lineage)
        print(f"registered reranker {reranker.name!r} (id {reranker.id})")
    return 0


TRAIN_COMMANDS = [
    Command(
        "train",
        "fine-tune a reranker: sft (cold start) or grpo (multi-view reward)",
        TRAIN_FLAGS,
        TrainConfig,
        _train_command,
    ),
]
