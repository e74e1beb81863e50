"""reasonrank.export: SFT / alpaca / RL rows from reviewed labels, byte-identical prompts with
inference, and the deterministic, contained JSONL writer, read back by `datasets`."""

from __future__ import annotations

import copy
import hashlib
import json
import os
import random
import re

import pytest
from release_fixtures import build_release

from reasonrank.export import (
    NO_REASONING,
    TAGGED_REASONING,
    ReviewedItem,
    alpaca_rows,
    assistant_turn,
    jsonl_bytes,
    prompt_messages,
    rl_rows,
    safe_export_name,
    sft_rows,
    window_ids,
    write_export,
)
from reasonrank.imports import label_consistency, validate_file
from reasonrank.io import InputError
from reasonrank.metrics import reward_terms
from reasonrank.parse import parse_ranking
from reasonrank.prompts import SYSTEM_PROMPT
from reasonrank.types import CandidateList, Label, Message, Passage, Query
from reasonrank.window import WindowConfig, rerank
from tests.scripted_backend import ScriptedBackend

ANSWER = re.compile(r"<think>(.*)</think>\n<answer>((?:\[\d+\](?: > )?)+)</answer>", re.DOTALL)


@pytest.fixture(scope="module")
def teacher_items(tmp_path_factory, test_data) -> list[ReviewedItem]:
    """Six NovelEval teacher labels in the ReasonRank release layout, imported as users would."""
    root = build_release(tmp_path_factory.mktemp("export") / "release", test_data, rows=6)
    batch = validate_file(root)
    assert batch.ok
    return [
        ReviewedItem(label, "accepted", label_consistency(label), ["ann1"], f"noveleval/{label.candidates.query.qid}")
        for label in batch.labels
    ]


@pytest.fixture(scope="module")
def model_items(test_data) -> list[ReviewedItem]:
    """The 43 real RankVicuna-7B DL19 labels: no reasoning text exists for them."""
    root = test_data / "trec-dl19"
    batch = validate_file(
        root / "rankvicuna7b_rerank_top20.run",
        candidates_path=root / "bm25_top100_with_text.json",
        run_depth=20,
        qrels_path=root / "qrels.txt",
        dataset="dl19",
        model="rankvicuna-7b",
    )
    assert batch.ok
    return [
        ReviewedItem(label, "accepted", None, ["ann1"], f"dl19/{label.candidates.query.qid}") for label in batch.labels
    ]


def fixed(item: ReviewedItem) -> ReviewedItem:
    """A reviewer's fix: the teacher's last passage moved to the top, reasoning edited."""
    label = copy.deepcopy(item.label)
    label.ranking = label.ranking[-1:] + label.ranking[:-1]
    label.reasoning = "Edited: " + (label.reasoning or "")
    label.source = "human"
    return ReviewedItem(label, "fixed", item.consistency, ["ann1", "ann2"], item.item_key)


# ----------------------------------------------------------------------------- SFT rows
def test_sft_assistant_turn_is_think_then_answer_over_window_ids(teacher_items):
    items = [teacher_items[0], fixed(teacher_items[1])]
    rows = sft_rows(items)
    assert len(rows) == 2 and rows.skipped == {}
    for row, item in zip(rows, items):
        system, user, assistant = row["messages"]
        assert (system["role"], user["role"], assistant["role"]) == ("system", "user", "assistant")
        assert system["content"] == SYSTEM_PROMPT
        match = ANSWER.fullmatch(assistant["content"])
        assert match and match.group(1) == item.label.reasoning.strip()
        ids = [int(i) for i in re.findall(r"\d+", match.group(2))]
        docids = item.label.candidates.docids
        assert [docids[i - 1] for i in ids] == item.label.ranking  # the target order, in window ids
        # the training target parses back with no repairs and earns the full format reward
        parsed = parse_ranking(assistant["content"], len(docids))
        assert parsed.order == [i - 1 for i in ids] and parsed.reasons == []
        terms = reward_terms(assistant["content"], docids, item.label.ranking, item.label.relevant_docids)
        assert terms.format_ok and terms.count_ok and terms.rbo == 1.0
    assert rows[1]["messages"][2]["content"].startswith("<think>Edited: Okay,")
    first_fixed = items[1].label.candidates.docids.index(items[1].label.ranking[0]) + 1
    assert f"<answer>[{first_fixed}] > " in rows[1]["messages"][2]["content"]


def test_export_prompt_equals_the_inference_prompt_byte_for_byte(teacher_items):
    labels = [item.label for item in teacher_items]
    lists = [label.candidates for label in labels]
    results = rerank(lists, ScriptedBackend(), WindowConfig(window=20, step=10, max_passage_tokens=64))
    rows = sft_rows(teacher_items, max_passage_tokens=64)
    rl = rl_rows(teacher_items, max_passage_tokens=64)
    for result, row, rl_row in zip(results, rows, rl):
        assert len(result.calls) == 1  # 20 candidates: one window, prompted in first-stage order
        assert row["messages"][:2] == result.calls[0].prompt == rl_row["prompt"]
        assert json.dumps(row["messages"][:2]).encode() == json.dumps(result.calls[0].prompt).encode()


def test_labels_without_reasoning_are_left_out_and_counted(model_items, teacher_items):
    tagged = copy.deepcopy(teacher_items[0])
    tagged.label.reasoning = "<think>nested</think>"
    rows = sft_rows(model_items + teacher_items[:2] + [tagged])
    assert len(rows) == 2
    assert rows.skipped == {NO_REASONING: 43, TAGGED_REASONING: 1}
    allowed = sft_rows(model_items, allow_empty_reasoning=True)
    assert len(allowed) == 43 and allowed[0]["messages"][2]["content"].startswith("<think></think>\n<answer>[")
    alpaca = alpaca_rows(model_items)
    assert list(alpaca) == [] and alpaca.skipped == {NO_REASONING: 43}


def test_rows_follow_item_key_order_whatever_the_input_order(teacher_items):
    shuffled = teacher_items[:]
    random.Random(0).shuffle(shuffled)
    assert jsonl_bytes(sft_rows(shuffled)) == jsonl_bytes(sft_rows(teacher_items))
    by_key = sorted(teacher_items, key=lambda item: item.item_key)
    assert [row["initial_list"] for row in rl_rows(shuffled)] == [item.label.candidates.docids for item in by_key]


def test_lists_longer_than_the_window_and_bad_decisions_are_refused(test_data, teacher_items):
    root = test_data / "trec-dl19"
    whole = validate_file(root / "rankvicuna7b_rerank_top20.run", candidates_path=root / "bm25_top100_with_text.json")
    long_item = ReviewedItem(whole.labels[0], "accepted", None, [], "dl19/long")
    with pytest.raises(InputError, match="has 100 candidates, more than the window of 20"):
        rl_rows([long_item])
    with pytest.raises(InputError, match="decision 'rejected' is not exportable"):
        sft_rows([ReviewedItem(teacher_items[0].label, "rejected", None, [], "x")])
    broken = copy.deepcopy(teacher_items[0])
    broken.label.ranking = broken.label.ranking[:-1]
    with pytest.raises(InputError, match="not a permutation"):
        rl_rows([broken])


# ----------------------------------------------------------------------------- RL rows
def test_rl_rows_carry_the_reward_columns(teacher_items, model_items):
    rows = rl_rows([fixed(teacher_items[0]), model_items[0]])
    teacher, model = teacher_items[0], model_items[0]
    by_dataset = {row["dataset"]: row for row in rows}
    row = by_dataset["noveleval"]
    assert row["initial_list"] == teacher.label.candidates.docids
    assert row["teacher_list"] == fixed(teacher).label.ranking  # the human order is the target
    assert row["relevant_docids"] == teacher.label.relevant_docids
    dl19 = by_dataset["dl19"]
    qrels = model.label.candidates.qrels
    assert dl19["relevant_docids"] == [d for d in model.label.candidates.docids if qrels.get(d, 0) >= 1]
    assert rl_rows([model_items[0]], rel_level=2)[0]["relevant_docids"] == [
        d for d in model.label.candidates.docids if qrels.get(d, 0) >= 2
    ]
    assert [m["role"] for m in dl19["prompt"]] == ["system", "user"]


# ----------------------------------------------------------------------------- files
def test_every_export_kind_loads_with_datasets(tmp_path, teacher_items, model_items):
    from datasets import load_dataset

    items = teacher_items[:3] + [fixed(teacher_items[3])] + model_items[:5]
    unjudged = ReviewedItem(
        Label(CandidateList(Query("u1", "which?"), [Passage("a", "x"), Passage("b", "y")]), ["b", "a"]),
        "accepted",
        None,
        [],
        "zz/u1",
    )
    built = {
        "sft": sft_rows(items),
        "alpaca": alpaca_rows(items, allow_empty_reasoning=True),
        "rl": rl_rows(items + [unjudged]),
    }
    for kind, rows in built.items():
        written = write_export(rows, tmp_path, f"{kind}-v1")
        assert written.count == len(rows) and written.path == tmp_path / f"{kind}-v1.jsonl"
        loaded = load_dataset("json", data_files=str(written.path), split="train", cache_dir=str(tmp_path / "hf-cache"))
        assert loaded.to_list() == list(rows), kind
    assert len(built["sft"]) == 4 and len(built["alpaca"]) == 9 and len(built["rl"]) == 10
    assert built["rl"][-1]["relevant_docids"] == [] and built["rl"][-1]["dataset"] == ""


def test_hash_is_stable_across_runs_and_follows_content(tmp_path, teacher_items):
    first = write_export(sft_rows(teacher_items), tmp_path / "a", "sft")
    second = write_export(sft_rows(copy.deepcopy(teacher_items)), tmp_path / "b", "sft")
    assert first.sha256 == second.sha256 == hashlib.sha256(first.path.read_bytes()).hexdigest()
    assert first.path.read_bytes() == second.path.read_bytes()
    edited = copy.deepcopy(teacher_items)
    edited[2].label.reasoning += " One more sentence."
    assert write_export(sft_rows(edited), tmp_path / "c", "sft").sha256 != first.sha256
    line = first.path.read_text(encoding="utf-8").splitlines()[0]
    assert line == json.dumps(json.loads(line), ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    assert "“" in first.path.read_text(encoding="utf-8")  # UTF-8, not \\u escapes


@pytest.mark.parametrize(
    ("name", "stem"),
    [
        ("../x", "_x"),
        ("/abs", "_abs"),
        ("a/b", "a_b"),
        ("..\\..\\win", "_.._win"),
        ("accepted v2.jsonl", "accepted_v2"),
        (".hidden", "hidden"),
        ("ok-name_1.2", "ok-name_1.2"),
    ],
)
def test_export_names_cannot_escape_the_data_dir(tmp_path, teacher_items, name, stem):
    data_dir = tmp_path / "data"
    written = write_export(rl_rows(teacher_items[:1]), data_dir, name)
    assert written.path == data_dir / f"{stem}.jsonl" and written.path.is_file()
    assert written.path.resolve().parent == data_dir.resolve()
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == [f"{stem}.jsonl"]


def test_unusable_names_existing_files_symlinks_and_empty_exports_are_refused(tmp_path, teacher_items):
    rows = rl_rows(teacher_items[:1])
    for name in ("", "..", "/", "...", "///"):
        with pytest.raises(InputError, match="no usable characters"):
            safe_export_name(name)
    write_export(rows, tmp_path, "once")
    with pytest.raises(InputError, match="already exists"):
        write_export(rows, tmp_path, "once")
    assert write_export(rows, tmp_path, "once", overwrite=True).count == 1
    outside = tmp_path / "outside.jsonl"
    os.symlink(outside, tmp_path / "planted.jsonl")
    with pytest.raises(InputError, match="would leave the data directory"):
        write_export(rows, tmp_path, "planted")
    assert not outside.exists()
    with pytest.raises(InputError, match="no rows"):
        write_export([], tmp_path, "empty")


# ----------------------------------------------------------------------------- fast paths
@pytest.fixture(scope="module")
def shared_passage_items(test_data) -> list[ReviewedItem]:
    """DL19 items that share passages, as exports do (one corpus, many queries), plus the cases a
    passage cache could get wrong: a docid whose text changed, the same text with and without a
    title, and two docids with the same text inside one list."""
    lists = json.loads((test_data / "trec-dl19" / "bm25_top100_with_text.json").read_text(encoding="utf-8"))
    rng = random.Random(7)
    items = []
    for n in range(24):
        entry = lists[n % 3]
        hits = [entry["hits"][i] for i in sorted(rng.sample(range(30), 20))]
        passages = [Passage(str(hit["docid"]), hit["content"]) for hit in hits]
        if n == 5:
            passages[0] = Passage(passages[0].docid, passages[0].text + " [3] edited")
        if n == 6:
            passages[1] = Passage(passages[1].docid, passages[1].text, title="A [2] title")
        if n == 7:
            passages[2] = Passage("copy-of-" + passages[3].docid, passages[3].text)
        docids = [passage.docid for passage in passages]
        ranking = docids[:]
        rng.shuffle(ranking)
        label = Label(
            CandidateList(Query(f"q{n:02d}", entry["query"] + f" [{n}]"), passages, dataset="dl19"),
            ranking,
            reasoning=f"  Passage [{n % 20 + 1}] answers the query. \n",
        )
        items.append(ReviewedItem(label, "accepted", None, ["ann1"], f"dl19/q{n:02d}"))
    return items


def straightforward_sft(items: list[ReviewedItem], **prompt_args) -> bytes:
    """The export written out slowly: every item's passages prepared on their own (no sharing),
    one json.dumps a row, one str joined and encoded."""
    lines = []
    for item in sorted(items, key=lambda item: item.item_key):
        messages = prompt_messages(item.label, **prompt_args)
        turn = assistant_turn(item.label.reasoning.strip(), window_ids(item.label))
        messages.append(Message(role="assistant", content=turn))
        lines.append(
            json.dumps(
                {"messages": messages}, ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False
            )
            + "\n"
        )
    return "".join(lines).encode("utf-8")


def test_shared_passages_are_prepared_once_and_give_the_same_bytes(tmp_path, shared_passage_items):
    expected = straightforward_sft(shared_passage_items)
    assert not expected.isascii()  # DL19 text that ftfy repairs is part of the comparison
    rows = sft_rows(list(reversed(shared_passage_items)))
    assert jsonl_bytes(rows) == expected
    file = write_export(rows, tmp_path, "shared")
    assert file.path.read_bytes() == expected and file.sha256 == hashlib.sha256(expected).hexdigest()
    users = [row["messages"][1]["content"] for row in rows]
    assert "[1] " + shared_passage_items[5].label.candidates.candidates[0].text.split(" [3]")[0][:40] in users[5]
    assert " (3) edited\n[2] " in users[5]  # the changed text, not the docid's earlier one
    assert "[2] Title: A (2) title Content: " in users[6] and "Title:" not in users[7]
    rl = rl_rows(shared_passage_items, max_passage_tokens=16)
    assert [row["prompt"] for row in rl] == [
        prompt_messages(item.label, max_passage_tokens=16)
        for item in sorted(shared_passage_items, key=lambda i: i.item_key)
    ]


def test_shared_passages_give_the_same_bytes_with_a_tokenizer(tiny_model_dir, shared_passage_items):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    expected = straightforward_sft(shared_passage_items, tokenizer=tokenizer, max_passage_tokens=24)
    rows = sft_rows(shared_passage_items, tokenizer=tokenizer, max_passage_tokens=24)
    assert jsonl_bytes(rows) == expected
    assert jsonl_bytes(sft_rows(shared_passage_items, max_passage_tokens=24)) != expected  # words, not tokens


TRICKY = 'say "hi" \\ C:\\path\\n \x01\x1f\x7f\t tab, café — 東京 😀 \u2028 </script>'


def test_pre_assembled_sft_lines_equal_encoding_each_row(tmp_path, shared_passage_items):
    """sft_rows assembles each line from pieces escaped once; a plain list of the same rows goes
    through the row-by-row encoder. Both must give the same bytes, escapes included."""
    items = copy.deepcopy(shared_passage_items)
    for n, item in enumerate(items[:6]):
        cl = item.label.candidates
        cl.candidates[n] = Passage(cl.candidates[n].docid, TRICKY + cl.candidates[n].text)
        cl.query = Query(cl.query.qid, TRICKY + cl.query.text)
        item.label.reasoning = f"{TRICKY} [{n + 1}] first"
    rows = sft_rows(items)
    assert len(rows.encoded) == len(rows) and all(rows.encoded)  # every line pre-assembled
    fast = jsonl_bytes(rows)
    assert fast == jsonl_bytes(list(rows)) == straightforward_sft(items)
    for escape in (b'\\"hi\\"', b"\\\\path", b"\\u0001", b"\\u001f", b"\\t", "東京 😀".encode()):
        assert escape in fast
    written = write_export(rows, tmp_path, "fast")
    assert written.path.read_bytes() == fast and written.sha256 == hashlib.sha256(fast).hexdigest()


def test_rows_edited_after_building_are_written_as_edited(tmp_path, shared_passage_items):
    rows = sft_rows(shared_passage_items[:4])
    rows[1]["messages"][2]["content"] += " edited"
    rows[2]["messages"][1] = Message(role="user", content="replaced")
    rows.reverse()
    assert jsonl_bytes(rows) == jsonl_bytes([json.loads(json.dumps(row)) for row in rows])
    assert b'replaced"' in jsonl_bytes(rows) and b' edited"' in jsonl_bytes(rows)
    surrogate = copy.deepcopy(shared_passage_items[0])
    surrogate.label.reasoning = "lone \ud800 surrogate"
    with pytest.raises(InputError, match="not plain JSON"):
        write_export(sft_rows([surrogate]), tmp_path, "broken")
    assert list(tmp_path.iterdir()) == []  # no partial file left behind
