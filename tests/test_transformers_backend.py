"""The transformers backend on a real (tiny, random) Qwen2 loaded through from_pretrained."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from tiny_model import build_tiny_qwen2

from reasonrank.backends import make_backend
from reasonrank.backends.base import BackendConfig, BackendError
from reasonrank.types import GenerationParams, Message

PROMPTS: list[list[Message]] = [
    [{"role": "system", "content": "You rank passages."}, {"role": "user", "content": "flea"}],
    [
        {"role": "system", "content": "You rank passages."},
        {"role": "user", "content": "How long is the life cycle of a flea? " * 12},
    ],
    [
        {"role": "system", "content": "You rank passages."},
        {"role": "user", "content": "[1] cats [2] dogs. Answer: [2] > [1]"},
    ],
]
SHORT = GenerationParams(max_new_tokens=12)


@pytest.fixture(scope="module")
def tiny_dir(tiny_model_dir) -> Path:
    return tiny_model_dir


@pytest.fixture(scope="module")
def backend(tiny_dir):
    return make_backend(BackendConfig(kind="transformers", model=str(tiny_dir), device="cpu"))


@pytest.fixture(scope="module")
def adapter_dir(tiny_dir, tmp_path_factory) -> Path:
    """A LoRA adapter whose B matrices are perturbed away from zero, so it changes the model."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_dir)
    lora = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    peft_model = get_peft_model(model, lora)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.5)
    out = tmp_path_factory.mktemp("adapter")
    peft_model.save_pretrained(out)
    return out


def _logits(model, tokenizer, text: str):
    import torch

    ids = tokenizer(text, return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        return model(**ids).logits[0, -1]


def _rendered(backend, messages: list[Message]) -> str:
    from reasonrank.prompts import render_prompt

    return render_prompt(messages, backend.tokenizer)


def test_builder_is_cached_and_deterministic(tiny_dir, tmp_path):
    again = build_tiny_qwen2(tiny_dir)
    assert again == tiny_dir
    other = build_tiny_qwen2(tmp_path / "second")
    for name in ("tokenizer.json", "model.safetensors", "config.json"):
        assert (other / name).read_bytes() == (tiny_dir / name).read_bytes(), name
    config = json.loads((tiny_dir / "config.json").read_text())
    shape = (config["hidden_size"], config["num_attention_heads"], config["num_key_value_heads"])
    assert shape == (64, 4, 2)
    assert config["max_position_embeddings"] >= 8192 and config["tie_word_embeddings"] is True


def test_tokenizer_round_trips_after_autotokenizer_reload(tiny_dir):
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    reloaded = AutoTokenizer.from_pretrained(tiny_dir)
    as_trained = PreTrainedTokenizerFast(tokenizer_file=str(tiny_dir / "tokenizer.json"))
    text = "Rank [12] > [3] 2019 café 日本 <think> why </think>\n<answer> [2] > [1] </answer>"
    ids = reloaded(text, add_special_tokens=False)["input_ids"]
    assert ids == as_trained(text, add_special_tokens=False)["input_ids"]
    assert reloaded.decode(ids) == text
    for tag in ("<think>", "</think>", "<answer>", "</answer>"):
        assert len(reloaded(tag, add_special_tokens=False)["input_ids"]) == 1, tag
        assert tag in reloaded.decode(reloaded(tag)["input_ids"], skip_special_tokens=True)
    assert reloaded.eos_token == "<|im_end|>" and reloaded.pad_token == "<|endoftext|>"
    rendered = reloaded.apply_chat_template(
        [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
        tokenize=True,
        return_dict=True,
        return_assistant_tokens_mask=True,
    )
    assert 0 < sum(rendered["assistant_masks"]) < len(rendered["input_ids"])


def test_head_dim_64_variant_shape(tmp_path):
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(build_tiny_qwen2(tmp_path / "hd64", head_dim=64))
    shape = (config.hidden_size, config.num_attention_heads, config.num_key_value_heads)
    assert shape == (128, 2, 1)


def test_batched_greedy_equals_one_prompt_at_a_time(backend, tiny_dir):
    batched = backend.generate(PROMPTS, SHORT)
    alone = [backend.generate([p], SHORT)[0] for p in PROMPTS]
    assert [c.text for c in batched] == [c.text for c in alone]
    assert len({c.text for c in batched}) == len(PROMPTS)  # the prompts really differ
    chunked = make_backend(BackendConfig(model=str(tiny_dir), device="cpu", batch_size=2))
    assert [c.text for c in chunked.generate(PROMPTS, SHORT)] == [c.text for c in alone]

    encode = backend.tokenizer
    lengths = [len(encode(_rendered(backend, p), add_special_tokens=False)["input_ids"]) for p in PROMPTS]
    assert [c.tokens_in for c in batched] == lengths
    for completion in batched:
        assert completion.finish_reason == "length"
        assert completion.tokens_out == SHORT.max_new_tokens
        assert completion.seconds > 0 and completion.reasoning is None
    assert backend.generate([], SHORT) == []


def test_stop_token_ends_generation_with_stop_reason(backend, tiny_dir, tmp_path):
    """A copy of the model whose generation_config adds the 3rd greedy token as an extra EOS."""
    tokenizer = backend.tokenizer
    text = _rendered(backend, PROMPTS[0])
    prompt = tokenizer(text, return_tensors="pt", add_special_tokens=False)
    greedy = backend.model.generate(**prompt, max_new_tokens=SHORT.max_new_tokens, do_sample=False)
    ids = greedy[0, prompt["input_ids"].shape[1] :].tolist()
    cut = next(i for i, token in enumerate(ids) if i >= 2 and token not in ids[:i])
    copy = Path(shutil.copytree(tiny_dir, tmp_path / "model"))
    generation = json.loads((copy / "generation_config.json").read_text())
    generation["eos_token_id"] = [tokenizer.eos_token_id, ids[cut]]
    (copy / "generation_config.json").write_text(json.dumps(generation))

    stopper = make_backend(BackendConfig(model=str(copy), device="cpu"))
    stopped = stopper.generate(PROMPTS[:1], SHORT)[0]
    assert stopped.finish_reason == "stop"
    assert stopped.tokens_out == cut + 1
    assert stopped.text == tokenizer.decode(ids[: cut + 1], skip_special_tokens=True)


def test_seeded_sampling_is_reproducible_and_leaves_global_rng_alone(backend):
    import torch

    state = torch.get_rng_state()
    hot = replace(SHORT, temperature=1.0, seed=7)
    first = backend.generate(PROMPTS, hot)
    assert [c.text for c in backend.generate(PROMPTS, hot)] == [c.text for c in first]
    assert torch.equal(torch.get_rng_state(), state)
    other = backend.generate(PROMPTS, replace(hot, seed=8))
    assert [c.text for c in other] != [c.text for c in first]
    assert [c.text for c in first] != [c.text for c in backend.generate(PROMPTS, SHORT)]


def test_lora_adapter_is_loaded_merged_and_changes_the_model(backend, tiny_dir, adapter_dir):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    tuned = make_backend(BackendConfig(model=str(tiny_dir), device="cpu", adapter=str(adapter_dir)))
    assert not isinstance(tuned.model, PeftModel)  # merged for speed
    text = _rendered(backend, PROMPTS[1])
    base_logits = _logits(backend.model, backend.tokenizer, text)
    tuned_logits = _logits(tuned.model, tuned.tokenizer, text)
    assert (base_logits - tuned_logits).abs().max() > 0.1
    base = AutoModelForCausalLM.from_pretrained(tiny_dir)
    unmerged = PeftModel.from_pretrained(base, adapter_dir)
    assert torch.allclose(_logits(unmerged, backend.tokenizer, text), tuned_logits, atol=1e-4)
    assert [c.text for c in tuned.generate(PROMPTS, SHORT)] != [c.text for c in backend.generate(PROMPTS, SHORT)]


def test_dtype_option_is_applied(tiny_dir):
    import torch

    half = make_backend(BackendConfig(model=str(tiny_dir), device="cpu", dtype="bfloat16"))
    assert half.model.dtype == torch.bfloat16
    assert half.generate(PROMPTS[:1], GenerationParams(max_new_tokens=3))[0].tokens_out == 3


@pytest.mark.parametrize(
    "change, cause",
    [
        ({"model": "/nonexistent/tiny-model"}, "model path not found: /nonexistent/tiny-model"),
        ({"model": ""}, "no model given"),
        ({"dtype": "float64"}, "unknown dtype 'float64'"),
        ({"adapter": "/nonexistent/adapter"}, "adapter directory not found"),
        ({"batch_size": 0}, "batch_size must be at least 1"),
    ],
)
def test_bad_configuration_gives_one_line_error(tiny_dir, change, cause):
    config = replace(BackendConfig(model=str(tiny_dir), device="cpu"), **change)
    with pytest.raises(BackendError) as info:
        make_backend(config)
    assert cause in str(info.value) and "\n" not in str(info.value)


def test_folder_without_a_model_or_adapter_gives_one_line_error(tiny_dir, tmp_path):
    (tmp_path / "notes.txt").write_text("not a model")
    for config in (
        BackendConfig(model=str(tmp_path), device="cpu"),
        BackendConfig(model=str(tiny_dir), device="cpu", adapter=str(tmp_path)),
    ):
        with pytest.raises(BackendError) as info:
            make_backend(config)
        assert str(tmp_path) in str(info.value) and "\n" not in str(info.value)


def test_rerank_two_dl19_queries_end_to_end(backend, test_data):
    from reasonrank.io import read_rank_llm_json
    from reasonrank.window import WindowConfig, rerank, window_spans

    lists = read_rank_llm_json(test_data / "trec-dl19" / "bm25_top100_with_text.json")[:2]
    for candidate_list in lists:
        candidate_list.candidates = candidate_list.candidates[:5]
    config = WindowConfig(
        window=4,
        step=2,
        top_k=5,
        max_passage_tokens=48,
        generation=GenerationParams(max_new_tokens=16),
    )
    steps: list[tuple[int, int]] = []
    results = rerank(lists, backend, config, on_step=lambda *progress: steps.append(progress))

    spans = window_spans(5, 4, 2, 5)
    assert steps and steps[-1][0] == steps[-1][1] == len(spans)
    for candidate_list, result in zip(lists, results):
        assert result.qid == candidate_list.query.qid
        assert sorted(result.ranking) == sorted(candidate_list.docids)
        assert [(c.start, c.end) for c in result.calls] == spans
        for call in result.calls:
            assert call.finish_reason in ("stop", "length") and 0 < call.tokens_out <= 16
            assert call.finish_reason == "stop" or call.tokens_out == 16
            assert call.tokens_in > 0 and call.prompt[0]["role"] == "system"
            assert sorted(call.parsed) == list(range(call.end - call.start))
            assert call.raw_output  # the random model's text was recorded, repaired or not


@pytest.mark.gpu
def test_cuda_backend_matches_cpu_greedy_and_batches_consistently(tiny_dir):
    """On a GPU machine: the same tiny model on CUDA batches like on CPU and agrees with it."""
    cuda = make_backend(BackendConfig(model=str(tiny_dir), device="cuda", dtype="float32"))
    cpu = make_backend(BackendConfig(model=str(tiny_dir), device="cpu", dtype="float32"))
    batched = cuda.generate(PROMPTS, SHORT)
    alone = [cuda.generate([p], SHORT)[0] for p in PROMPTS]
    assert [c.text for c in batched] == [c.text for c in alone]
    assert [c.text for c in batched] == [c.text for c in cpu.generate(PROMPTS, SHORT)]
    assert str(cuda.device).startswith("cuda")
