"""Rank-R1 setwise heapsort: prompts byte for byte, answer parsing, the sort and its batching.

Expected strings are written from github.com/ielab/llm-rankers at
b36517bf17a3956dc56c4c967f972d02390b1cdd:
- Rank-R1/prompts/prompt_setwise-R1.toml (v0.1) and prompt_setwise-R1-v0.2.toml (whole files);
- Rank-R1/run_setwise.py lines 155-165 (`compare`: doc_prefix + text joined by doc_separator,
  [system, user] turns), 31-51 (`load_run_file`: "title contents", then truncate), 24 and 141
  (random.seed(929), `random.sample(id_passage, len(id_passage))`), 116-117 (greedy, 8000
  tokens), 184-199 (the answer regex on the lower-cased completion; the label must be one shown);
- llmrankers/setwise.py lines 200-232 (`heapify`, `heapSort`), 234-242 and 298-312 (`rerank`:
  reversed heap, top k then the rest in first-stage order), 315-316 (`truncate`).
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from methods_backend import SetwiseChooser, relevance, shown_documents

from reasonrank.backends.base import Backend
from reasonrank.bright import load_bright_task
from reasonrank.io import InputError
from reasonrank.methods import with_defaults
from reasonrank.methods.rank_r1 import (
    PROMPT_V01,
    PROMPT_V02,
    build_messages,
    document_text,
    heap_sort,
    parse_choice,
    truncate,
)
from reasonrank.types import CandidateList, Completion, GenerationParams, Passage, Query
from reasonrank.window import WindowConfig, rerank

REPO = Path(__file__).resolve().parents[1]

V01_SYSTEM = (
    "A conversation between User and Assistant. The user asks a question, and the Assistant solves it. The "
    "assistant first thinks about the reasoning process in the mind and then provides the user with the answer. "
    "The reasoning process and answer are enclosed within <think> </think> and <answer> </answer> tags, "
    "respectively, i.e., <think> reasoning process here </think> <answer> answer here </answer>."
)
V01_TAIL = (
    "\nAfter completing the reasoning process, please provide only the label of the most relevant document to "
    "the query, enclosed in square brackets, within the answer tags. For example, if the third document is the "
    "most relevant, the answer should be: <think> reasoning process here </think> <answer>[3]</answer>."
)
V02_SYSTEM = (
    "You are RankLLM, an intelligent assistant capable of evaluating the relevancy of passages to a given query."
)
V02_HEAD = (
    "You will be presented with a query, and a set of documents.\n\nYour task consists of the following step:\n\n"
    "1. Analyze the query: Carefully read the query and identify the core problem or question being asked.\n\n"
    "2. Analyze the documents: Thoroughly examine each document and briefly explain how each document is relevant "
    "or not relevant to the query.\n\n3. Find the most relevant document: Based on your analysis, select the most "
    "relevant document to the query from the set and briefly explain why.\n\nImportant: Provide your analysis "
    "within the <think> </think> tags and answer only the label of the most relevant document, enclosed in square "
    "brackets, within the <answer> </answer> tags. For example, if the third document is the most relevant, your "
    "response should be:\n<think> Your analysis here </think>\n<answer>[3]</answer>\n\nHere is the query: "
)


@pytest.fixture(scope="module")
def bright_mini() -> list[CandidateList]:
    return load_bright_task(REPO / "db" / "sample" / "bright-mini", "theoremqa_questions").require_lists()


def test_v01_prompt_on_dl19_matches_run_setwise(dl19):
    first = dl19[0]
    texts = [p.text for p in first.candidates[:3]]  # MS MARCO passages: no title, < 512 tokens
    docs = [document_text(p, None, 512) for p in first.candidates[:3]]
    messages = build_messages(PROMPT_V01, truncate(first.query.text, None, 32), docs)
    assert messages[0] == {"role": "system", "content": V01_SYSTEM}
    assert messages[1]["content"] == (
        'Given the query: "how long is life cycle of flea", which of the following documents is most relevant?\n'
        f"[1]: {texts[0]}\n[2]: {texts[1]}\n[3]: {texts[2]}" + V01_TAIL
    )


def test_v02_prompt_on_dl19_matches_its_toml(dl19):
    first = dl19[1]
    texts = [p.text for p in first.candidates[:2]]
    messages = build_messages(PROMPT_V02, first.query.text, texts)
    assert messages[0] == {"role": "system", "content": V02_SYSTEM}
    assert messages[1]["content"] == (
        V02_HEAD + f"{first.query.text}\n\nHere are the documents:\n[1]: {texts[0]}\n\n[2]: {texts[1]}"
    )


def test_bright_prompt_truncates_query_and_passages_in_model_tokens(bright_mini, tiny_model_dir):
    """The BRIGHT query (~60 tokens) is cut to 32 and each document to 24 tokens, as
    `SetwiseLlmRanker.truncate` cuts them: tokenize, keep the first N, convert back."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    first = bright_mini[0]
    query = tokenizer.convert_tokens_to_string(tokenizer.tokenize(first.query.text)[:32])
    assert len(query) < len(first.query.text) and first.query.text.startswith(query)
    cut = [tokenizer.convert_tokens_to_string(tokenizer.tokenize(p.text)[:24]) for p in first.candidates[:2]]
    docs = [document_text(p, tokenizer, 24) for p in first.candidates[:2]]
    messages = build_messages(PROMPT_V01, truncate(first.query.text, tokenizer, 32), docs)
    assert messages[1]["content"] == (
        f'Given the query: "{query}", which of the following documents is most relevant?\n'
        f"[1]: {cut[0]}\n[2]: {cut[1]}" + V01_TAIL
    )


def test_document_text_joins_title_and_contents_with_a_space():
    assert document_text(Passage("d", "Body text.", title="Title"), None, 512) == "Title Body text."
    assert document_text(Passage("d", "Body text."), None, 512) == "Body text."


def test_first_comparison_of_a_run_shows_the_seeded_shuffle(dl19):
    """heapSort starts at node 100 // 19 = 5 with children 96..99; random.Random(929).sample of
    5 positions is [1, 0, 4, 3, 2] (Python's Mersenne Twister, as the reference's seeded
    `random.sample` draws it)."""
    backend = SetwiseChooser(PROMPT_V01)
    rerank(dl19[:1], backend, with_defaults("rank-r1", WindowConfig()))
    first = backend.batches[0][0]
    expected = [document_text(dl19[0].candidates[j], None, 512) for j in (96, 5, 99, 98, 97)]
    assert shown_documents(first, PROMPT_V01) == expected
    assert backend.params[0] == GenerationParams(max_new_tokens=8000, temperature=0.0, top_p=1.0, fix_text=False)


@pytest.mark.parametrize(
    ("completion", "shown", "expected"),
    [
        ("<think>doc 2 answers it</think>\n<answer>[2]</answer>", 5, (1, [])),
        ("<THINK>x</THINK> <ANSWER> [5] </ANSWER>", 5, (4, [])),  # lower-cased, group stripped
        ("<think>x</think><answer>[6]</answer>", 5, (None, ["out_of_range"])),
        ("<think>x</think><answer>[2] > [1]</answer>", 5, (None, ["out_of_range"])),
        ("<think>x</think><answer>2</answer>", 5, (None, ["out_of_range"])),
        ("<think>x</think><answer>[02]</answer>", 5, (None, ["out_of_range"])),  # compared as a string
        ("<answer>[2]</answer>", 5, (None, ["no_answer_tag"])),  # the regex needs the think block
        ("<think>still thinking", 5, (None, ["reasoning_truncated", "no_answer_tag"])),
    ],
)
def test_parse_choice(completion, shown, expected):
    assert parse_choice(completion, shown) == expected


def _drive(n: int, num_child: int, k: int, quality: list[float]) -> tuple[list[int], int]:
    """Run `heap_sort` with a perfect chooser; (order, comparisons)."""
    sort = heap_sort(n, num_child, k)
    calls = 0
    try:
        shown = next(sort)
        while True:
            calls += 1
            shown = sort.send(max(range(len(shown)), key=lambda i: (quality[shown[i]], -i)))
    except StopIteration as done:
        return done.value, calls


def test_heapsort_hand_traced():
    """n=7, num_child=2, k=3, quality rising with position (the best last). Traced by hand
    through setwise.py lines 200-232: build heapify(3) no children, heapify(2) 1 comparison,
    heapify(1) 1, heapify(0) 2 (swap, then node 2); extraction 1 → 2 comparisons, extraction 2
    → 2, extraction 3 reaches k. Final heap reversed [6, 5, 4, 0, 2, 3, 1]: top 3, then the rest
    in first-stage order."""
    assert _drive(7, 2, 3, [1, 2, 3, 4, 5, 6, 7]) == ([6, 5, 4, 0, 1, 2, 3], 8)
    # already in order: 3 build comparisons, 2 + 1 on extraction
    assert _drive(7, 2, 3, [7, 6, 5, 4, 3, 2, 1]) == ([0, 1, 2, 3, 4, 5, 6], 6)


def _reference_heapsort_calls(n: int, num_child: int, k: int, quality: list[float]) -> tuple[list[int], int]:
    """setwise.py heapify/heapSort/rerank transcribed line by line (recursive, with the list
    mutated in place), with a perfect `compare`: the oracle for the batched generator."""
    arr = list(range(n))
    calls = 0

    def heapify(size, i):
        nonlocal calls
        if num_child * i + 1 < size:
            docs = [arr[i]] + arr[num_child * i + 1 : min((num_child * (i + 1) + 1), size)]
            inds = [i] + list(range(num_child * i + 1, min((num_child * (i + 1) + 1), size)))
            calls += 1
            best_ind = max(range(len(docs)), key=lambda j: (quality[docs[j]], -j))
            largest = inds[best_ind]
            if largest != i:
                arr[i], arr[largest] = arr[largest], arr[i]
                heapify(size, largest)

    for i in range(n // num_child, -1, -1):
        heapify(n, i)
    ranked = 0
    for i in range(n - 1, 0, -1):
        arr[i], arr[0] = arr[0], arr[i]
        ranked += 1
        if ranked == k:
            break
        heapify(i, 0)
    ranking = list(reversed(arr))
    top = ranking[:k]
    return top + [d for d in range(n) if d not in top], calls


@pytest.mark.parametrize("seed", range(5))
def test_heapsort_equals_the_reference_on_shuffled_qualities(seed):
    quality = list(range(100))
    random.Random(seed).shuffle(quality)
    assert _drive(100, 19, 10, quality) == _reference_heapsort_calls(100, 19, 10, quality)


def _lists(orders: list[list[int]]) -> list[CandidateList]:
    return [
        CandidateList(
            Query(f"q{n}", f"query {n}"),
            [Passage(f"q{n}-d{i}", f"passage with relevance {r}") for i, r in enumerate(order)],
        )
        for n, order in enumerate(orders)
    ]


def test_sort_rounds_are_batched_across_queries():
    """The two hand-traced sorts (8 and 6 comparisons) run as 8 generate calls: 2 prompts in
    each of the first 6, then 1 (only the longer sort is still comparing)."""
    lists = _lists([[1, 2, 3, 4, 5, 6, 7], [7, 6, 5, 4, 3, 2, 1]])
    backend = SetwiseChooser(PROMPT_V01)
    config = WindowConfig(method="rank-r1", num_child=2, sort_k=3, top_k=7)
    results = rerank(lists, backend, config)
    assert [len(batch) for batch in backend.batches] == [2, 2, 2, 2, 2, 2, 1, 1]
    assert results[0].ranking == [f"q0-d{i}" for i in (6, 5, 4, 0, 1, 2, 3)]
    assert results[1].ranking == [f"q1-d{i}" for i in range(7)]
    assert [len(r.calls) for r in results] == [8, 6]
    call = results[0].calls[0]
    assert call.method == "rank-r1" and call.position == 0 and len(call.docids_before) == 3
    assert call.docids_after == ["q0-d6"] and call.reasons == [] and call.reasoning == "compared"


def test_dl19_top10_with_a_perfect_chooser(dl19):
    """Relevance hidden in the texts: the top 10 come out best first; the remaining 90 keep
    first-stage order, as `rerank` appends them."""
    lists = []
    for n, cl in enumerate(dl19[:3]):
        quality = list(range(len(cl.candidates)))
        random.Random(n).shuffle(quality)
        cands = [Passage(p.docid, f"{p.text} relevance {q}") for p, q in zip(cl.candidates, quality)]
        lists.append(CandidateList(cl.query, cands))
    backend = SetwiseChooser(PROMPT_V01)
    results = rerank(lists, backend, with_defaults("rank-r1", WindowConfig()))
    for cl, result in zip(lists, results):
        quality = [relevance(p.text) for p in cl.candidates]
        order, calls = _reference_heapsort_calls(100, 19, 10, quality)
        assert result.ranking == [cl.candidates[i].docid for i in order]
        assert len(result.calls) == calls
    assert len(backend.batches) == max(len(r.calls) for r in results)


def test_unparsable_answers_keep_the_root():
    """Every answer malformed: no heap node ever swaps, so the first k come out in heap order."""
    lists = _lists([[1, 2, 3, 4, 5, 6, 7]])
    results = rerank(
        lists, SetwiseChooser(PROMPT_V01, garbage=True), WindowConfig(method="rank-r1", num_child=2, sort_k=3)
    )
    assert sorted(results[0].ranking) == sorted(p.docid for p in lists[0].candidates)
    assert all(call.reasons == ["reasoning_truncated", "no_answer_tag"] for call in results[0].calls)
    assert all(call.parsed == [] for call in results[0].calls)


class _RandomText(Backend):
    name = "random-text"

    def __init__(self, texts: list[str]) -> None:
        self.texts = texts
        self.calls = 0

    def generate(self, prompts, params):
        out = []
        for _ in prompts:
            out.append(Completion(self.texts[self.calls % len(self.texts)]))
            self.calls += 1
        return out


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.text(max_size=40),
            st.builds(lambda i: f"<think>x</think><answer>[{i}]</answer>", st.integers(-2, 25)),
        ),
        min_size=1,
        max_size=6,
    ),
    st.integers(1, 30),
    st.integers(1, 19),
    st.integers(1, 12),
)
def test_any_output_yields_a_full_ranking(texts, n, num_child, k):
    lists = _lists([list(range(n))])
    config = WindowConfig(method="rank-r1", num_child=num_child, sort_k=k)
    [result] = rerank(lists, _RandomText(texts), config)
    assert sorted(result.ranking) == sorted(p.docid for p in lists[0].candidates)


def test_num_child_beyond_the_label_set_is_refused():
    with pytest.raises(InputError, match="num_child must be <= 19"):
        rerank(_lists([[1, 2]]), SetwiseChooser(PROMPT_V01), WindowConfig(method="rank-r1", num_child=20))
