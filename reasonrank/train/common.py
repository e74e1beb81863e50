"""What the SFT and GRPO runs share: device and precision, trainer arguments, LoRA, the model,
resuming, and the final save.

Why here and not in each trainer: both stages must agree on where checkpoints go, how a resume
finds them and what the final folder holds, because the CLI registers that folder as a
reranker and the transformers backend loads it (a full model folder, or base model + adapter).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reasonrank.io import InputError
from reasonrank.train.config import RunConfig, check_run_config, save_run_config
from reasonrank.train.data import LengthReport, apply_length_policy, length_report, load_rows

FINAL_DIR = "final"
CONFIG_FILE = "train_config.yaml"
METRICS_FILE = "metrics.jsonl"
QLORA_NEEDS = "qlora needs a CUDA GPU and bitsandbytes (requirements-gpu.txt)"


@dataclass
class TrainResult:
    """What a finished run produced: the model folder to serve and the figures to show."""

    stage: str
    output_dir: str
    model_dir: str  # full model folder, or the adapter folder when `adapter`
    adapter: bool
    base_model: str
    steps: int
    seconds: float
    metrics: dict[str, float] = field(default_factory=dict)  # the last logged values
    lengths: dict[str, int] = field(default_factory=dict)  # LengthReport.summary()
    resumed_from: str | None = None


def resolve_device(config: RunConfig) -> str:
    """cuda when asked for (and present) or when auto finds one; cpu otherwise."""
    import torch

    has_cuda = torch.cuda.is_available()
    if config.device == "cuda" and not has_cuda:
        raise InputError("device cuda was asked for, but no CUDA GPU is visible")
    return "cuda" if config.device == "cuda" or (config.device == "auto" and has_cuda) else "cpu"


def precision_args(config: RunConfig, device: str) -> dict[str, Any]:
    """bf16/fp16/use_cpu for TRL: on CPU always fp32 (TRL's bf16 default errors there)."""
    import torch

    if device == "cpu":
        if config.precision in ("bf16", "fp16"):
            raise InputError(f"precision {config.precision} needs a GPU; use fp32 (or auto) on CPU")
        return {"bf16": False, "fp16": False, "use_cpu": True}
    precision = config.precision
    if precision == "auto":
        precision = "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return {"bf16": precision == "bf16", "fp16": precision == "fp16", "use_cpu": False}


def is_main_process() -> bool:
    """Rank 0 under `accelerate launch` (or a plain single process): the one that reports and registers."""
    return int(os.environ.get("RANK", "0")) == 0


def trainer_args(config: RunConfig, device: str) -> dict[str, Any]:
    """Keyword arguments SFTConfig and GRPOConfig both take (transformers TrainingArguments)."""
    return {
        "output_dir": config.output_dir,
        "learning_rate": config.learning_rate,
        "num_train_epochs": config.num_epochs,
        "max_steps": config.max_steps,
        "per_device_train_batch_size": config.batch_size,
        "gradient_accumulation_steps": config.grad_accum,
        "lr_scheduler_type": config.lr_scheduler,
        "warmup_steps": config.warmup_ratio,  # a float below 1 is a share of the steps
        "weight_decay": config.weight_decay,
        "gradient_checkpointing": config.gradient_checkpointing,
        "save_strategy": "steps" if config.save_steps else "no",
        "save_steps": config.save_steps or 500,
        "save_total_limit": config.save_total_limit,
        "logging_steps": config.logging_steps,
        "seed": config.seed,
        "report_to": "none",
        "dataloader_num_workers": 0,
        "disable_tqdm": False,
        **precision_args(config, device),
    }


def lora_config(config: RunConfig) -> Any:
    """PEFT LoraConfig for `finetune: lora` and `qlora` (the same adapter, over 4-bit weights), None
    for a full fine-tune."""
    if config.finetune == "full":
        return None
    from peft import LoraConfig

    targets = config.lora_targets.strip()
    modules: str | list[str] = (
        targets if targets == "all-linear" else [t.strip() for t in targets.split(",") if t.strip()]
    )
    return LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=modules,
        task_type="CAUSAL_LM",
    )


def load_tokenizer(name: str) -> Any:
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(name)
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot load the tokenizer of {name}: {' '.join(str(exc).split())[:300]}") from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def check_qlora_support(config: RunConfig) -> None:
    """Refuse `finetune: qlora` where bitsandbytes' 4-bit kernels cannot run (no CUDA GPU, or the
    package missing), before any data, tokenizer or model loads, with the one fix to make."""
    if config.finetune != "qlora":
        return
    import importlib.util

    import torch

    if config.device == "cpu" or not torch.cuda.is_available():
        missing = "device cpu was asked for" if config.device == "cpu" else "no CUDA GPU is visible"
    elif importlib.util.find_spec("bitsandbytes") is None:
        missing = "bitsandbytes is not installed"
    else:
        return
    raise InputError(f"{QLORA_NEEDS}; here {missing}")


def _quantized_base(config: RunConfig) -> Any:
    """The base model in 4-bit NF4 with double quantisation and bf16 compute (the QLoRA recipe),
    made ready for adapter training: base frozen, norms and head upcast to fp32."""
    import torch
    from peft import prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    quantization = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16,
    )
    # 4-bit weights cannot be moved after loading: each process quantises onto its own GPU
    device_map = {"": int(os.environ.get("LOCAL_RANK", "0"))}
    model = AutoModelForCausalLM.from_pretrained(
        config.model, dtype=torch.bfloat16, quantization_config=quantization, device_map=device_map
    )
    return prepare_model_for_kbit_training(model, use_gradient_checkpointing=config.gradient_checkpointing)


def load_model(config: RunConfig, device: str) -> Any:
    """The base model in the dtype training keeps its weights in (fp32 on CPU; 4-bit for qlora)."""
    import torch
    from transformers import AutoModelForCausalLM

    # bf16 weights halve the memory of a large model; fp16 training keeps fp32 master weights (AMP)
    dtype = torch.bfloat16 if precision_args(config, device)["bf16"] else torch.float32
    try:
        if config.finetune == "qlora":
            return _quantized_base(config)
        return AutoModelForCausalLM.from_pretrained(config.model, dtype=dtype)
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot load the model {config.model}: {' '.join(str(exc).split())[:300]}") from None


def prepare_output(config: RunConfig) -> str | None:
    """Check the config (qlora's needs included), create output_dir, write the resolved config
    there, and find the checkpoint to resume from.

    A run that does not resume refuses an output directory that already holds checkpoints, so
    a second run never mixes its checkpoints with an earlier run's.
    """
    from transformers.trainer_utils import get_last_checkpoint

    check_run_config(config)
    check_qlora_support(config)
    out = Path(config.output_dir)
    last = get_last_checkpoint(str(out)) if out.is_dir() else None
    if config.resume and last is None:
        raise InputError(f"nothing to resume: {out} holds no checkpoint-N folder (set save_steps to write them)")
    if not config.resume and last is not None:
        raise InputError(f"{out} already holds checkpoints of an earlier run; resume it, or choose another output_dir")
    out.mkdir(parents=True, exist_ok=True)
    save_run_config(config, out / CONFIG_FILE)
    return last


@dataclass
class PreparedRun:
    """What both trainers start from, once the output folder, data and tokenizer are checked."""

    resume_from: str | None  # the checkpoint to resume from
    rows: list[dict]  # the rows to train on (after the length policy)
    tokenizer: Any
    report: LengthReport
    device: str
    callbacks: list[Any]  # the events callback, then the caller's


def prepare_run(
    config: RunConfig, stage: str, callbacks: Sequence[Any] = (), check_tokenizer: Callable[[Any], None] | None = None
) -> PreparedRun:
    """The preamble of every run: prepare the output folder, load and measure the rows with the
    model's tokenizer (`check_tokenizer` vets it first), apply the length policy, pick the device."""
    from reasonrank.train.callbacks import make_events_callback

    resume_from = prepare_output(config)
    rows = load_rows(config.data, stage)
    tokenizer = load_tokenizer(config.model)
    if check_tokenizer is not None:
        check_tokenizer(tokenizer)
    report = length_report(rows, tokenizer, config.max_length, stage)
    rows = apply_length_policy(rows, report, config.on_overlong)
    return PreparedRun(
        resume_from=resume_from,
        rows=rows,
        tokenizer=tokenizer,
        report=report,
        device=resolve_device(config),
        callbacks=[make_events_callback(Path(config.output_dir) / METRICS_FILE), *callbacks],
    )


def save_final(trainer: Any, config: RunConfig, tokenizer: Any) -> tuple[str, bool]:
    """Write the trained weights (the adapter alone for LoRA and QLoRA) and tokenizer to output_dir/final."""
    final = Path(config.output_dir) / FINAL_DIR
    trainer.save_model(str(final))  # collective under ZeRO-3 / FSDP: every rank calls it
    if trainer.is_world_process_zero():
        tokenizer.save_pretrained(str(final))
    return str(final), config.finetune != "full"


def last_logged(trainer: Any) -> dict[str, float]:
    """The last training log entry's numbers (loss, reward, …), for the run summary."""
    from reasonrank.train.callbacks import event_values

    for entry in reversed(trainer.state.log_history):
        values = event_values(entry)
        if values and "train_runtime" not in entry:
            return values
    return {}


def train(
    trainer: Any,
    config: RunConfig,
    tokenizer: Any,
    stage: str,
    resume_from: str | None,
    lengths: dict[str, int],
    started: float,
) -> TrainResult:
    """Run the trainer (from the checkpoint when resuming), save the final model, summarise."""
    trainer.train(resume_from_checkpoint=resume_from)
    model_dir, adapter = save_final(trainer, config, tokenizer)
    return TrainResult(
        stage=stage,
        output_dir=config.output_dir,
        model_dir=model_dir,
        adapter=adapter,
        base_model=config.model,
        steps=trainer.state.global_step,
        seconds=time.monotonic() - started,
        metrics=last_logged(trainer),
        lengths=lengths,
        resumed_from=resume_from,
    )
