"""SFT export bytes when items share Passage objects, as db.exports.reviewed_items hands them out
(one object per stored passage): the export caches each passage by object, so the bytes must
equal the straightforward writer's whether objects are shared, copied or mixed."""

from __future__ import annotations

import json
import random

import pytest

from reasonrank.export import ReviewedItem, sft_rows
from reasonrank.export_files import jsonl_bytes
from reasonrank.types import CandidateList, Label, Passage, Query
from tests.test_export import straightforward_sft


@pytest.fixture(scope="module")
def mixed_items(test_data) -> list[ReviewedItem]:
    """30 DL19 windows over 3 queries' top-30: one shared object per docid, except that every
    third item holds equal copies, and item 4 an edited text under a shared docid."""
    lists = json.loads((test_data / "trec-dl19" / "bm25_top100_with_text.json").read_text(encoding="utf-8"))
    shared: dict[str, Passage] = {}
    rng = random.Random(11)
    items = []
    for n in range(30):
        entry = lists[n % 3]
        hits = [entry["hits"][i] for i in sorted(rng.sample(range(30), 20))]
        passages = [shared.setdefault(str(hit["docid"]), Passage(str(hit["docid"]), hit["content"])) for hit in hits]
        if n % 3 == 2:
            passages = [Passage(p.docid, p.text, p.title) for p in passages]
        if n == 4:
            passages[7] = Passage(passages[7].docid, passages[7].text + " [5] edited")
        ranking = [p.docid for p in passages]
        rng.shuffle(ranking)
        label = Label(
            CandidateList(Query(f"q{n:02d}", entry["query"]), passages, dataset="dl19"),
            ranking,
            reasoning=f"Passage [{n % 20 + 1}] answers it.",
        )
        items.append(ReviewedItem(label, "accepted", None, [], f"dl19/q{n:02d}"))
    return items


def test_shared_copied_and_mixed_passage_objects_give_the_straightforward_bytes(mixed_items):
    assert any(
        a.label.candidates.candidates[0] is b.label.candidates.candidates[0]
        for a, b in zip(mixed_items, mixed_items[3:])
    )  # objects really are shared
    rows = sft_rows(mixed_items)
    assert jsonl_bytes(rows) == straightforward_sft(mixed_items)
    assert " (5) edited" in rows[4]["messages"][1]["content"]
    assert " (5) edited" not in "".join(row["messages"][1]["content"] for row in rows[:4] + rows[5:])


def test_each_export_prepares_passages_with_its_own_settings(mixed_items):
    first = jsonl_bytes(sft_rows(mixed_items))
    short = jsonl_bytes(sft_rows(mixed_items, max_passage_tokens=8))
    assert short == straightforward_sft(mixed_items, max_passage_tokens=8) and short != first
    assert jsonl_bytes(sft_rows(mixed_items)) == first
