"""REARANK and Rank-K: prompts byte for byte, parsers on documented and malformed answers, and
their sliding windows batched across queries.

REARANK, github.com/lezhang7/Rearank at abb4bd024b1ec65567f2a86195a62c3573d90d54: rank_gpt.py
lines 93-128 (`create_permutation_instruction_rearank`: system, instruction, acknowledgement,
"[i] {content[:400]}" / "Received passage [i]." turns, the final indented turn), 21-31
(`run_retriever`: title fold, whitespace collapse), 132-154 (`clean_response`), 157-185
(`receive_permutation`), 188-205 (`sliding_windows_batch`: `while start_pos >= rank_start`),
agent.py lines 85-86 (greedy, 2048 tokens).

Rank-K, github.com/hltcoe/rank-k at ecdf232f239e2d7baa1671aab123abc9c484b7f3: rerank.py lines
15-31 (`rank_k_prompt`), 33-56 (`parse_ranking_more`), 58-85 (`rerank`: one user turn, the last
line of the reply, stable sort by score, the rest appended), 101 (decode(encode(d)[:450])),
utils.py lines 90-93 (`combine_passages`), README (temperature 0.5, 8000 tokens, 450 tokens).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from methods_backend import ListwiseOracle, rank_k_shown, rearank_shown
from scripted_backend import relevance_in_text

from reasonrank.bright import load_bright_task
from reasonrank.methods import rank_k, rearank, with_defaults
from reasonrank.types import CandidateList, GenerationParams, Passage, Query
from reasonrank.window import WindowConfig, rerank, window_spans

REPO = Path(__file__).resolve().parents[1]

REARANK_SYSTEM = (
    "You are DeepRerank, an intelligent assistant that can rank passages based on their relevancy to the search "
    "query. You first thinks about the reasoning process in the mind and then provides the user with the answer."
)


def _rearank_instruction(query: str, num: int) -> str:
    return (
        "I will provide you with passages, each indicated by number identifier []. Rank the passages based on their "
        f"relevance to the search query.Search Query: {query}. \nRank the {num} passages above based on their "
        "relevance to the search query.The passages should be listed in descending order using identifiers. The "
        "most relevant passages should be listed first. The output format should be <answer> [] > [] </answer>, "
        "e.g., <answer> [1] > [2] </answer>."
    )


def _rearank_final(query: str) -> str:
    return (
        f'Please rank these passages according to their relevance to the search query: "{query}"\n'
        "            Follow these steps exactly:\n"
        "            1. First, within <think> tags, analyze EACH passage individually:\n"
        "            - Evaluate how well it addresses the query\n"
        "            - Note specific relevant information or keywords\n\n"
        "            2. Then, within <answer> tags, provide ONLY the final ranking in descending order of relevance "
        "using the format: [X] > [Y] > [Z]"
    )


def test_rearank_prompt_on_dl19_cuts_at_400_characters(dl19):
    first = dl19[0]
    assert len(first.candidates[0].text) == 611
    messages = rearank.build_messages(first.query.text, rearank.prepare_passages(first.candidates[:2]))
    assert messages == [
        {"role": "system", "content": REARANK_SYSTEM},
        {"role": "user", "content": _rearank_instruction("how long is life cycle of flea", 2)},
        {"role": "assistant", "content": "Okay, please provide the passages."},
        {
            "role": "user",
            "content": "[1] 5. Cancel. A flea can live up to a year, but its general lifespan depends on its living "
            "conditions, such as the availability of hosts. Find out how long a flea's life cycle can last with tips "
            "from a pet industry specialist in this free video on fleas and pest control.Part of the Video Series: "
            "Flea Control.ancel. A flea can live up to a year, but its general lifespan depends on its living "
            "condition",
        },
        {"role": "assistant", "content": "Received passage [1]."},
        {"role": "user", "content": f"[2] {first.candidates[1].text[:400]}"},
        {"role": "assistant", "content": "Received passage [2]."},
        {"role": "user", "content": _rearank_final("how long is life cycle of flea")},
    ]
    assert len(first.candidates[1].text) > 400  # the second passage is cut as well


def test_rearank_prompt_on_bright_mini_collapses_lines_and_titles():
    [first, *_] = load_bright_task(REPO / "db" / "sample" / "bright-mini", "theoremqa_questions").require_lists()
    doc = first.candidates[0]
    assert "\n" in doc.text
    [text] = rearank.prepare_passages([doc])
    assert text == " ".join(doc.text.split())[:400] and "\n" not in text and len(text) == 400
    assert rearank.passage_text(Passage("d", "body  text", title="T")) == "Title: T Content: body text"
    assert rearank.passage_text(Passage("d", " body\ntext ", title="")) == "body text"  # empty title removed
    messages = rearank.build_messages(first.query.text, [text])
    assert messages[1]["content"] == _rearank_instruction(first.query.text, 1)
    assert messages[-1]["content"] == _rearank_final(first.query.text)


@pytest.mark.parametrize(
    ("response", "order", "reasons"),
    [
        ("<think>x</think>\n<answer>[2] > [3] > [1]</answer>", [1, 2, 0], []),
        (
            "<think>x</think><answer>[2] > [2] > [9]</answer>",
            [1, 0, 2],
            ["duplicate_ids", "out_of_range", "missing_ids"],
        ),
        ("<think>I'd say [3] first", [2, 0, 1], ["reasoning_truncated", "no_answer_tag", "missing_ids"]),
        ("<think>[3] > [1]</think> [2] > [1]", [1, 0, 2], ["no_answer_tag", "missing_ids"]),  # after </think>
        ("<answer>[3] > [1] > [2]", [2, 0, 1], []),  # unclosed: the whole response is read
        ("[²] > [3]", [2, 0, 1], ["no_answer_tag", "missing_ids"]),  # int() rejects ², skipped
    ],
)
def test_rearank_parser(response, order, reasons):
    parsed = rearank.parse_ranking(response, 3)
    assert (parsed.order, parsed.reasons) == (order, reasons)


def test_rearank_spans_are_its_loop():
    assert rearank.rearank_spans(100, 20, 10, 100) == window_spans(100, 20, 10, 100)
    assert rearank.rearank_spans(15, 20, 10, 100) == []  # shorter than the window: no call
    assert rearank.rearank_spans(25, 20, 10, 100) == [(5, 25)]


RANK_K_HEAD = (
    "\nDetermine a ranking of the passages based on how relevant they are to the query. \n"
    "If the query is a question, how relevant a passage is depends on how well it answers the question. \n"
    "If not, try analyze the intent of the query and assess how well each passage satisfy the intent. \n"
    "The query may have typos and passages may contain contradicting information. \n"
    "However, we do not get into fact-checking. We just rank the passages based on they relevancy to the query. \n\n"
    "Sort them from the most relevant to the least. \n"
    "Answer with the passage number using a format of `[3] > [2] > [4] = [1] > [5]`. \n"
    "Ties are acceptable if they are equally relevant. \n"
    "I need you to be accurate but overthinking it is unnecessary.\n"
    "Output only the ordering without any other text.\n\n"
)


def test_rank_k_prompt_on_dl19(dl19):
    first = dl19[1]
    texts = rank_k.prepare_passages(first.candidates[:2], None, 450)
    assert texts == [p.text for p in first.candidates[:2]]  # short MS MARCO passages, single-spaced
    [message] = rank_k.build_messages(first.query.text, texts)
    assert message == {
        "role": "user",
        "content": RANK_K_HEAD + f"Query: cost of interior concrete flooring\n\n[1] {texts[0]}\n\n[2] {texts[1]}\n",
    }


def test_rank_k_prompt_on_bright_mini_truncates_in_tokens(tiny_model_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    [first, *_] = load_bright_task(REPO / "db" / "sample" / "bright-mini", "theoremqa_questions").require_lists()
    docs = first.candidates[:2]
    cut = [tokenizer.decode(tokenizer.encode(p.text)[:20]) for p in docs]
    assert all(len(c) < len(p.text) for c, p in zip(cut, docs))
    [message] = rank_k.build_messages(first.query.text, rank_k.prepare_passages(docs, tokenizer, 20))
    assert message["content"] == RANK_K_HEAD + f"Query: {first.query.text}\n\n[1] {cut[0]}\n\n[2] {cut[1]}\n"


@pytest.mark.parametrize(
    ("response", "order", "reasons"),
    [
        ("<think>long\nthought</think>\n[3] > [2] > [4] = [1] > [5]", [2, 1, 3, 0, 4], []),
        ("[2] = [1] > [3]", [1, 0, 2, 3, 4], ["missing_ids"]),  # a tie keeps the answer's order
        ("[2] > [9] > [1]", [1, 0, 2, 3, 4], ["out_of_range", "missing_ids"]),
        ("[2] > [3] > [2] > [1]", [1, 2, 0, 3, 4], ["duplicate_ids", "missing_ids"]),  # stops at the repeat
        ("[0] > [1]", [4, 0, 1, 2, 3], ["missing_ids"]),  # [0] is the last passage (index -1)
        ("[1] > [2]\nI changed my mind", [0, 1, 2, 3, 4], ["missing_ids"]),  # only the last line counts
    ],
)
def test_rank_k_parser(response, order, reasons):
    parsed = rank_k.parse_ranking(response, 5)
    assert (parsed.order, parsed.reasons) == (order, reasons)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("[]0123456789>=<thinkaswer/ \n²x-")), max_size=60), st.integers(1, 25))
def test_every_answer_is_a_full_permutation(response, n):
    for parser in (rearank.parse_ranking, rank_k.parse_ranking):
        assert sorted(parser(response, n).order) == list(range(n))


def _lists(n_queries: int, n: int) -> list[CandidateList]:
    return [
        CandidateList(
            Query(f"q{k}", f"query {k}"),
            [Passage(f"q{k}-d{i}", f"passage with relevance {(i * 37 + k) % n}") for i in range(n)],
        )
        for k in range(n_queries)
    ]


@pytest.mark.parametrize(("name", "shown"), [("rearank", rearank_shown), ("rank-k", rank_k_shown)])
def test_windows_are_batched_across_queries_and_rank_the_head(name, shown):
    lists = _lists(3, 100)
    backend = ListwiseOracle(shown)
    results = rerank(lists, backend, with_defaults(name, WindowConfig()))
    assert [len(batch) for batch in backend.batches] == [3] * 9
    for cl, result in zip(lists, results):
        by_relevance = sorted(cl.candidates, key=lambda p: -relevance_in_text(p.text))
        assert result.ranking[:10] == [p.docid for p in by_relevance[:10]]
        assert all(call.method == name and call.reasons == [] for call in result.calls)
    params = backend.params[0]
    if name == "rearank":
        assert params == GenerationParams(max_new_tokens=2048, temperature=0.0, top_p=1.0, fix_text=False)
    else:
        assert params == GenerationParams(max_new_tokens=8000, temperature=0.5, top_p=1.0, fix_text=False)
