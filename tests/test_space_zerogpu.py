"""The ZeroGPU backend on the tiny Qwen2: generation goes through the `@spaces.GPU`-decorated
functions (the real `spaces` package, a no-op off ZeroGPU), streams, equals the transformers
backend, never initialises CUDA in this process, and turns ZeroGPU's refusals into plain text."""

from __future__ import annotations

import gradio as gr
import pytest

from reasonrank import spaces_gpu
from reasonrank.arena import RerankerSpec, run_arena
from reasonrank.backends import BACKEND_KINDS, make_backend
from reasonrank.backends import zerogpu as zerogpu_module
from reasonrank.backends.base import BackendConfig, BackendError
from reasonrank.types import CandidateList, GenerationParams, Passage, Query
from reasonrank.window import WindowConfig

MESSAGES = [{"role": "system", "content": "You rank passages."}, {"role": "user", "content": "[1] cats [2] dogs"}]
SHORT = GenerationParams(max_new_tokens=16)


@pytest.fixture(scope="module")
def zero(tiny_model_dir):
    backend = make_backend(BackendConfig(kind="zerogpu", model=str(tiny_model_dir), device="cpu"))
    yield backend
    backend.close()


def test_zerogpu_is_a_backend_kind_and_uses_the_spaces_decorator():
    import spaces

    assert "zerogpu" in BACKEND_KINDS
    # off ZeroGPU spaces.GPU hands the function back unchanged: the module's function IS the task
    assert spaces.GPU(duration=5)(zerogpu_module._gpu_stream) is zerogpu_module._gpu_stream
    assert not spaces_gpu.on_zero_gpu()


def test_streams_the_same_completion_as_transformers(zero, tiny_model_dir):
    import torch

    plain = make_backend(BackendConfig(kind="transformers", model=str(tiny_model_dir), device="cpu"))
    pieces: list[str] = []
    streamed = zero.stream(MESSAGES, SHORT, lambda kind, text: pieces.append(text))
    [expected] = plain.generate([MESSAGES], SHORT)
    assert streamed.text == expected.text and streamed.tokens_out == expected.tokens_out
    assert "".join(pieces).strip() == streamed.text.strip() and len(pieces) > 1
    [batched] = zero.generate([MESSAGES], SHORT)
    assert batched.text == expected.text
    assert not torch.cuda.is_initialized()


def test_duration_grows_with_the_request_and_is_capped():
    one = zerogpu_module._stream_seconds(1, MESSAGES, GenerationParams(max_new_tokens=750))
    assert one == spaces_gpu.call_seconds(1, 750) and 20 < one < 60
    assert zerogpu_module._batch_seconds(1, [MESSAGES] * 3, GenerationParams(max_new_tokens=750)) > one
    assert spaces_gpu.call_seconds(1, 3172) <= spaces_gpu.QUOTA_S["anonymous"]  # one default window fits
    assert spaces_gpu.call_seconds(50, 3172) == spaces_gpu.MAX_DURATION_S
    assert spaces_gpu.request_seconds(9, 750) == 9 * one


def test_quota_error_becomes_a_plain_message_in_its_lane(zero, monkeypatch):
    def refused(key, messages, params):
        raise gr.Error(
            "You have exceeded your free ZeroGPU quota (116s requested vs. 40s left).", title="ZeroGPU quota exceeded"
        )
        yield  # a generator, like the decorated function

    monkeypatch.setattr(zerogpu_module, "_gpu_stream", refused)
    with pytest.raises(BackendError, match="free GPU time for today is used up") as caught:
        zero.stream(MESSAGES, SHORT, lambda kind, text: None)
    assert "116s requested vs. 40s left" in str(caught.value)
    assert spaces_gpu.quota_message(ValueError("x")) is None


def test_arena_lane_runs_through_zerogpu(zero, tiny_model_dir):
    passages = [Passage(f"d{i}", f"passage number {i} about fleas") for i in range(4)]
    candidates = CandidateList(Query("q1", "fleas"), passages, qrels={"d2": 1})
    spec = RerankerSpec("tiny on ZeroGPU", "zerogpu", str(tiny_model_dir), {"device": "cpu"})
    config = WindowConfig(window=4, step=2, top_k=4, generation=SHORT)
    *_, last = run_arena(candidates, [spec, RerankerSpec("BM25", "bm25")], config)
    lane = last[0]
    assert lane.status == "done", lane.error
    assert sorted(lane.ranking) == sorted(p.docid for p in passages) and lane.tokens_out > 0


def test_on_zerogpu_preloaded_weights_are_shared_by_later_backends(tiny_model_dir, monkeypatch):
    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    monkeypatch.setattr(zerogpu_module, "_MODELS", {})
    config = BackendConfig(kind="zerogpu", model=str(tiny_model_dir), device="cpu")
    assert zerogpu_module.preload([config, BackendConfig(kind="openai", model="x")]) == [str(tiny_model_dir)]
    first, second = make_backend(config), make_backend(config)
    assert first.model is second.model and len(zerogpu_module._MODELS) == 1
    first.close()  # closing one backend keeps the shared weights for the others
    assert second.model is not None and second.stream(MESSAGES, SHORT, lambda kind, text: None).tokens_out > 0
    second.close()
