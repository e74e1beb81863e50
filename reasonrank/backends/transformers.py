"""A local Hugging Face causal LM as a reranking backend (CPU or one GPU), optionally with LoRA.

Why it exists next to vLLM: it runs anywhere torch runs (tests, CPU laptops, a freshly trained
adapter before merging), at the cost of throughput. Prompts are rendered exactly as for the
released checkpoints (chat template + ftfy, via `reasonrank.prompts.render_prompt`), batched
with left padding so every row's last prompt token sits at the end of the batch.

Decoding uses only the settings in `GenerationParams`: the model's own generation_config
sampling defaults (repetition penalty, top-k, …) are neutralised, as an explicit vLLM
`SamplingParams` in the reference code does. torch/transformers/peft are imported lazily.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from reasonrank.backends.base import Backend, BackendConfig, BackendError, DeltaSink
from reasonrank.types import Completion, GenerationParams, Message

_DTYPES = ("auto", "float32", "bfloat16", "float16")


def _check_local_or_hub(name: str, what: str) -> None:
    """Fail fast on a path that does not exist instead of letting it be tried as a hub id."""
    if not name:
        raise BackendError(f"no {what} given for the transformers backend")
    path = Path(name).expanduser()
    looks_like_path = path.is_absolute() or name.startswith((".", "~")) or name.count("/") > 1
    if looks_like_path and not path.exists():
        raise BackendError(f"{what} path not found: {name}")


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _decoding_kwargs(params: GenerationParams) -> dict[str, Any]:
    """Greedy at temperature 0; otherwise temperature/top-p sampling, top-k and min-p when set."""
    if params.temperature <= 0:
        return {"do_sample": False}
    sampling = {"do_sample": True, "temperature": params.temperature, "top_p": params.top_p, "top_k": params.top_k}
    if params.min_p > 0:
        sampling["min_p"] = params.min_p
    return sampling


def _first_stop(decode: Any, row: list[int], stops: tuple[str, ...]) -> int | None:
    """The length of the shortest prefix of `row` whose text holds a stop string, or None.

    A longer prefix decodes to a longer text, so containment is monotone and a binary search
    needs only log(len(row)) decodes.
    """
    if not stops or not any(stop in decode(row) for stop in stops):
        return None
    low, high = 1, len(row)
    while low < high:
        middle = (low + high) // 2
        if any(stop in decode(row[:middle]) for stop in stops):
            high = middle
        else:
            low = middle + 1
    return low


class TransformersBackend(Backend):
    """Batched greedy or sampled generation with `AutoModelForCausalLM.generate`."""

    name = "transformers"

    def __init__(self, config: BackendConfig) -> None:
        self.config = config
        if config.dtype not in _DTYPES:
            choices = ", ".join(_DTYPES)
            raise BackendError(f"unknown dtype {config.dtype!r}; choose one of: {choices}")
        if config.batch_size < 1:
            raise BackendError(f"batch_size must be at least 1, got {config.batch_size}")
        _check_local_or_hub(config.model, "model")
        if config.adapter and not Path(config.adapter).expanduser().is_dir():
            raise BackendError(f"adapter directory not found: {config.adapter}")
        try:
            import torch
            import transformers  # noqa: F401  (fail here with a clear message, not mid-load)
        except ImportError as exc:
            raise BackendError(f"transformers backend needs torch and transformers: {exc}") from exc
        self.device = config.device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.tokenizer = self._load_tokenizer(config.tokenizer or config.model)
        self.model = self._load_model(config.model, config.dtype)
        if config.adapter:
            self.model = self._merge_adapter(self.model, config.adapter)
        self.model.eval()
        self.eos_ids = self._eos_ids()

    def _load_tokenizer(self, name: str) -> Any:
        from transformers import AutoTokenizer

        _check_local_or_hub(name, "tokenizer")
        try:
            tokenizer = AutoTokenizer.from_pretrained(name)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise BackendError(f"cannot load tokenizer from {name}: {_one_line(exc)}") from exc
        tokenizer.padding_side = "left"
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        return tokenizer

    def _load_model(self, name: str, dtype: str) -> Any:
        import torch
        from transformers import AutoModelForCausalLM

        torch_dtype = dtype if dtype == "auto" else getattr(torch, dtype)
        try:
            model = AutoModelForCausalLM.from_pretrained(name, dtype=torch_dtype)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise BackendError(f"cannot load model from {name}: {_one_line(exc)}") from exc
        try:
            return model.to(self.device)
        except (RuntimeError, AssertionError) as exc:
            reason = _one_line(exc)
            raise BackendError(f"cannot move model to device {self.device!r}: {reason}") from exc

    @staticmethod
    def _merge_adapter(model: Any, adapter: str) -> Any:
        """Load a LoRA adapter and merge it, so generation runs at base-model speed."""
        try:
            from peft import PeftModel
        except ImportError as exc:
            raise BackendError(f"loading an adapter needs peft: {exc}") from exc
        try:
            return PeftModel.from_pretrained(model, adapter).merge_and_unload()
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise BackendError(f"cannot load adapter from {adapter}: {_one_line(exc)}") from exc

    def _eos_ids(self) -> list[int]:
        """The tokenizer's end of turn plus any the model's generation_config lists (Qwen: 2)."""
        ids = {self.tokenizer.eos_token_id}
        configured = getattr(self.model.generation_config, "eos_token_id", None)
        ids.update(configured if isinstance(configured, list) else [configured])
        return sorted(i for i in ids if i is not None)

    def generate(self, prompts: list[list[Message]], params: GenerationParams) -> list[Completion]:
        """Generate in chunks of `config.batch_size`.

        `Completion.seconds` is the chunk's wall time divided evenly across its prompts (the
        rows of a batch cannot be timed separately). A seed makes sampling reproducible for the
        whole call without touching the caller's global torch RNG state.
        """
        from reasonrank.prompts import render_prompt

        texts = [render_prompt(messages, self.tokenizer, params.fix_text) for messages in prompts]
        return self._generate_all(texts, params, special_tokens=False)

    def complete(self, texts: list[str], params: GenerationParams) -> list[Completion]:
        """Continue raw text prompts (no chat template), in chunks of `config.batch_size`.

        The text is tokenized with the tokenizer's special tokens (a BOS where the model has
        one), as vLLM tokenizes a text prompt; a rendered chat prompt already carries them.
        """
        return self._generate_all(texts, params, special_tokens=True)

    def _generate_all(self, texts: list[str], params: GenerationParams, special_tokens: bool) -> list[Completion]:
        import torch

        size = self.config.batch_size
        completions: list[Completion] = []
        with self._seeded(params.seed), torch.inference_mode():
            for start in range(0, len(texts), size):
                completions.extend(self._generate_chunk(texts[start : start + size], params, special_tokens))
        return completions

    @contextlib.contextmanager
    def _seeded(self, seed: int | None) -> Iterator[None]:
        """Seed torch (CPU and this model's GPU) for the block when `seed` is given; the caller's
        global RNG state is restored afterwards either way."""
        import torch

        devices = [self.device] if str(self.device).startswith("cuda") else []
        with torch.random.fork_rng(devices=devices):
            if seed is not None:
                torch.manual_seed(seed)
            yield

    def _generate_kwargs(self, params: GenerationParams) -> dict[str, Any]:
        """Only our decoding settings: the model's own sampling defaults are overridden."""
        kwargs = {
            **_decoding_kwargs(params),
            "max_new_tokens": params.max_new_tokens,
            "repetition_penalty": 1.0,
            "eos_token_id": self.eos_ids,
            "pad_token_id": self.tokenizer.pad_token_id,
        }
        if params.stop:
            kwargs.update(stop_strings=list(params.stop), tokenizer=self.tokenizer)
        if params.allowed_token_ids:
            kwargs["logits_processor"] = [_AllowOnly(params.allowed_token_ids)]
        if params.logprobs:
            kwargs.update(output_scores=True, return_dict_in_generate=True)
        return kwargs

    def stream(self, messages: list[Message], params: GenerationParams, on_delta: DeltaSink) -> Completion:
        """Generate one completion while a `TextIteratorStreamer` hands decoded text to `on_delta`.

        `generate` runs on a worker thread and the streamer's queue carries text back to this
        one, so `on_delta` runs on the caller's thread. The returned Completion is decoded from
        the generated ids, exactly as `generate` would decode them.
        """
        import torch
        from transformers import StoppingCriteriaList, TextIteratorStreamer

        from reasonrank.prompts import render_prompt

        began = time.perf_counter()
        batch = self.tokenizer(
            [render_prompt(messages, self.tokenizer, params.fix_text)], return_tensors="pt", add_special_tokens=False
        ).to(self.device)
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        outcome: dict[str, Any] = {}
        stop = threading.Event()  # set when the caller stops reading (on_delta raised)

        def stopped(input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            return torch.full((input_ids.shape[0],), stop.is_set(), dtype=torch.bool, device=input_ids.device)

        def work() -> None:
            try:
                with torch.inference_mode():  # grad mode is per thread
                    outcome["output"] = self.model.generate(
                        **batch,
                        **self._generate_kwargs(params),
                        streamer=streamer,
                        stopping_criteria=StoppingCriteriaList([stopped]),
                    )
            except Exception as exc:  # re-raised on the caller's thread below
                outcome["error"] = exc
                streamer.end()

        if params.logprobs or params.stop or params.allowed_token_ids:
            raise BackendError("streaming supports plain decoding only (no logprobs, stop strings or allowed tokens)")
        with self._seeded(params.seed):
            worker = threading.Thread(target=work, name="transformers-stream", daemon=True)
            worker.start()
            try:
                for piece in streamer:
                    if piece:
                        on_delta("text", piece)
            finally:
                stop.set()
                worker.join()
        if "error" in outcome:
            raise BackendError(f"generation failed: {_one_line(outcome['error'])}") from outcome["error"]
        row = outcome["output"][0, batch["input_ids"].shape[1] :].tolist()
        return self._completion(row, int(batch["attention_mask"].sum()), time.perf_counter() - began)

    def _generate_chunk(self, texts: list[str], params: GenerationParams, special_tokens: bool) -> list[Completion]:
        began = time.perf_counter()
        batch = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=special_tokens).to(
            self.device
        )
        output = self.model.generate(**batch, **self._generate_kwargs(params))
        sequences = output.sequences if params.logprobs else output
        generated = sequences[:, batch["input_ids"].shape[1] :].tolist()
        tokens_in = batch["attention_mask"].sum(dim=1).tolist()
        top = _top_logprobs(output.scores, params.logprobs) if params.logprobs else None
        share = (time.perf_counter() - began) / len(texts)
        return [
            self._completion(row, n_in, share, params.stop, top[r] if top else None)
            for r, (row, n_in) in enumerate(zip(generated, tokens_in))
        ]

    def _completion(
        self,
        row: list[int],
        tokens_in: int,
        seconds: float,
        stops: tuple[str, ...] = (),
        top: list[dict[int, float]] | None = None,
    ) -> Completion:
        """One row as vLLM reports it: cut after its end-of-turn or the token that completed a
        stop string; a stop string and what follows it are left out of the text."""
        stop_at = next((i for i, token in enumerate(row) if token in self.eos_ids), None)
        kept = row if stop_at is None else row[: stop_at + 1]
        finish = "length" if stop_at is None else "stop"

        def decode(ids: list[int]) -> str:
            return self.tokenizer.decode(ids, skip_special_tokens=True)

        cut = _first_stop(decode, kept, stops)
        if cut is not None:
            kept, finish = kept[:cut], "stop"
        text = decode(kept)
        if cut is not None:
            text = text[: min(text.find(stop) for stop in stops if stop in text)]
        return Completion(
            text=text,
            tokens_in=int(tokens_in),
            tokens_out=len(kept),
            finish_reason=finish,
            seconds=seconds,
            top_logprobs=top[: len(kept)] if top is not None else None,
        )


class _AllowOnly:
    """A logits processor that leaves only `allowed` token ids possible (vLLM's allowed_token_ids)."""

    def __init__(self, allowed: tuple[int, ...]) -> None:
        self.allowed = list(allowed)

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        masked = torch.full_like(scores, float("-inf"))
        masked[:, self.allowed] = scores[:, self.allowed]
        return masked


def _top_logprobs(scores: Any, n: int) -> list[list[dict[int, float]]]:
    """Per row, per generated position: the `n` most likely token ids and their log-probabilities.

    They are computed from the scores `generate` chose from (after `_AllowOnly`; for greedy
    decoding otherwise the model's own logits), so with allowed tokens only those are finite;
    tokens at -inf are left out.
    """
    import torch

    rows: list[list[dict[int, float]]] = [[] for _ in range(scores[0].shape[0])] if scores else []
    for step in scores:
        logprobs = torch.log_softmax(step.float(), dim=-1)
        values, ids = torch.topk(logprobs, min(n, logprobs.shape[-1]), dim=-1)
        for r, (row_values, row_ids) in enumerate(zip(values.tolist(), ids.tolist())):
            rows[r].append({i: v for i, v in zip(row_ids, row_values) if v != float("-inf")})
    return rows

    def close(self) -> None:
        """Drop the model so its memory (GPU memory included) can be reclaimed."""
        import torch

        self.model = None
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
