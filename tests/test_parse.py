"""Response parsing: the reference's extraction and repair rules (docs/method.md §3), on made-up and on real model output."""

from __future__ import annotations

import json
import re
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reasonrank.io import InputError, read_rank_llm_json, read_trec_run
from reasonrank.parse import REASONS, parse_ranking, split_reasoning
from reasonrank.prompts import prepare_passage


def spec_order(response: str, window_len: int) -> list[int]:
    """docs/method.md §3 transcribed literally (backtracking regex, quadratic dedupe): the oracle."""
    match = re.search(r"<think>.*?</think>\s*<answer>(.*?)</answer>", response.lower(), re.DOTALL)
    if match:
        text = match.group(1).strip()
    elif "<answer>" in response:
        text = response.split("<answer>")[-1]
    else:
        text = response
    cleaned = "".join(c if c.isdigit() else " " for c in text)
    try:
        ids = [int(x) - 1 for x in cleaned.split()]
    except ValueError:
        return list(range(window_len))
    unique: list[int] = []
    for i in ids:
        if i not in unique:
            unique.append(i)
    kept = [i for i in unique if 0 <= i < window_len]
    return kept + [i for i in range(window_len) if i not in kept]


# ----------------------------------------------------------------------------- property
_FRAGMENTS = st.one_of(
    st.sampled_from(
        [
            "<think>",
            "</think>",
            "<answer>",
            "</answer>",
            "<THINK>",
            "</Answer>",
            " > ",
            "\n",
            " ",
            "²",
            "①",
            "٣",
            "１",
            "0",
            "00",
            "-",
        ]
    ),
    st.integers(min_value=-3, max_value=40).map(lambda i: f"[{i}]"),
    st.integers(min_value=0, max_value=10**30).map(str),
    st.text(max_size=8),
)
_RESPONSES = st.lists(_FRAGMENTS, max_size=30).map("".join)


@settings(max_examples=2_000, deadline=None)
@given(response=_RESPONSES, window_len=st.integers(min_value=0, max_value=30))
def test_any_response_gives_a_permutation_equal_to_the_spec(response: str, window_len: int) -> None:
    parsed = parse_ranking(response, window_len)
    assert sorted(parsed.order) == list(range(window_len))
    assert parsed.order == spec_order(response, window_len)
    assert set(parsed.reasons) <= set(REASONS)
    assert len(parsed.reasons) == len(set(parsed.reasons))
    assert ("no_answer_tag" in parsed.reasons) == (parsed.answer is None)


# ----------------------------------------------------------------------------- one test per rule
def test_clean_response_reads_the_answer_and_keeps_reasoning_case() -> None:
    response = "<think>Passage [3] is OFF-topic.</think>\n<answer>[2] > [1] > [3]</answer>"
    parsed = parse_ranking(response, 3)
    assert parsed.order == [1, 0, 2]
    assert parsed.reasons == []
    assert parsed.reasoning == "Passage [3] is OFF-topic."
    assert parsed.answer == "[2] > [1] > [3]"


def test_tags_match_case_insensitively_as_the_reference_lowercases() -> None:
    parsed = parse_ranking("<THINK>Why Not</THINK> <Answer>[2] > [1]</ANSWER>", 2)
    assert parsed.order == [1, 0]
    assert parsed.reasons == []
    assert parsed.reasoning == "Why Not"


def test_no_answer_tag_parses_the_whole_response() -> None:
    parsed = parse_ranking("[3] > [1] > [2]", 3)
    assert parsed.order == [2, 0, 1]
    assert parsed.reasons == ["no_answer_tag"]
    assert parsed.answer is None and parsed.reasoning is None


def test_truncated_reasoning_ranks_by_first_mention_in_the_reasoning() -> None:
    parsed = parse_ranking("<think>Passage [4] beats [2] because", 5)
    assert parsed.order == [3, 1, 0, 2, 4]
    assert parsed.reasons == ["reasoning_truncated", "no_answer_tag", "missing_ids"]
    assert parsed.reasoning == "Passage [4] beats [2] because"


def test_unclosed_answer_reads_after_the_last_answer_tag() -> None:
    parsed = parse_ranking("<think>x [3]</think> <answer>[3] no, <answer>[2] > [1]", 3)
    assert parsed.order == [1, 0, 2]
    assert parsed.reasons == ["missing_ids"]
    assert parsed.answer == "[2] > [1]"


def test_answer_after_unclosed_think_reports_truncated_reasoning() -> None:
    parsed = parse_ranking("<think>hmm [3] <answer>[2] > [1] > [3]</answer>", 3)
    assert parsed.order == [1, 0, 2]
    assert parsed.reasons == ["reasoning_truncated"]


def test_duplicates_keep_the_first_occurrence() -> None:
    parsed = parse_ranking("<think>t</think><answer>[2] > [3] > [2] > [1]</answer>", 3)
    assert parsed.order == [1, 2, 0]
    assert parsed.reasons == ["duplicate_ids"]


def test_out_of_range_ids_are_dropped_and_missing_appended_in_window_order() -> None:
    parsed = parse_ranking("<think>t</think><answer>[0] > [5] > [3] > [9]</answer>", 4)
    assert parsed.order == [2, 0, 1, 3]
    assert parsed.reasons == ["out_of_range", "missing_ids"]


def test_digit_int_rejects_keeps_the_window_unchanged_like_the_reference() -> None:
    parsed = parse_ranking("<think>t</think><answer>[3] > [2²] > [1]</answer>", 3)
    assert parsed.order == [0, 1, 2]
    assert parsed.reasons == ["missing_ids"]


def test_unicode_decimal_digits_are_ids() -> None:
    assert parse_ranking("[２] > [١]", 2).order == [1, 0]


def test_empty_window_gives_an_empty_order() -> None:
    assert parse_ranking("<answer>[1] > [2]</answer>", 0).order == []


def test_negative_window_is_an_input_error() -> None:
    with pytest.raises(InputError, match="window length"):
        parse_ranking("[1]", -1)


def test_pathological_inputs_stay_fast() -> None:
    huge = "9" * 10_000
    padded = "0" * 10_000 + "2"
    tags = "<think></think> <answer>" * 20_000
    start = time.perf_counter()
    assert parse_ranking(f"<answer>[{huge}] > [{padded}]", 3).order == [1, 0, 2]
    assert parse_ranking(f"[{huge}] [{huge}]", 2).reasons == [
        "no_answer_tag",
        "duplicate_ids",
        "out_of_range",
        "missing_ids",
    ]
    assert parse_ranking(tags + "[2]", 2).order == [1, 0]
    assert parse_ranking("[1] " * 200_000, 20).order == list(range(20))
    assert time.perf_counter() - start < 2.0


def test_split_reasoning_returns_both_parts() -> None:
    assert split_reasoning("<think> a B </think><answer> [1] </answer>") == ("a B", "[1]")
    assert split_reasoning("[1] > [2]") == (None, None)


# ----------------------------------------------------------------------------- real model output
@pytest.fixture(scope="module")
def rankvicuna_calls(test_data):
    """(candidate list, response) for the 43 real RankVicuna-7B calls on TREC DL19.

    The calls are matched to queries through the query text in each prompt, and the passages
    the prompt shows are checked against the BM25 candidates, so the id mapping is verified.
    """
    folder = test_data / "trec-dl19"
    raw = (folder / "rankvicuna7b_top20_prompts_responses.json").read_text(encoding="utf-8")
    calls = json.loads("[" + raw.strip().rstrip(",") + "]")
    lists = {cl.query.text: cl for cl in read_rank_llm_json(folder / "bm25_top100_with_text.json")}
    matched = []
    for call in calls:
        query = re.search(r"search query: (.*?)\.\n", call["prompt"]).group(1)
        cl = lists[query]
        body = call["prompt"].split("\n\n", 1)[1].split("\nSearch Query:")[0]
        shown = re.split(r"(?:^|\n)\[\d+\] ", body)[1:]
        # RankLLM cut these passages to 300 words, the same preprocessing as our fallback.
        assert shown == [prepare_passage(p, None, 300) for p in cl.candidates[:20]]
        matched.append((cl, call["response"]))
    assert len({cl.query.qid for cl, _ in matched}) == len(calls) == len(lists) == 43
    return matched


def test_real_rankvicuna_responses_reproduce_the_published_run(rankvicuna_calls, test_data) -> None:
    run = read_trec_run(test_data / "trec-dl19" / "rankvicuna7b_rerank_top20.run")
    for cl, response in rankvicuna_calls:
        parsed = parse_ranking(response, 20)
        reranked = [cl.candidates[i].docid for i in parsed.order] + cl.docids[20:]
        assert reranked == [docid for docid, _ in run[cl.query.qid]], cl.query.qid
