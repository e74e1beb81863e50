"""Training configs: presets, YAML round-trip, the CLI's flags, and the checks that refuse bad runs early."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from reasonrank.cli import config_to_argv, parse_command
from reasonrank.cli.train import resolve_run_config
from reasonrank.io import InputError
from reasonrank.train.config import (
    PRESETS,
    GRPORunConfig,
    SFTRunConfig,
    check_run_config,
    default_run_config,
    load_run_config,
    run_config_to_yaml,
    save_run_config,
)


def test_paper_presets_carry_the_spec_hyperparameters():
    sft7 = default_run_config("sft", "paper-7b-full")
    assert (sft7.finetune, sft7.learning_rate, sft7.num_epochs, sft7.batch_size * sft7.grad_accum) == (
        "full",
        5e-6,
        5.0,
        8,
    )
    assert sft7.max_length == 23552 and sft7.preset == "paper-7b-full"
    lora32 = default_run_config("sft", "paper-32b-lora")
    assert (lora32.finetune, lora32.lora_r, lora32.lora_alpha, lora32.learning_rate) == ("lora", 32, 32, 1e-4)
    grpo7 = default_run_config("grpo", "paper-7b-full")
    assert isinstance(grpo7, GRPORunConfig)
    assert (grpo7.num_generations, grpo7.learning_rate, grpo7.beta, grpo7.max_completion_length) == (
        8,
        1e-6,
        0.001,
        3072,
    )
    assert grpo7.batch_size * grpo7.steps_per_generation * 8 == 16 * 8  # 16 prompts × 8 rollouts on 8 GPUs
    assert set(PRESETS) == {"paper-7b-full", "paper-32b-lora", "tiny-cpu"}


def test_yaml_round_trip_and_layering(tmp_path):
    config = load_run_config("grpo", preset="tiny-cpu", overrides={"model": "m", "data": "d.jsonl", "beta": 0.5})
    path = save_run_config(config, tmp_path / "run.yaml")
    assert load_run_config("grpo", path) == config
    # a short file: its preset applies first, its own values next, overrides last
    short = tmp_path / "short.yaml"
    short.write_text("preset: paper-32b-lora\nlearning_rate: 0.002\nmodel: base\n")
    layered = load_run_config("sft", short, overrides={"lora_r": 8})
    assert (layered.lora_alpha, layered.learning_rate, layered.lora_r, layered.model) == (32, 0.002, 8, "base")
    assert "learning_rate: 0.002" in run_config_to_yaml(layered)


@pytest.mark.parametrize(
    "text, message",
    [
        ("learning_rate: fast\n", "learning_rate' must be float"),
        ("num_generations: 4\n", "unknown SFTRunConfig field(s): num_generations"),
        ("- a list\n", "must be a mapping"),
        ("learning_rate: [\n", "bad.yaml: not valid YAML"),
        ("preset: huge\n", "unknown preset 'huge'"),
    ],
)
def test_bad_yaml_values_are_one_line_errors(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(InputError, match=None) as info:
        load_run_config("sft", path)
    assert message in str(info.value)


def test_checks_refuse_runs_that_would_fail_later():
    base = dict(model="m", data="d", output_dir="o")
    with pytest.raises(InputError, match="divisible by num_generations"):
        check_run_config(GRPORunConfig(**base, batch_size=3, grad_accum=1, num_generations=2))
    with pytest.raises(InputError, match="at least two|at least 2"):
        check_run_config(GRPORunConfig(**base, num_generations=1))
    with pytest.raises(InputError, match="on_overlong must be one of refuse, drop"):
        check_run_config(GRPORunConfig(**base, on_overlong="truncate"))
    with pytest.raises(InputError, match="no base model"):
        check_run_config(SFTRunConfig(data="d", output_dir="o"))
    with pytest.raises(InputError, match="qlora computes in bf16"):
        check_run_config(SFTRunConfig(**base, finetune="qlora", precision="fp16"))
    with pytest.raises(InputError, match="finetune must be one of full, lora, qlora"):
        check_run_config(SFTRunConfig(**base, finetune="int8"))
    check_run_config(GRPORunConfig(**base, batch_size=4, grad_accum=1, num_generations=4))


def test_cli_flags_override_the_file_and_render_back(tmp_path):
    path = save_run_config(
        load_run_config("sft", preset="tiny-cpu", overrides={"model": "m", "data": "d"}), tmp_path / "run.yaml"
    )
    command = parse_command(
        [
            "train",
            "sft",
            "--config",
            str(path),
            "--learning-rate",
            "0.5",
            "--resume",
            "true",
            "--max-steps",
            "3",
            "--output-dir",
            str(tmp_path / "out"),
        ]
    )
    resolved = resolve_run_config(command)
    assert (resolved.learning_rate, resolved.resume, resolved.max_steps, resolved.model) == (0.5, True, 3, "m")
    assert parse_command(config_to_argv(command)) == command
    with pytest.raises(InputError, match="num_generations"):
        resolve_run_config(parse_command(["train", "sft", "--num-generations", "4"]))
    grpo = parse_command(["train", "grpo", "--preset", "tiny-cpu", "--steps-per-generation", "none"])
    assert resolve_run_config(grpo).steps_per_generation is None
    assert dataclasses.asdict(grpo)["run"]["preset"] == "tiny-cpu"  # what a Job row stores


def test_length_report_refuses_unless_told(tiny_model_dir, tmp_path):
    from transformers import AutoTokenizer

    from reasonrank.train.data import apply_length_policy, length_report

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    rows = [
        {
            "messages": [
                {"role": "system", "content": "s"},
                {"role": "user", "content": "word " * n},
                {"role": "assistant", "content": "<think>x</think>\n<answer>[1]</answer>"},
            ]
        }
        for n in (5, 200, 10, 400)
    ]
    report = length_report(rows, tokenizer, 100, "sft")
    assert report.too_long == [1, 3] and report.longest > 400
    with pytest.raises(InputError, match=r"2 of 4 examples are longer than max_length 100 tokens"):
        apply_length_policy(rows, report, "refuse")
    assert apply_length_policy(rows, report, "drop") == [rows[0], rows[2]]
    assert apply_length_policy(rows, report, "truncate") == rows


def test_bad_export_lines_name_file_and_line(tmp_path):
    from reasonrank.train.data import load_rows

    path = tmp_path / "rl.jsonl"
    good = (
        '{"prompt": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}], '
        '"initial_list": ["a", "b"], "teacher_list": ["b", "a"], "relevant_docids": ["b"]}'
    )
    path.write_text(good + "\n" + good.replace('["b", "a"]', '["b", "c"]') + "\n")
    with pytest.raises(InputError, match=r"rl.jsonl:2: teacher_list must be a permutation"):
        load_rows(path, "grpo")
    path.write_text(good + "\n")
    assert load_rows(path, "grpo")[0]["teacher_list"] == ["b", "a"]
    with pytest.raises(InputError, match=r"rl.jsonl:1: not an SFT row"):
        load_rows(path, "sft")


def test_shipped_accelerate_configs_parse_as_deepspeed_zero3_and_fsdp():
    """What `accelerate launch --config_file …` reads; a typo in a key fails here, not on a cluster."""
    from accelerate.commands.config.config_args import load_config_from_file

    root = Path(__file__).resolve().parents[1] / "configs" / "accelerate"
    zero3 = load_config_from_file(str(root / "zero3.yaml"))
    fsdp = load_config_from_file(str(root / "fsdp.yaml"))
    assert zero3.distributed_type.value == "DEEPSPEED" and zero3.deepspeed_config["zero_stage"] == 3
    assert fsdp.distributed_type.value == "FSDP" and fsdp.fsdp_config
    assert zero3.mixed_precision == fsdp.mixed_precision == "bf16"


def _qlora_unavailable() -> str | None:
    """Why qlora cannot run on this machine (the refusal's cause), None where it can."""
    import importlib.util

    import torch

    if not torch.cuda.is_available():
        return "no CUDA GPU is visible"
    return None if importlib.util.find_spec("bitsandbytes") else "bitsandbytes is not installed"


@pytest.mark.parametrize("device", ["auto", "cpu"])
def test_qlora_is_refused_before_anything_loads(tmp_path, capsys, device):
    """Neither the data nor the model exists: the one error is qlora's, so nothing was read first,
    and the output directory was never created."""
    from reasonrank.cli import main

    cause = "device cpu was asked for" if device == "cpu" else _qlora_unavailable()
    if cause is None:
        pytest.skip("this machine has CUDA and bitsandbytes: qlora is allowed here")
    out = tmp_path / "run"
    argv = [
        "train",
        "sft",
        "--preset",
        "tiny-cpu",
        "--finetune",
        "qlora",
        "--device",
        device,
        "--model",
        str(tmp_path / "absent-model"),
        "--data",
        str(tmp_path / "absent.jsonl"),
        "--output-dir",
        str(out),
        "--no-register",
    ]
    assert main(argv) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert error == [f"error: qlora needs a CUDA GPU and bitsandbytes (requirements-gpu.txt); here {cause}"]
    assert not out.exists()


def test_cli_help_offers_qlora(capsys):
    from reasonrank.cli import main

    assert main(["train", "--help"]) == 0
    assert "full, lora or qlora" in " ".join(capsys.readouterr().out.split())


def test_an_uncached_hub_id_offline_is_one_line_at_once(tmp_path, capsys, monkeypatch):
    """No minute of hub retries: the base model is refused before anything loads."""
    import time

    from reasonrank.cli import main

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = tmp_path / "run"
    argv = ["train", "sft", "--preset", "tiny-cpu", "--model", "example-org/never-downloaded-7b"]
    argv += ["--data", str(tmp_path / "rows.jsonl"), "--output-dir", str(out), "--no-register"]
    started = time.monotonic()
    assert main(argv) == 2
    assert time.monotonic() - started < 10
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and error[0].startswith(
        "error: model 'example-org/never-downloaded-7b' is not a local folder"
    )
    assert "HF_HUB_OFFLINE is set" in error[0] and not out.exists()
    assert main([*argv[:5], str(tmp_path), *argv[6:]]) == 2  # a folder that is not a model
    assert "no config.json there" in capsys.readouterr().err
