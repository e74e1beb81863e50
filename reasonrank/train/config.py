"""One config dataclass per training stage, shared by `reasonrank train …`, YAML files and the UI.

Why dataclasses with a YAML round-trip: a run must be reproducible from what the history shows
(the UI is a form over the CLI's config: docs/architecture.md §1). A YAML file holds any subset of
the fields; `load_run_config` applies, in order, the stage defaults, a named preset (from the
file's `preset:` key or the caller), the file's own values and finally explicit overrides, so a
file written by `save_run_config` reproduces the run exactly and a short file says only what
differs from a preset.

Presets (docs/method.md §8): `paper-7b-full` (SFT: full fine-tune, lr 5e-6, 5 epochs, batch
1 × 8, cutoff 23,552 tokens; GRPO: lr 1e-6, 8 generations, KL 0.001, 3,072 completion tokens,
200 steps), `paper-32b-lora` (LoRA r = α = 32 on all linear layers; SFT lr 1e-4, 4 epochs as in
the paper v3 — the repository's yaml says 7; GRPO lr 1e-5) and `tiny-cpu` (a few fast steps that
still teach a tiny model the output format: what the tests and a laptop run).

`finetune: qlora` is LoRA over a base model held in 4-bit NF4 (bitsandbytes, CUDA only): a 32B
base fits one 80 GB GPU. No preset uses it — the paper trained full weights or plain LoRA — so
it is a choice a user makes over any preset.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reasonrank.bounded import MAX_YAML_CHARS, parse_yaml, read_bounded
from reasonrank.io import InputError

STAGES = ("sft", "grpo")
FINETUNE_MODES = ("full", "lora", "qlora")
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "bf16", "fp16", "fp32")
GENERATION_ENGINES = ("auto", "vllm", "transformers")
OVERLONG_SFT = ("refuse", "truncate", "drop")
OVERLONG_GRPO = ("refuse", "drop")


@dataclass
class RunConfig:
    """What every stage shares: model, data, where to write, optimiser, LoRA, length, checkpoints."""

    model: str = ""  # base model: local folder or hub id
    data: str = ""  # export JSONL in the SFT / RL contract (the CLI also takes export:ID)
    output_dir: str = ""
    preset: str | None = None  # the preset these values started from (informational once applied)
    finetune: str = "lora"  # full | lora | qlora (LoRA over 4-bit NF4 base weights, CUDA only)
    lora_r: int = 32
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_targets: str = "all-linear"  # comma-separated module names, or all-linear
    learning_rate: float = 1e-4
    num_epochs: float = 1.0
    max_steps: int = -1  # > 0 overrides num_epochs
    batch_size: int = 1  # per device
    grad_accum: int = 8
    lr_scheduler: str = "cosine"
    warmup_ratio: float = 0.1
    weight_decay: float = 0.0
    max_length: int = 23552  # SFT: whole conversation; GRPO: the prompt
    on_overlong: str = "refuse"  # what to do with examples longer than max_length
    gradient_checkpointing: bool = True
    device: str = "auto"  # auto | cpu | cuda
    precision: str = "auto"  # auto: bf16 on a GPU that has it, fp32 elsewhere
    save_steps: int = 0  # checkpoint every N optimiser steps (0: only the final model)
    save_total_limit: int = 2
    resume: bool = False  # continue from the last checkpoint in output_dir
    logging_steps: int = 1
    seed: int = 0


@dataclass
class SFTRunConfig(RunConfig):
    """Cold-start SFT (docs/method.md §8.1): LM loss on the reasoning + ranked list given the prompt."""

    assistant_only_loss: bool = True
    packing: bool = False


@dataclass
class GRPORunConfig(RunConfig):
    """GRPO (docs/method.md §8.2) with the multi-view reward plus a weighted graded format reward."""

    learning_rate: float = 1e-6
    lr_scheduler: str = "constant"
    warmup_ratio: float = 0.0
    weight_decay: float = 0.01
    max_length: int = 20480
    num_generations: int = 8
    steps_per_generation: int | None = None  # TRL default: grad_accum
    max_completion_length: int = 3072
    temperature: float = 1.0
    beta: float = 0.001  # KL coefficient
    epsilon: float = 0.2  # clip range
    format_reward_weight: float = 0.0  # weight of the graded format reward (paper: none)
    generation: str = "auto"  # auto: vLLM on CUDA when installed, transformers generate elsewhere
    vllm_gpu_memory_utilization: float = 0.5


RUN_CONFIG_TYPES: dict[str, type[RunConfig]] = {"sft": SFTRunConfig, "grpo": GRPORunConfig}

PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "paper-7b-full": {
        "sft": dict(
            finetune="full",
            learning_rate=5e-6,
            num_epochs=5.0,
            batch_size=1,
            grad_accum=8,
            lr_scheduler="cosine",
            warmup_ratio=0.1,
            max_length=23552,
            precision="bf16",
        ),
        "grpo": dict(
            finetune="full",
            learning_rate=1e-6,
            num_generations=8,
            batch_size=1,
            grad_accum=8,
            steps_per_generation=16,
            max_completion_length=3072,
            max_length=20480,
            beta=0.001,
            temperature=1.0,
            max_steps=200,
            save_steps=25,
            precision="bf16",
        ),
    },
    "paper-32b-lora": {
        "sft": dict(
            finetune="lora",
            lora_r=32,
            lora_alpha=32,
            lora_targets="all-linear",
            learning_rate=1e-4,
            num_epochs=4.0,
            batch_size=1,
            grad_accum=8,
            lr_scheduler="cosine",
            warmup_ratio=0.1,
            max_length=23552,
            precision="bf16",
        ),
        "grpo": dict(
            finetune="lora",
            lora_r=32,
            lora_alpha=32,
            lora_targets="all-linear",
            learning_rate=1e-5,
            num_generations=8,
            batch_size=1,
            grad_accum=8,
            steps_per_generation=16,
            max_completion_length=3072,
            max_length=20480,
            beta=0.001,
            temperature=1.0,
            max_steps=200,
            save_steps=25,
            precision="bf16",
        ),
    },
    "tiny-cpu": {
        "sft": dict(
            finetune="full",
            learning_rate=1e-2,
            max_steps=16,
            batch_size=4,
            grad_accum=1,
            lr_scheduler="constant",
            warmup_ratio=0.0,
            max_length=4096,
            gradient_checkpointing=False,
            precision="fp32",
        ),
        "grpo": dict(
            finetune="lora",
            lora_r=8,
            lora_alpha=16,
            lora_dropout=0.0,
            lora_targets="q_proj,v_proj",
            learning_rate=1e-2,
            max_steps=4,
            batch_size=4,
            grad_accum=1,
            num_generations=4,
            max_completion_length=48,
            max_length=4096,
            beta=0.0,
            format_reward_weight=1.0,
            gradient_checkpointing=False,
            precision="fp32",
        ),
    },
}


def _coerce(name: str, value: Any, hint: Any) -> Any:
    """A YAML/UI value as the field's type; a wrong type is an InputError naming the field."""
    allowed = typing.get_args(hint) or (hint,)
    if value is None:
        if type(None) in allowed:
            return None
        raise InputError(f"training config field {name!r} may not be empty")
    for kind in allowed:
        if kind is bool and isinstance(value, bool):
            return value
        if kind is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if kind is str and isinstance(value, str):
            return value
    expected = " or ".join(getattr(kind, "__name__", str(kind)) for kind in allowed)
    raise InputError(f"training config field {name!r} must be {expected}, got {value!r}")


def apply_values(config: RunConfig, values: dict[str, Any], source: str = "config") -> RunConfig:
    """`config` with `values` set (types checked); an unknown key is an InputError naming `source`."""
    hints = typing.get_type_hints(type(config))
    unknown = sorted(set(values) - set(hints))
    if unknown:
        raise InputError(f"{source}: unknown {type(config).__name__} field(s): {', '.join(unknown)}")
    return dataclasses.replace(config, **{key: _coerce(key, value, hints[key]) for key, value in values.items()})


def preset_values(preset: str, stage: str) -> dict[str, Any]:
    if preset not in PRESETS:
        raise InputError(f"unknown preset {preset!r}; choose one of: {', '.join(PRESETS)}")
    return dict(PRESETS[preset][stage])


def default_run_config(stage: str, preset: str | None = None) -> RunConfig:
    """The stage's defaults, with a preset applied when one is named."""
    if stage not in RUN_CONFIG_TYPES:
        raise InputError(f"unknown training stage {stage!r}; choose one of: {', '.join(STAGES)}")
    config = RUN_CONFIG_TYPES[stage]()
    if preset:
        config = apply_values(config, {**preset_values(preset, stage), "preset": preset}, f"preset {preset}")
    return config


def yaml_values(text: str, source: str) -> dict[str, Any]:
    """The mapping a YAML text holds (empty text is an empty mapping); errors name `source`."""
    loaded = parse_yaml(text, source)
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise InputError(f"{source}: a training config must be a mapping of field: value")
    return loaded


def read_yaml_values(path: str | Path) -> dict[str, Any]:
    """The mapping a YAML config file holds."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"training config file not found: {path}")
    try:
        with path.open(encoding="utf-8") as handle:
            text = read_bounded(handle, MAX_YAML_CHARS, str(path))
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not a UTF-8 text file (byte {exc.start + 1})") from None
    return yaml_values(text, str(path))


def load_run_config(
    stage: str, path: str | Path | None = None, *, preset: str | None = None, overrides: dict[str, Any] | None = None
) -> RunConfig:
    """Defaults → preset (the caller's, else the file's `preset:`) → the file's values → overrides."""
    values = read_yaml_values(path) if path else {}
    chosen = preset or values.get("preset")
    config = default_run_config(stage, chosen)
    config = apply_values(config, {k: v for k, v in values.items() if k != "preset"}, str(path))
    return apply_values(config, dict(overrides or {}), "overrides")


def run_config_to_yaml(config: RunConfig) -> str:
    """Every field, in declaration order: what `load_run_config` reads back to the same config."""
    import yaml

    return yaml.safe_dump(dataclasses.asdict(config), sort_keys=False, allow_unicode=True)


def save_run_config(config: RunConfig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(run_config_to_yaml(config), encoding="utf-8")
    return path


def check_run_config(config: RunConfig) -> None:
    """Refuse, before any model loads, what would fail later or silently do the wrong thing."""
    stage = "grpo" if isinstance(config, GRPORunConfig) else "sft"
    if not config.model:
        raise InputError("no base model given (model: a local folder or a hub id)")
    if not config.data:
        raise InputError("no training data given (data: an export JSONL)")
    if not config.output_dir:
        raise InputError("no output directory given (output_dir)")
    choices = {
        "finetune": FINETUNE_MODES,
        "device": DEVICES,
        "precision": PRECISIONS,
        "on_overlong": OVERLONG_GRPO if stage == "grpo" else OVERLONG_SFT,
    }
    if stage == "grpo":
        choices["generation"] = GENERATION_ENGINES
    for name, allowed in choices.items():
        if getattr(config, name) not in allowed:
            raise InputError(f"{name} must be one of {', '.join(allowed)}, got {getattr(config, name)!r}")
    if config.finetune == "qlora" and config.precision == "fp16":
        # TRL keeps a quantised model's adapters in bf16, which fp16's gradient scaler cannot unscale
        raise InputError("qlora computes in bf16; use precision bf16 (or auto), not fp16")
    positive = ["batch_size", "grad_accum", "max_length", "logging_steps"]
    if stage == "grpo":
        positive += ["num_generations", "max_completion_length"]
    for name in positive:
        if getattr(config, name) < 1:
            raise InputError(f"{name} must be at least 1, got {getattr(config, name)}")
    if config.max_steps <= 0 and config.num_epochs <= 0:
        raise InputError("set max_steps or a positive num_epochs")
    if config.save_steps < 0:
        raise InputError(f"save_steps must be 0 (final model only) or positive, got {config.save_steps}")
    if stage == "grpo":
        generation_batch = config.batch_size * (config.steps_per_generation or config.grad_accum)
        if config.num_generations < 2:
            raise InputError("num_generations must be at least 2: GRPO compares completions within a group")
        if generation_batch % config.num_generations:
            raise InputError(
                f"batch_size × steps_per_generation ({generation_batch}) must be divisible by num_generations "
                f"({config.num_generations}): every prompt's group has to fit in one generation batch"
            )
