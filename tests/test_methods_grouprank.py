"""GroupRank (Diver): prompt byte for byte, the JSON score parser and its fallbacks, the seeded
shuffles, one batched call for every group, and the averaged ranking.

Written from github.com/AQ-MedAI/Diver at 95b111b0adad85bf388e628b9073552055f6f408,
Reranker/rerank_groupwise.py: line 19 (random.seed(666)), 22-33 (`avg_scores`), 40 (temperature
0.3, top-p 0.8, 8000 tokens), 42-82 (system and user prompts), 84-114 (`_extract_rerank_output`),
116-141 (`prepare_groups_one_epoch`: shuffle in place, groups [i, i + size) every interval,
newlines to a space, 3000 characters, "[i]. text\\n\\n"), 143-174 (`rerank_by_group`: one
`generate` for all groups, score / 10, a failed group scores 0, average, stable sort);
Reranker/reranker_script.sh section 3.2 (group 20, interval 20, 6 repeats, top 100).
"""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from methods_backend import GroupScorer

from reasonrank.backends.base import Backend
from reasonrank.bright import load_bright_task
from reasonrank.methods import with_defaults
from reasonrank.methods.grouprank import SYSTEM, build_messages, document_text, parse_scores
from reasonrank.types import CandidateList, Completion, GenerationParams, Passage, Query
from reasonrank.window import WindowConfig, rerank

REPO = Path(__file__).resolve().parents[1]


def _user(query: str, passages: str, k: int) -> str:
    return (
        f"I will provide you {k} documents, each indicated by a numerical identifier []. Score these documents based "
        f"on their Usefulness and Relevance to the query.\nQuery:\n{query}\n\nDocuments:\n{passages}\n\n"
        "## Final Output Format\nYou must structure your response in exactly two parts: provide your brief reasoning "
        "process first, then output final scores in JSON format like below, with document IDs as string keys and "
        f"integer scores as values for all {k} documents. \nThe reasoning process and answer are enclosed within "
        "<reason> </reason> and <answer> </answer> tags, respectively. Do NOT output anything outside the specified "
        "tags. Follow this exact format:\n<reason> \n[Analyze each document's usefulness and relevance to the query, "
        "explaining your scoring rationale]\n</reason>\n<answer> \n```json\n"
        '{"[1]": 5, "[2]": 3, "[3]": 8}\n``` \n</answer>\n'
    )


def test_system_prompt_opening_and_scale():
    assert SYSTEM.startswith(
        "Your task is to evaluate and rank documents based on how well they help answer the given query. Follow this "
        "evaluation priority:\n1. PRIMARY: Usefulness & Helpfulness - "
    )
    assert SYSTEM.endswith("- 0: Not helpful at all, cannot assist with answering the query\n")


def test_prompt_on_dl19(dl19):
    first = dl19[0]
    texts = [document_text(p.text, 3000) for p in first.candidates[:2]]
    assert texts == [p.text for p in first.candidates[:2]]  # one line each, under 3000 characters
    messages = build_messages(first.query.text, texts)
    assert messages[0] == {"role": "system", "content": SYSTEM}
    passages = f"[1]. {texts[0]}\n\n[2]. {texts[1]}\n\n"
    assert messages[1]["content"] == _user("how long is life cycle of flea", passages, 2)


def test_prompt_on_bright_mini_joins_lines_and_cuts_characters():
    [first, *_] = load_bright_task(REPO / "db" / "sample" / "bright-mini", "theoremqa_questions").require_lists()
    doc = first.candidates[9]
    assert "\n\n" in doc.text and len(doc.text) > 1500
    text = document_text(doc.text, 1500)
    assert len(text) == 1500 and "\n" not in text and text.startswith(doc.text.split("\n")[0] + " ")
    messages = build_messages(first.query.text, [text])
    assert messages[1]["content"] == _user(first.query.text, f"[1]. {text}\n\n", 1)


@pytest.mark.parametrize(
    ("output", "scores", "reasons"),
    [
        (
            '<reason>r</reason>\n<answer>\n```json\n{"[1]": 5, "[2]": 3, "[3]": 8}\n```\n</answer>',
            [(0, 0.5), (1, 0.3), (2, 0.8)],
            [],
        ),
        ('<answer>{"[2]": 10}</answer>', [(1, 1.0)], ["missing_ids"]),
        ('no tags {"[1]": 4, "[2]": 6, "[3]": 1}', [(0, 0.4), (1, 0.6), (2, 0.1)], ["no_answer_tag"]),
        ('<answer>```json\n{"[1]]": 2, "[2]": 7, "[3]": 0\n```</answer>', [(0, 0.2), (1, 0.7), (2, 0.0)], []),
        ('<answer>{"[0]": 9, "[1]": 1, "[2]": 2}</answer>', [(2, 0.9), (0, 0.1), (1, 0.2)], []),  # [0] = last
        ('<answer>{"[4]": 9}</answer>', [(0, 0), (1, 0), (2, 0)], ["unparsable"]),
        ('<answer>{"[1]": "high"}</answer>', [(0, 0), (1, 0), (2, 0)], ["unparsable"]),
        ("<reason>ran out of tok", [(0, 0), (1, 0), (2, 0)], ["no_answer_tag", "unparsable"]),
    ],
)
def test_parse_scores(output, scores, reasons):
    assert parse_scores(output, 3) == (scores, reasons)


def _lists(relevances: list[list[int]]) -> list[CandidateList]:
    return [
        CandidateList(
            Query(f"q{k}", f"query {k}"),
            [Passage(f"q{k}-d{i}", f"passage with relevance {r}") for i, r in enumerate(rels)],
        )
        for k, rels in enumerate(relevances)
    ]


def test_every_group_of_every_repeat_and_query_in_one_call():
    lists = _lists([[3, 9, 1, 7, 5, 0], [2, 2, 8, 4, 6, 1]])
    backend = GroupScorer()
    config = with_defaults("grouprank", WindowConfig())
    config = replace(config, window=3, step=2, passes=2)
    results = rerank(lists, backend, config)
    # 6 candidates, groups at 0, 2, 4 (sizes 3, 3, 2), 2 repeats, 2 queries: 12 prompts, one call
    assert [len(b) for b in backend.batches] == [12]
    assert backend.params[0] == GenerationParams(max_new_tokens=8000, temperature=0.3, top_p=0.8, fix_text=False)
    assert results[0].ranking == ["q0-d1", "q0-d3", "q0-d4", "q0-d0", "q0-d2", "q0-d5"]
    assert results[1].ranking[:3] == ["q1-d2", "q1-d4", "q1-d3"]
    # the shuffles: one Random(666) stream, query 0 then query 1, then query 0 again (in place)
    first_group = [m["content"] for m in backend.batches[0][0]][1]
    assert "passage with relevance 1\n" in first_group.split("[1]. ")[1]  # shuffled order [2, 0, 1, 4, 5, 3]
    shown = [c.docids_before for c in results[0].calls]
    assert shown[:3] == [["q0-d2", "q0-d0", "q0-d1"], ["q0-d1", "q0-d4", "q0-d5"], ["q0-d5", "q0-d3"]]
    assert shown[3] == ["q0-d3", "q0-d2", "q0-d1"]  # [2, 0, 1, 4, 5, 3] shuffled again: [3, 2, 1, 5, 4, 0]
    assert [c.pass_index for c in results[0].calls] == [0, 0, 0, 1, 1, 1]


def test_ties_keep_the_order_first_scored_and_failed_groups_score_zero():
    lists = _lists([[5, 5, 5, 5]])
    config = WindowConfig(method="grouprank", window=4, step=4, passes=1)
    [result] = rerank(lists, GroupScorer(), config)
    random_order = list(range(4))
    random.Random(666).shuffle(random_order)
    assert result.ranking == [f"q0-d{i}" for i in random_order]  # all 0.5: first scored first
    [broken] = rerank(lists, GroupScorer(broken=True), config)
    assert broken.calls[0].reasons == ["no_answer_tag", "unparsable"]
    assert broken.ranking == [f"q0-d{i}" for i in random_order]  # all 0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(max_size=30), min_size=1, max_size=4), st.integers(1, 12), st.integers(2, 5), st.data())
def test_any_output_yields_a_full_ranking(texts, n, size, data):
    interval = data.draw(st.integers(1, size))

    class Echo(Backend):
        name = "echo"

        def generate(self, prompts, params):
            return [Completion(texts[i % len(texts)]) for i in range(len(prompts))]

    lists = _lists([list(range(n))])
    [result] = rerank(lists, Echo(), WindowConfig(method="grouprank", window=size, step=interval, passes=2))
    assert sorted(result.ranking) == sorted(lists[0].docids)
