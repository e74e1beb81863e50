"""reasonrank.imports on real files: a TREC run with its candidates and qrels, candidate and label
JSONL written by reasonrank.io, defaults and gzip, a ReasonRank release built from NovelEval in
each of its map layouts, and qrels files."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from release_fixtures import build_release, noveleval  # noqa: F401 (noveleval: fixture)

from reasonrank.imports import validate_file
from reasonrank.io import (
    read_candidates_jsonl,
    read_labels_jsonl,
    read_qrels,
    read_rank_llm_json,
    read_trec_run,
    write_candidates_jsonl,
    write_labels_jsonl,
)
from reasonrank.types import Label


def test_trec_run_imports_as_43_model_labels_of_20_passages(test_data):
    root = test_data / "trec-dl19"
    batch = validate_file(
        root / "rankvicuna7b_rerank_top20.run",
        candidates_path=root / "bm25_top100_with_text.json",
        run_depth=20,
        qrels_path=root / "qrels.txt",
        dataset="dl19",
        model="rankvicuna-7b",
    )
    assert batch.ok, batch.issues[:3]
    assert batch.kind == "trec-run" and len(batch.labels) == 43
    run = read_trec_run(root / "rankvicuna7b_rerank_top20.run")
    bm25 = {cl.query.qid: cl for cl in read_rank_llm_json(root / "bm25_top100_with_text.json")}
    qrels = read_qrels(root / "qrels.txt")
    for label in batch.labels:
        qid = label.candidates.query.qid
        assert (label.source, label.model, label.reasoning, label.candidates.dataset) == (
            "model",
            "rankvicuna-7b",
            None,
            "dl19",
        )
        assert label.ranking == [docid for docid, _ in run[qid][:20]]
        # the window's passages, in first-stage order: here exactly the BM25 top 20
        assert label.candidates.candidates == bm25[qid].candidates[:20]
        assert label.candidates.qrels == {d: g for d, g in qrels[qid].items() if d in set(label.ranking)}
    # without a depth the label covers every docid the run ranks (RankLLM writes back the tail)
    whole = validate_file(root / "rankvicuna7b_rerank_top20.run", candidates_path=root / "bm25_top100_with_text.json")
    assert whole.ok and {len(label.ranking) for label in whole.labels} == {100}
    assert whole.labels[0].model == "rank" and whole.dataset == "rankvicuna7b_rerank_top20"


def test_candidate_and_label_files_written_by_io_import_unchanged(noveleval, tmp_path):
    write_candidates_jsonl(noveleval, tmp_path / "cands.jsonl")
    batch = validate_file(tmp_path / "cands.jsonl")
    assert batch.ok and batch.kind == "candidates"
    assert batch.candidates == read_candidates_jsonl(tmp_path / "cands.jsonl") == noveleval
    labels = [
        Label(
            cl,
            list(reversed(cl.docids)),
            source="human" if n == 1 else "teacher",
            reasoning="Okay, [20] first." if n != 2 else None,
            model="r1" if n == 0 else None,
            relevant_docids=cl.docids[:2] if n == 0 else None,
            raw_output="<think>…</think>" if n == 0 else None,
            reasons=["missing_ids"] if n == 0 else [],
            tokens_in=10 * n,
            tokens_out=n,
        )
        for n, cl in enumerate(noveleval[:4])
    ]
    write_labels_jsonl(labels, tmp_path / "labels.jsonl")
    batch = validate_file(tmp_path / "labels.jsonl")
    assert batch.ok and batch.kind == "labels"
    assert batch.labels == read_labels_jsonl(tmp_path / "labels.jsonl") == labels


def test_defaults_dataset_source_model_and_gzip(noveleval, tmp_path):
    rows = [
        {
            "qid": "a",
            "query": "q",
            "candidates": [{"docid": "1", "text": "x"}, {"docid": "2", "text": "y"}],
            "ranking": ["2", "1"],
        },
        {
            "qid": 7,
            "query": "q",
            "candidates": [{"docid": 1, "text": "x"}],
            "ranking": [1],
            "dataset": "other",
            "source": "human",
        },
    ]
    payload = "\ufeff" + "\r\n".join(json.dumps(r) for r in rows) + "\r\n\r\n"  # BOM, CRLF, blank line
    with gzip.open(tmp_path / "mine.jsonl.gz", "wt", encoding="utf-8") as handle:
        handle.write(payload)
    batch = validate_file(tmp_path / "mine.jsonl.gz", model="m1")
    assert batch.ok, batch.issues
    first, second = batch.labels
    assert (batch.dataset, first.candidates.dataset, second.candidates.dataset) == ("mine", "mine", "other")
    assert (first.source, second.source, first.model) == ("teacher", "human", "m1")
    assert second.candidates.query.qid == "7" and second.ranking == ["1"]
    # the same qid in two datasets is not a duplicate
    (tmp_path / "two.jsonl").write_text(json.dumps(rows[0]) + "\n" + json.dumps({**rows[0], "dataset": "x"}) + "\n")
    assert validate_file(tmp_path / "two.jsonl").ok


@pytest.mark.parametrize("maps", ["dir-json", "dir-jsonl", "file-tsv"])
def test_reasonrank_release_layout(maps, tmp_path, test_data, noveleval):
    root = build_release(tmp_path / "release", test_data, maps)
    batch = validate_file(root)
    assert batch.ok, batch.issues[:3]
    assert (batch.kind, batch.dataset, len(batch.labels)) == ("reasonrank", "release", 4)
    rows = [json.loads(line) for line in (root / "training_data_all.jsonl").read_text().splitlines()]
    for label, row, cl in zip(batch.labels, rows, noveleval):
        assert label.candidates.query.qid == row["qid"] and label.candidates.query.text == cl.query.text
        assert label.candidates.candidates == cl.candidates  # initial_list order, real text
        assert (label.ranking, label.relevant_docids, label.reasoning) == (
            row["final_list"],
            row["relevant_docids"],
            row["reasoning"],
        )
        assert (label.source, label.model, label.candidates.dataset) == ("teacher", "DeepSeek-R1", "noveleval")
    # the data file itself names the release too
    assert validate_file(root / "training_data_all.jsonl").labels == batch.labels


def test_release_map_conflicts_and_missing_maps(tmp_path, test_data):
    root = build_release(tmp_path / "r", test_data, "dir-jsonl", rows=2)
    first = json.loads((root / "id_doc" / "part0.jsonl").read_text().splitlines()[0])
    with (root / "id_doc" / "part1.jsonl").open("a") as handle:
        handle.write(json.dumps({"docid": first["docid"], "contents": "another text"}) + "\n")
    batch = validate_file(root)
    assert [(Path(i.path).name, i.field) for i in batch.issues] == [("part1.jsonl", "docid")]
    assert "already has a different text (part0.jsonl:1)" in batch.issues[0].message
    (root / "id_query" / "q.jsonl").unlink()
    issues = validate_file(root).issues
    assert any(i.field == "id_query" and "no id_query/ map" in i.message for i in issues)


def test_qrels_files_import(test_data):
    batch = validate_file(test_data / "trec-dl19" / "qrels.txt", dataset="dl19")
    assert batch.ok and batch.kind == "qrels" and batch.qrels == read_qrels(test_data / "trec-dl19" / "qrels.txt")
    assert len(validate_file(test_data / "noveleval" / "qrels.txt").qrels) == 21
