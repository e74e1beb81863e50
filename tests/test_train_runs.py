"""SFT then GRPO on a tiny random Qwen2 with real DL19 windows: it learns, it logs, it resumes.

One SFT run (session fixture) feeds every test: the untrained model never writes the
think/answer format (reward −1), the SFT model does; GRPO starts from the SFT model (as in the
paper), runs a few steps with the real reward and writes a LoRA adapter that the transformers
backend loads. The same runs repeat on CUDA under the `gpu` marker.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from train_fixtures import dl19_windows, write_rl_export, write_sft_export

from reasonrank.backends import make_backend
from reasonrank.backends.base import BackendConfig
from reasonrank.export import prompt_messages
from reasonrank.io import InputError
from reasonrank.metrics import reward_terms
from reasonrank.train import load_run_config
from reasonrank.train.common import METRICS_FILE
from reasonrank.types import GenerationParams

WINDOWS = 8


@pytest.fixture(scope="module")
def labels(dl19):
    return dl19_windows(dl19, WINDOWS)


@pytest.fixture(scope="module")
def exports(labels, tmp_path_factory):
    folder = tmp_path_factory.mktemp("exports")
    return write_sft_export(labels, folder), write_rl_export(labels, folder)


def _sft(tiny_model_dir, exports, out: Path, device: str = "cpu", **overrides):
    from reasonrank.train.sft import run_sft

    config = load_run_config(
        "sft",
        preset="tiny-cpu",
        overrides={
            "model": str(tiny_model_dir),
            "data": str(exports[0]),
            "output_dir": str(out),
            "device": device,
            **overrides,
        },
    )
    return run_sft(config)


def _grpo(model_dir, exports, out: Path, device: str = "cpu"):
    from reasonrank.train.grpo import run_grpo

    config = load_run_config(
        "grpo",
        preset="tiny-cpu",
        overrides={"model": str(model_dir), "data": str(exports[1]), "output_dir": str(out), "device": device},
    )
    return run_grpo(config)


def _rewards(model: str, labels, device: str = "cpu", adapter: str | None = None) -> list[float]:
    """Greedy completions of the training prompts, scored with the core reward."""
    backend = make_backend(BackendConfig(kind="transformers", model=model, adapter=adapter, device=device))
    prompts = [prompt_messages(label, max_passage_tokens=12) for label in labels]
    completions = backend.generate(prompts, GenerationParams(max_new_tokens=48))
    backend.close()
    return [
        reward_terms(c.text, label.candidates.docids, label.ranking, label.relevant_docids).total
        for c, label in zip(completions, labels)
    ]


def _metrics(out: str) -> list[dict]:
    return [json.loads(line) for line in (Path(out) / METRICS_FILE).read_text().splitlines()]


@pytest.fixture(scope="module")
def sft_run(tiny_model_dir, exports, tmp_path_factory):
    return _sft(tiny_model_dir, exports, tmp_path_factory.mktemp("sft") / "run")


@pytest.fixture(scope="module")
def grpo_run(sft_run, exports, tmp_path_factory):
    return _grpo(sft_run.model_dir, exports, tmp_path_factory.mktemp("grpo") / "run")


def _check_sft_learned(tiny_model_dir, labels, run, device: str) -> None:
    before = _rewards(str(tiny_model_dir), labels, device)
    after = _rewards(run.model_dir, labels, device)
    assert before == [-1.0] * len(labels)  # the random model never writes <think>…</think> <answer>…</answer>
    assert sum(r > -1 for r in after) >= 6, after  # most greedy outputs now parse
    losses = [m["loss"] for m in _metrics(run.output_dir) if "loss" in m]
    assert len(losses) == run.steps and losses[-1] < losses[0] / 5


def test_sft_learns_the_output_format(tiny_model_dir, labels, sft_run):
    assert sft_run.steps == 16 and not sft_run.adapter
    assert sft_run.lengths["too_long"] == 0 and sft_run.lengths["examples"] == WINDOWS
    _check_sft_learned(tiny_model_dir, labels, sft_run, "cpu")


def _check_grpo(run, labels, sft_dir: str, device: str) -> None:
    from safetensors.torch import load_file

    assert run.steps == 4 and run.adapter
    logged = _metrics(run.output_dir)
    assert [m["step"] for m in logged] == [1, 2, 3, 4]
    for name in (
        "reward",
        "reward_ranking_reward",
        "reward_format_reward",
        "reward_ndcg10",
        "reward_recall10",
        "reward_rbo",
        "reward_format_ok",
        "loss",
        "lr",
    ):
        assert all(name in m for m in logged), name
    assert any(m["grad_norm"] > 0 for m in logged)
    weights = load_file(str(Path(run.model_dir) / "adapter_model.safetensors"))
    lora_b = [t for name, t in weights.items() if "lora_B" in name]
    assert lora_b and any(float(t.abs().max()) > 0 for t in lora_b)  # B starts at zero: it was trained
    rewards = _rewards(sft_dir, labels[:2], device, adapter=run.model_dir)
    assert len(rewards) == 2


def test_grpo_logs_reward_terms_and_trains_an_adapter(grpo_run, sft_run, labels):
    _check_grpo(grpo_run, labels, sft_run.model_dir, "cpu")


def test_grpo_adapter_reranks_through_the_backend(grpo_run, sft_run, dl19):
    from reasonrank.window import WindowConfig, rerank

    backend = make_backend(
        BackendConfig(kind="transformers", model=sft_run.model_dir, adapter=grpo_run.model_dir, device="cpu")
    )
    head = dataclasses.replace(dl19[0], candidates=dl19[0].candidates[:6])
    results = rerank(
        [head],
        backend,
        WindowConfig(window=4, step=2, top_k=6, max_passage_tokens=12, generation=GenerationParams(max_new_tokens=48)),
    )
    backend.close()
    assert sorted(results[0].ranking) == sorted(head.docids)  # a permutation of the six candidates
    assert len(results[0].calls) == 2


def test_resume_continues_the_step_counter(tiny_model_dir, exports, tmp_path):
    from transformers import TrainerCallback

    from reasonrank.train.sft import run_sft

    class StopAt(TrainerCallback):
        """Interrupt the run after step 2 (checkpoint-2 is due then), as a crash or cancel would."""

        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 2:
                control.should_training_stop = True

    out = tmp_path / "run"
    overrides = {
        "model": str(tiny_model_dir),
        "data": str(exports[0]),
        "output_dir": str(out),
        "device": "cpu",
        "max_steps": 4,
        "save_steps": 2,
    }
    first = run_sft(load_run_config("sft", preset="tiny-cpu", overrides=overrides), callbacks=[StopAt()])
    assert first.steps == 2 and (out / "checkpoint-2").is_dir()
    with pytest.raises(InputError, match="already holds checkpoints"):
        run_sft(load_run_config("sft", preset="tiny-cpu", overrides=overrides))
    second = run_sft(load_run_config("sft", preset="tiny-cpu", overrides={**overrides, "resume": True}))
    assert second.steps == 4 and second.resumed_from.endswith("checkpoint-2")
    assert [m["step"] for m in _metrics(str(out))] == [1, 2, 3, 4]  # steps 3, 4 follow on, none repeated


def test_overlong_examples_are_refused_before_training(tiny_model_dir, exports, tmp_path):
    with pytest.raises(InputError, match=r"8 of 8 examples are longer than max_length 50 tokens"):
        _sft(tiny_model_dir, exports, tmp_path / "run", max_length=50)


@pytest.mark.gpu
def test_sft_then_grpo_on_cuda(tiny_model_dir, labels, exports, tmp_path):
    sft = _sft(tiny_model_dir, exports, tmp_path / "sft", device="cuda")
    _check_sft_learned(tiny_model_dir, labels, sft, "cuda")
    grpo = _grpo(sft.model_dir, exports, tmp_path / "grpo", device="cuda")
    _check_grpo(grpo, labels, sft.model_dir, "cuda")
    steps = {run.stage: round(run.seconds / run.steps, 3) for run in (sft, grpo)}
    print(f"seconds per step on CUDA: {steps}")


@pytest.mark.gpu
def test_qlora_sft_on_cuda(tiny_model_dir, labels, exports, tmp_path):
    """Two QLoRA steps: the base really is 4-bit while training, the adapter trains and loads
    onto the full-precision base in the transformers backend."""
    pytest.importorskip("bitsandbytes", reason="qlora needs bitsandbytes (requirements-gpu.txt)")
    from safetensors.torch import load_file
    from transformers import TrainerCallback

    class CountLinear4bit(TrainerCallback):
        found = 0

        def on_train_begin(self, args, state, control, model=None, **kwargs):
            self.found = sum(type(module).__name__ == "Linear4bit" for module in model.modules())

    seen = CountLinear4bit()
    from reasonrank.train.sft import run_sft

    config = load_run_config(
        "sft",
        preset="tiny-cpu",
        overrides={
            "model": str(tiny_model_dir),
            "data": str(exports[0]),
            "output_dir": str(tmp_path / "qlora"),
            "device": "cuda",
            "precision": "auto",
            "finetune": "qlora",
            "max_steps": 2,
            "lora_r": 8,
            "lora_alpha": 16,
            "lora_targets": "q_proj,v_proj",
            "learning_rate": 1e-3,
        },
    )
    run = run_sft(config, callbacks=[seen])
    assert run.steps == 2 and run.adapter and seen.found > 0
    losses = [m["loss"] for m in _metrics(run.output_dir) if "loss" in m]
    assert len(losses) == 2 and all(0 < loss < 100 for loss in losses)
    weights = load_file(str(Path(run.model_dir) / "adapter_model.safetensors"))
    assert any(float(t.abs().max()) > 0 for name, t in weights.items() if "lora_B" in name)
    assert len(_rewards(str(tiny_model_dir), labels[:2], "cuda", adapter=run.model_dir)) == 2
    print(f"seconds per QLoRA SFT step on CUDA: {run.seconds / run.steps:.3f}")
