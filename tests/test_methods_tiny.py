"""Every method end to end on the tiny random Qwen2 through the real transformers backend, and
the backend features the methods need (raw-text prompts, log-probabilities, allowed tokens,
stop strings, top-k sampling)."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from reasonrank.backends import make_backend
from reasonrank.backends.base import Backend, BackendConfig
from reasonrank.methods import with_defaults
from reasonrank.methods.rank1 import build_prompt
from reasonrank.types import CandidateList, GenerationParams
from reasonrank.window import WindowConfig, rerank


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    backend = make_backend(BackendConfig(kind="transformers", model=str(tiny_model_dir), device="cpu"))
    yield backend
    backend.close()


class Counting(Backend):
    """The real backend, with its generate / complete calls counted (prompts per call)."""

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.name = inner.name
        self.tokenizer = inner.tokenizer
        self.generates: list[int] = []
        self.completes: list[int] = []

    def generate(self, prompts, params):
        self.generates.append(len(prompts))
        return self.inner.generate(prompts, params)

    def complete(self, texts, params):
        self.completes.append(len(texts))
        return self.inner.complete(texts, params)


def _small(dl19, n: int = 5) -> list[CandidateList]:
    return [CandidateList(cl.query, cl.candidates[:n]) for cl in dl19[:2]]


def _assert_full(lists, results):
    for cl, result in zip(lists, results):
        assert sorted(result.ranking) == sorted(cl.docids)


def test_reasonrank_qwen3_end_to_end(tiny, dl19):
    lists = _small(dl19)
    config = with_defaults("reasonrank-qwen3", WindowConfig(top_k=5, window=3, step=2))
    config = replace(config, generation=replace(config.generation, max_new_tokens=8, seed=7))
    backend = Counting(tiny)
    first, again = rerank(lists, backend, config), rerank(lists, backend, config)
    _assert_full(lists, first)
    assert backend.generates == [2, 2, 2, 2]  # windows (2, 5) and (0, 3), both queries per call, twice
    assert [r.ranking for r in first] == [r.ranking for r in again]  # seeded sampling
    assert all(c.method == "reasonrank-qwen3" and c.tokens_out > 0 for r in first for c in r.calls)


@pytest.mark.parametrize("name", ["rank-r1", "rank-r1-v0.2"])
def test_rank_r1_end_to_end(tiny, dl19, name):
    lists = _small(dl19)
    config = with_defaults(name, WindowConfig())
    config = replace(config, top_k=5, num_child=2, sort_k=2, generation=replace(config.generation, max_new_tokens=6))
    backend = Counting(tiny)
    results = rerank(lists, backend, config)
    _assert_full(lists, results)
    # random weights never answer "[i]": every comparison keeps its root, 2 build + 1 extraction
    assert [len(r.calls) for r in results] == [3, 3]
    assert backend.generates == [2, 2, 2]
    assert all(c.reasons for r in results for c in r.calls)
    assert results[0].calls[0].prompt[0]["role"] == "system"


def test_rank1_end_to_end(tiny, dl19):
    lists = _small(dl19, 3)
    config = with_defaults("rank1", WindowConfig())
    config = replace(config, generation=replace(config.generation, max_new_tokens=6))
    backend = Counting(tiny)
    results = rerank(lists, backend, config)
    _assert_full(lists, results)
    assert backend.completes[0] == 6 and backend.generates == []  # every pair of both queries in one call
    forced = [c for r in results for c in r.calls if c.position == 1]
    # 6 tokens cannot reach "</think> true": every pair goes to the one forced second call
    assert len(forced) == 6 and backend.completes == [6, 6]
    assert all(c.reasons == ["no_decision", "reasoning_truncated"] for r in results for c in r.calls if c.position == 0)
    for result in results:
        scores = {c.docids_before[0]: c.score for c in result.calls if c.score is not None}
        assert all(0.0 < s < 1.0 for s in scores.values()) and len(scores) == 3
        ordered = [scores[d] for d in result.ranking]
        assert ordered == sorted(ordered, reverse=True)


def test_logprobs_are_the_models_next_token_distribution(tiny, dl19):
    import torch

    text = build_prompt(dl19[0].query.text, dl19[0].candidates[0])
    [completion] = tiny.complete([text], GenerationParams(max_new_tokens=1, temperature=0.0, logprobs=5))
    ids = tiny.tokenizer(text, return_tensors="pt", add_special_tokens=False)
    with torch.inference_mode():
        logits = tiny.model(**ids).logits[0, -1].float()
    expected = torch.log_softmax(logits, -1)
    top = completion.top_logprobs[0]
    assert len(top) == 5 and set(top) == set(torch.topk(expected, 5).indices.tolist())
    for token, value in top.items():
        assert value == pytest.approx(expected[token].item(), abs=1e-4)

    true_id = tiny.tokenizer(" true", add_special_tokens=False).input_ids[0]
    false_id = tiny.tokenizer(" false", add_special_tokens=False).input_ids[0]
    params = GenerationParams(max_new_tokens=1, temperature=0.0, logprobs=20, allowed_token_ids=(true_id, false_id))
    [forced] = tiny.complete([text], params)
    only = forced.top_logprobs[0]
    assert set(only) == {true_id, false_id} and forced.tokens_out == 1
    assert math.exp(only[true_id]) + math.exp(only[false_id]) == pytest.approx(1.0)
    ratio = math.exp(only[true_id]) / (math.exp(only[true_id]) + math.exp(only[false_id]))
    assert ratio == pytest.approx(torch.softmax(logits[[true_id, false_id]], -1)[0].item(), abs=1e-4)


def test_stop_strings_end_the_text_before_them(tiny, dl19):
    text = build_prompt(dl19[0].query.text, dl19[0].candidates[0])
    [free] = tiny.complete([text], GenerationParams(max_new_tokens=12, temperature=0.0))
    ids = tiny.tokenizer(free.text, add_special_tokens=False).input_ids
    stop = tiny.tokenizer.decode(ids[4:6])
    assert stop.strip() and stop in free.text
    [stopped] = tiny.complete([text], GenerationParams(max_new_tokens=12, temperature=0.0, stop=(stop,)))
    assert stopped.text == free.text[: free.text.index(stop)]
    assert stopped.finish_reason == "stop" and stopped.tokens_out < free.tokens_out


@pytest.mark.parametrize(
    ("name", "changes", "calls"),
    [
        ("rearank", {"top_k": 5, "window": 3, "step": 2}, [2, 2]),  # windows (2, 5), (0, 3)
        ("rank-k", {"top_k": 5, "window": 3, "step": 2, "max_passage_tokens": 16}, [2, 2]),
        ("grouprank", {"top_k": 5, "window": 3, "step": 3, "passes": 2, "max_passage_tokens": 200}, [8]),
    ],
)
def test_more_methods_end_to_end(tiny, dl19, name, changes, calls):
    lists = _small(dl19)
    config = with_defaults(name, WindowConfig())
    config = replace(config, **changes, generation=replace(config.generation, max_new_tokens=5, seed=11))
    backend = Counting(tiny)
    results = rerank(lists, backend, config)
    _assert_full(lists, results)
    assert backend.generates == calls
    assert all(c.method == name and c.tokens_out > 0 for r in results for c in r.calls)
