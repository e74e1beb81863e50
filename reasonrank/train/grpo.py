"""GRPO (docs/method.md §8.2) with TRL's GRPOTrainer and the core's multi-view reward.

The reward that drives the advantage is `ranking_reward` (−1 format / 0 count / nDCG@10 +
0.2·Recall@10 + 0.1·RBO) plus `format_reward_weight` × the graded `format_reward` (the paper
uses none; a small model needs it to see any gradient before it writes a valid answer). The
terms of the ranking reward are passed to TRL as extra reward functions with weight 0: they do
not change a single advantage, but TRL logs each under its own name (`rewards/ndcg10/mean` …),
so the curves show why the reward moves.

Rollouts use vLLM (TRL's colocated engine) on a CUDA machine that has it, and transformers'
`generate` elsewhere.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from reasonrank.io import InputError
from reasonrank.metrics import completion_text, format_reward, ranking_reward, reward_terms
from reasonrank.train.common import TrainResult, load_model, lora_config, prepare_run, train, trainer_args
from reasonrank.train.config import GRPORunConfig

#: RewardTerms fields logged as their own curves
TERM_NAMES = ("ndcg10", "recall10", "rbo", "format_ok", "count_ok")


def _term_reward(name: str) -> Callable[..., list[float]]:
    """A TRL reward callable returning one term of `reward_terms` (logged, weight 0). Each term
    recomputes `reward_terms` (microseconds, beside seconds of generation)."""

    def term(completions, initial_list, teacher_list, relevant_docids, **kwargs) -> list[float]:
        return [
            float(getattr(reward_terms(completion_text(c), i, t, r), name))
            for c, i, t, r in zip(completions, initial_list, teacher_list, relevant_docids)
        ]

    term.__name__ = name  # TRL names the logged series after the callable
    return term


def reward_functions(config: GRPORunConfig) -> tuple[list[Callable[..., list[float]]], list[float]]:
    """The reward callables and their weights, in the order TRL receives them."""
    funcs = [ranking_reward, format_reward, *(_term_reward(name) for name in TERM_NAMES)]
    weights = [1.0, config.format_reward_weight, *(0.0 for _ in TERM_NAMES)]
    return funcs, weights


def use_vllm(config: GRPORunConfig, device: str) -> bool:
    """vLLM rollouts only on CUDA: `auto` picks it when it is installed, `vllm` insists on it."""
    if config.generation == "transformers":
        return False
    if device != "cuda":
        if config.generation == "vllm":
            raise InputError("generation vllm needs a CUDA GPU; use transformers (or auto) on CPU")
        return False
    try:
        import vllm  # noqa: F401
    except ImportError:
        if config.generation == "vllm":
            raise InputError("generation vllm asked for, but vllm is not installed (requirements-gpu.txt)") from None
        return False
    return True


def run_grpo(config: GRPORunConfig, *, callbacks: Sequence[Any] = ()) -> TrainResult:
    """Train with GRPO, checkpoint every `save_steps`, save `<output_dir>/final`."""
    started = time.monotonic()
    run = prepare_run(config, "grpo", callbacks)
    vllm = use_vllm(config, run.device)

    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    funcs, weights = reward_functions(config)
    extra: dict[str, Any] = {}
    if config.steps_per_generation:
        extra["steps_per_generation"] = config.steps_per_generation
    if vllm:
        extra.update(vllm_mode="colocate", vllm_gpu_memory_utilization=config.vllm_gpu_memory_utilization)
    args = GRPOConfig(
        **trainer_args(config, run.device),
        num_generations=config.num_generations,
        max_completion_length=config.max_completion_length,
        temperature=config.temperature,
        beta=config.beta,
        epsilon=config.epsilon,
        reward_weights=weights,
        use_vllm=vllm,
        **extra,
    )
    trainer = GRPOTrainer(
        model=load_model(config, run.device),
        reward_funcs=funcs,
        args=args,
        train_dataset=Dataset.from_list(run.rows),
        processing_class=run.tokenizer,
        peft_config=lora_config(config),
        callbacks=run.callbacks,
    )
    return train(trainer, config, run.tokenizer, "grpo", run.resume_from, run.report.summary(), started)
