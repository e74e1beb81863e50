"""Fine-tuning a reranker: cold-start SFT, then GRPO with the multi-view reward (docs/method.md §8).

The library side only: configs (YAML round-trip, presets), export rows and their length report,
the two trainers, the callback that feeds the job panel, and the reward debugger. It takes files
and returns a TrainResult; registering the model in the label store is the CLI's job
(reasonrank/cli/train.py). torch, transformers, TRL and PEFT are imported inside the functions
that use them, so importing this package is free.
"""

from reasonrank.train.common import TrainResult
from reasonrank.train.config import (
    PRESETS,
    STAGES,
    GRPORunConfig,
    RunConfig,
    SFTRunConfig,
    load_run_config,
    run_config_to_yaml,
    save_run_config,
)


def run_training(config: RunConfig, **kwargs) -> TrainResult:
    """Run the stage `config` belongs to (SFTRunConfig → SFT, GRPORunConfig → GRPO)."""
    if isinstance(config, GRPORunConfig):
        from reasonrank.train.grpo import run_grpo

        return run_grpo(config, **kwargs)
    from reasonrank.train.sft import run_sft

    return run_sft(config, **kwargs)


__all__ = [
    "PRESETS",
    "STAGES",
    "GRPORunConfig",
    "RunConfig",
    "SFTRunConfig",
    "TrainResult",
    "load_run_config",
    "run_config_to_yaml",
    "run_training",
    "save_run_config",
]
