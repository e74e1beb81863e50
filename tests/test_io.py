"""Readers and writers of io.py: round trips on real data and one-line errors on bad input."""

from __future__ import annotations

import copy
import gzip
import json

import pytest

from reasonrank.io import (
    InputError,
    Label,
    read_calls_jsonl,
    read_candidate_file,
    read_candidates_jsonl,
    read_corpus,
    read_labels_jsonl,
    read_qrels,
    read_rank_llm_json,
    write_calls_jsonl,
    write_candidates_jsonl,
    write_labels_jsonl,
)
from reasonrank.types import CandidateList, Passage, Query
from reasonrank.window import WindowConfig, rerank
from tests.scripted_backend import ScriptedBackend


@pytest.fixture(scope="session")
def dl19_lists(test_data):
    root = test_data / "trec-dl19"
    qrels = read_qrels(root / "qrels.txt")
    return read_rank_llm_json(root / "bm25_top100_with_text.json", qrels=qrels, dataset="dl19")


def test_candidate_jsonl_round_trip_on_dl19(dl19_lists, tmp_path):
    lists = copy.deepcopy(dl19_lists[:5])
    lists[0].excluded_ids = [lists[0].docids[3]]
    lists[1].candidates[0] = Passage(lists[1].docids[0], lists[1].candidates[0].text, title="A title")
    write_candidates_jsonl(lists, tmp_path / "c.jsonl")
    assert read_candidates_jsonl(tmp_path / "c.jsonl") == lists


def test_read_candidate_file_tells_formats_apart(dl19_lists, test_data, tmp_path):
    root = test_data / "trec-dl19"
    qrels = read_qrels(root / "qrels.txt")
    from_json = read_candidate_file(root / "bm25_top100_with_text.json", qrels=qrels, dataset="dl19")
    assert from_json == dl19_lists and len(from_json) == 43
    write_candidates_jsonl(dl19_lists[:3], tmp_path / "c.jsonl")
    replaced = {dl19_lists[0].query.qid: {"x": 1}}
    from_jsonl = read_candidate_file(tmp_path / "c.jsonl", qrels=replaced, dataset="other")
    assert from_jsonl[0].qrels == {"x": 1} and from_jsonl[1].qrels is None
    assert [cl.dataset for cl in from_jsonl] == ["dl19"] * 3  # a stored name is kept
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(InputError, match="no candidate lists"):
        read_candidate_file(tmp_path / "empty.jsonl")


def test_read_corpus_tsv_jsonl_and_gzip(test_data, tmp_path):
    corpus = read_corpus(test_data / "noveleval" / "corpus.tsv")
    assert len(corpus) == 420 and corpus["0-0"].text.startswith("Spider-Man: Across the Spider-Verse")
    rows = [
        {"id": "a", "content": "alpha text"},  # BRIGHT documents
        {"_id": "b", "title": "Bee", "text": "beta text"},  # BEIR
        {"docid": "c", "contents": "gamma text"},  # Pyserini
    ]
    with gzip.open(tmp_path / "docs.jsonl.gz", "wt", encoding="utf-8") as handle:
        handle.writelines(json.dumps(r) + "\n" for r in rows)
    assert read_corpus(tmp_path / "docs.jsonl.gz") == {
        "a": Passage("a", "alpha text"),
        "b": Passage("b", "beta text", "Bee"),
        "c": Passage("c", "gamma text"),
    }
    (tmp_path / "bad.jsonl").write_text('{"id": "a", "content": "x"}\n{"id": "b"}\n')
    with pytest.raises(InputError, match=r"bad.jsonl:2: a document needs an id"):
        read_corpus(tmp_path / "bad.jsonl")
    (tmp_path / "bad.tsv").write_text("d1\tfine\nno tab here\n")
    with pytest.raises(InputError, match=r"bad.tsv:2: expected 'docid<TAB>text'"):
        read_corpus(tmp_path / "bad.tsv")
    with pytest.raises(InputError, match="file not found"):
        read_corpus(tmp_path / "absent.tsv")


def _label(cl: CandidateList, **extra) -> Label:
    return Label(candidates=cl, ranking=list(reversed(cl.docids)), **extra)


def test_label_jsonl_round_trip(dl19_lists, tmp_path):
    labels = [
        _label(
            dl19_lists[0], reasoning="<think>x</think>", model="teacher-r1", relevant_docids=dl19_lists[0].docids[:2]
        ),
        _label(dl19_lists[1]),
    ]
    write_labels_jsonl(labels, tmp_path / "labels.jsonl")
    assert read_labels_jsonl(tmp_path / "labels.jsonl") == labels
    first = json.loads((tmp_path / "labels.jsonl").read_text().splitlines()[0])
    assert first["ranking"][0] == dl19_lists[0].docids[-1] and first["model"] == "teacher-r1"
    assert "model" not in json.loads((tmp_path / "labels.jsonl").read_text().splitlines()[1])


@pytest.mark.parametrize(
    ("ranking", "message"),
    [(["d1", "zz"], "docid 'zz' that is not a candidate"), (["d1", "d1"], "repeats a docid"), ([], "non-empty")],
)
def test_bad_labels_name_the_line(tmp_path, ranking, message):
    good = {"qid": "q", "query": "?", "candidates": [{"docid": "d1", "text": "t"}], "ranking": ["d1"]}
    bad = {**good, "ranking": ranking}
    (tmp_path / "l.jsonl").write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
    with pytest.raises(InputError, match=rf"l.jsonl:2: .*{message}"):
        read_labels_jsonl(tmp_path / "l.jsonl")


def test_calls_jsonl_round_trip_with_real_window_calls(tmp_path):
    lists = [
        CandidateList(
            Query(f"q{q}", "which passage states the highest relevance?"),
            [Passage(f"q{q}d{i}", f"passage {i} has relevance {(i * 7 + q) % 25}") for i in range(25)],
        )
        for q in range(2)
    ]
    results = rerank(lists, ScriptedBackend(), WindowConfig())
    write_calls_jsonl(results, tmp_path / "calls.jsonl")
    calls = read_calls_jsonl(tmp_path / "calls.jsonl")
    assert calls == [c for r in results for c in r.calls]
    assert len(calls) == 4 and calls[0].prompt[0]["role"] == "system"
    (tmp_path / "bad.jsonl").write_text(
        json.dumps({**json.loads((tmp_path / "calls.jsonl").read_text().splitlines()[0]), "extra": 1}) + "\n"
    )
    with pytest.raises(InputError, match="bad.jsonl:1: unknown WindowCall field 'extra'"):
        read_calls_jsonl(tmp_path / "bad.jsonl")
    (tmp_path / "short.jsonl").write_text('{"qid": "q"}\n')
    with pytest.raises(InputError, match="short.jsonl:1: .*missing"):
        read_calls_jsonl(tmp_path / "short.jsonl")
