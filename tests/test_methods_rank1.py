"""Rank1 pointwise judgements: prompts byte for byte, scores, the forced second pass, ordering.

Expected strings are written from github.com/orionw/rank1 at
30585c2f3166b3df03e3b8f2d496d6dc5db68a9b:
- rank1.py lines 241-247 (`return_prompt`: the query wrapper's FILL_QUERY_HERE, then the four
  lines ending in "<think>"), 269-270 (`predict`: "title text" for dict passages), 86-92 (greedy,
  8192 tokens, logprobs 20, the two stop strings), 94-158 (`_fix_incomplete_responses`: cut to
  the last sentence end, "\\n{cleaned}\\n</think>", one token out of " true"/" false", 0.5 when
  the log-probabilities are missing), 173-239 (`_process_with_vllm`: the score
  exp(t) / (exp(t) + exp(f)) at the last token, the rest to the second pass);
- prompts.py lines 55-80 and 83-94 (`PROMPT_DICT` BRIGHT entries, `get_prompt`).
Ties: trec_eval's `comp_sim_docno` (form_res_rels.c) sorts by score, then docno descending.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from methods_backend import PointwiseJudge

from reasonrank.bright import load_bright_task
from reasonrank.methods import with_defaults
from reasonrank.methods.rank1 import (
    build_prompt,
    cleaned_output,
    dataset_prompt,
    forced_prompt,
    rank_by_score,
    score_from,
)
from reasonrank.types import CandidateList, GenerationParams, Passage, Query
from reasonrank.window import WindowConfig, rerank

REPO = Path(__file__).resolve().parents[1]
HEAD = "Determine if the following passage is relevant to the query. Answer only with 'true' or 'false'.\n"


def test_dl19_prompt_is_the_plain_query(dl19):
    first = dl19[0]
    passage = first.candidates[1]
    assert dataset_prompt(first.dataset) is None
    assert build_prompt(first.query.text, passage, dataset_prompt(first.dataset)) == (
        HEAD + "Query: how long is life cycle of flea\n"
        "Passage: The life cycle of a flea can last anywhere from 20 days to an entire year. It depends on how "
        "long the flea remains in the dormant stage (eggs, larvae, pupa). Outside influences, such as weather, "
        "affect the flea cycle. A female flea can lay around 20 to 25 eggs in one day. The flea egg stage is the "
        "beginning of the flea cycle. This part of the flea cycle represents a little more than one third of the "
        "flea population at any given time. Depending on the temperature and humidity of the environment the egg "
        "can take from two to six days to hatch.\n<think>"
    )


def test_bright_theoremqa_prompt_wraps_the_query():
    [first, *_] = load_bright_task(REPO / "db" / "sample" / "bright-mini", "theoremqa_questions").require_lists()
    passage = first.candidates[0]
    prompt = build_prompt(first.query.text, passage, dataset_prompt(first.dataset))
    assert prompt == (
        HEAD + "Query: Find a passage which uses the same mathematical process as this one: You're tracking the "
        "growth of a plant from a seed. The rate at which the plant grows in height is equal to the square root of "
        "the number of days since you planted it. One day after the seed was first planted, the plant was 1 inch "
        f"tall. How tall will the plant be after 4 days?\nPassage: {passage.text}\n<think>"
    )
    # never truncated: the whole (long, multi-line) document is in the prompt
    assert len(passage.text) > 1000 and passage.text in prompt


@pytest.mark.parametrize(
    ("dataset", "start"),
    [
        ("biology", "Can you find background information about the concepts used to answer the question:\n\n"),
        ("theoremqa_theorems", "Find a passage which uses the same mathematical process as this one: "),
        ("aops", "Find different but similar math problems to "),
        ("pony", "I will use the programming language pony. Problem: "),
        ("leetcode", "I am looking to find different problems that share similar data structures"),
        ("dl19", None),
        (None, None),
    ],
)
def test_dataset_prompts(dataset, start):
    wrapper = dataset_prompt(dataset)
    if start is None:
        assert wrapper is None
    else:
        assert wrapper.startswith(start) and "FILL_QUERY_HERE" in wrapper


def test_title_is_joined_with_a_space():
    assert build_prompt("q", Passage("d", "body", title="T")).endswith("Passage: T body\n<think>")


@pytest.mark.parametrize(
    ("text", "cleaned"),
    [
        ("It is relevant. But then", "It is relevant."),
        ("Done!  ", "Done!"),
        ("Is it? maybe not", "Is it?"),
        ("no punctuation at all", "no punctuation at all"),
        ("  Trailing.\n\n", "Trailing."),
    ],
)
def test_cleaned_output(text, cleaned):
    assert cleaned_output(text) == cleaned


def test_forced_prompt_closes_the_thought():
    assert forced_prompt("P<think>", "Reasoning. Half") == "P<think>\nReasoning.\n</think>"


def test_score_from_the_last_token():
    top = [{9: -0.1}, {1: math.log(0.6), 2: math.log(0.2), 3: -3.0}]
    assert score_from(top, 1, 2) == pytest.approx(0.75)
    assert score_from([{1: -0.1}], 1, 2) is None
    assert score_from(None, 1, 2) is None


def test_ties_sort_by_docid_descending():
    assert rank_by_score(["a", "c", "b", "d"], [0.5, 0.5, 0.9, 0.5]) == ["b", "d", "c", "a"]


def _lists(relevances: list[list[int]]) -> list[CandidateList]:
    return [
        CandidateList(
            Query(f"q{n}", f"query {n}"),
            [Passage(f"d{n}-{i}", f"passage with relevance {r}") for i, r in enumerate(rels)],
        )
        for n, rels in enumerate(relevances)
    ]


def test_all_pairs_of_all_queries_in_one_call():
    lists = _lists([[1, 9, 5], [3, 3, 8, 2]])
    backend = PointwiseJudge()
    results = rerank(lists, backend, with_defaults("rank1", WindowConfig()))
    assert [len(batch) for batch in backend.batches] == [7]
    assert backend.params[0] == GenerationParams(
        max_new_tokens=8192, temperature=0.0, top_p=1.0, logprobs=20, stop=("</think> true", "</think> false")
    )
    assert results[0].ranking == ["d0-1", "d0-2", "d0-0"]
    assert results[1].ranking == ["d1-2", "d1-1", "d1-0", "d1-3"]  # the 0.3 tie: d1-1 > d1-0
    call = results[0].calls[1]
    assert call.method == "rank1" and call.score == pytest.approx(0.9) and call.docids_before == ["d0-1"]
    assert call.prompt == [{"role": "raw", "content": backend.batches[0][1]}]


def test_undecided_pairs_get_one_forced_second_call():
    lists = _lists([[1, 9, 5], [3, 7]])
    backend = PointwiseJudge(undecided=("relevance 5", "relevance 7"))
    results = rerank(lists, backend, with_defaults("rank1", WindowConfig()))
    assert [len(batch) for batch in backend.batches] == [5, 2]
    second = backend.params[1]
    assert (second.max_new_tokens, second.temperature, second.logprobs, second.allowed_token_ids) == (
        1,
        0.0,
        20,
        (1, 2),
    )
    assert backend.batches[1][0] == backend.batches[0][2] + "\nThinking about it.\n</think>"
    assert results[0].ranking == ["d0-1", "d0-2", "d0-0"]
    assert results[1].ranking == ["d1-1", "d1-0"]
    first_pass, forced = [c for c in results[0].calls if c.docids_before == ["d0-2"]]
    assert first_pass.reasons == ["no_decision", "reasoning_truncated"] and first_pass.score is None
    assert forced.position == 1 and forced.reasons == [] and forced.score == pytest.approx(0.5)


def test_second_pass_failure_scores_one_half():
    lists = _lists([[9, 1, 3]])
    backend = PointwiseJudge(undecided=("relevance 1",), fail_second=True)
    [result] = rerank(lists, backend, with_defaults("rank1", WindowConfig()))
    forced = result.calls[-1]
    assert forced.reasons == ["score_defaulted"] and forced.score == 0.5
    assert result.ranking == ["d0-0", "d0-1", "d0-2"]  # 0.9, 0.5 (defaulted), 0.3


@settings(max_examples=50, deadline=None)
@given(st.lists(st.one_of(st.none(), st.floats(0, 1)), min_size=1, max_size=30))
def test_any_scores_yield_a_full_ranking(scores):
    docids = [f"d{i % 7}-{i}" for i in range(len(scores))]
    filled = [0.5 if s is None else s for s in scores]
    ranking = rank_by_score(docids, filled)
    assert sorted(ranking) == sorted(docids)
    assert [filled[docids.index(d)] for d in ranking] == sorted(filled, reverse=True)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.text(max_size=20),
            st.one_of(
                st.none(),
                st.lists(st.dictionaries(st.integers(0, 4), st.floats(-30, 0), max_size=4), max_size=3),
            ),
        ),
        min_size=1,
        max_size=5,
    ),
    st.integers(1, 12),
)
def test_any_output_yields_a_full_ranking_end_to_end(outputs, n):
    """Whatever text and log-probabilities come back (ids 1 and 2 are " true" / " false"), every
    candidate is ranked once."""
    from methods_backend import TrueFalseTokenizer

    from reasonrank.backends.base import Backend
    from reasonrank.types import Completion

    class Random(Backend):
        name = "random"
        tokenizer = TrueFalseTokenizer()
        count = 0

        def generate(self, prompts, params):
            raise AssertionError

        def complete(self, texts, params):
            out = []
            for _ in texts:
                text, top = outputs[self.count % len(outputs)]
                self.count += 1
                out.append(Completion(text, top_logprobs=top))
            return out

    lists = _lists([list(range(n))])
    [result] = rerank(lists, Random(), with_defaults("rank1", WindowConfig()))
    assert sorted(result.ranking) == sorted(lists[0].docids)
    assert all(c.score is not None for c in result.calls if c.position == 1 or "no_decision" not in c.reasons)
