"""Cold-start SFT (docs/method.md §8.1) with TRL's SFTTrainer: full fine-tune or LoRA, assistant-only loss.

The rows are the export's `{"messages": [system, user, assistant]}` — the inference prompt byte
for byte plus the target `<think>…</think>\\n<answer>[a] > [b] > …</answer>` — so the loss falls
only on the assistant turn. That needs `{% generation %}` markers in the chat template: TRL adds
them to the templates it knows (Qwen2.5's among them); for any other template the run stops
before a model loads and says so, rather than training on the prompt as well.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from reasonrank.io import InputError
from reasonrank.train.common import TrainResult, load_model, lora_config, prepare_run, train, trainer_args
from reasonrank.train.config import SFTRunConfig


def check_assistant_mask_support(tokenizer: Any) -> None:
    """Fail early, in one line, when assistant-only loss cannot mask this model's template."""
    from trl.chat_template_utils import get_training_chat_template

    try:
        get_training_chat_template(tokenizer)
    except ValueError:
        raise InputError(
            "the model's chat template has no {% generation %} markers and TRL cannot add them; "
            "add the markers to the template, or set assistant_only_loss: false"
        ) from None


def run_sft(config: SFTRunConfig, *, callbacks: Sequence[Any] = ()) -> TrainResult:
    """Train, checkpoint every `save_steps`, save `<output_dir>/final`; `callbacks` are extra
    transformers TrainerCallbacks (the events callback is always there)."""
    started = time.monotonic()
    run = prepare_run(
        config, "sft", callbacks, check_tokenizer=check_assistant_mask_support if config.assistant_only_loss else None
    )

    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    args = SFTConfig(
        **trainer_args(config, run.device),
        max_length=config.max_length,
        assistant_only_loss=config.assistant_only_loss,
        packing=config.packing,
    )
    trainer = SFTTrainer(
        model=load_model(config, run.device),
        args=args,
        train_dataset=Dataset.from_list(run.rows),
        processing_class=run.tokenizer,
        peft_config=lora_config(config),
        callbacks=run.callbacks,
    )
    return train(trainer, config, run.tokenizer, "sft", run.resume_from, run.report.summary(), started)
