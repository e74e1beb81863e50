"""Fixtures for the import tests: NovelEval as candidate lists and a small ReasonRank release
built from its real text. Import into a test module with
`from release_fixtures import build_release, noveleval, release_dir`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reasonrank.io import read_qrels, read_queries_tsv, read_rank_llm_json


@pytest.fixture(scope="session")
def noveleval(test_data):
    """NovelEval: 21 queries × 20 judged passages, candidates in BM25 order, graded qrels."""
    root = test_data / "noveleval"
    qrels = read_qrels(root / "qrels.txt")
    return read_rank_llm_json(root / "candidates_with_text.json", qrels=qrels, dataset="noveleval")


def build_release(root: Path, test_data: Path, maps: str = "dir-json", rows: int = 4) -> Path:
    """A small ReasonRank release from real NovelEval text: `rows` queries, their 20 BM25
    candidates as initial_list, a 'teacher' final_list (judged grade first, BM25 order within a
    grade; on odd rows the least relevant passage is put first, so not every label is perfect), grade ≥ 1 as
    relevant_docids. `maps` picks the on-disk shape of id_query/ and id_doc/."""
    source = test_data / "noveleval"
    queries = read_queries_tsv(source / "queries.tsv")
    qrels = read_qrels(source / "qrels.txt")
    lists = read_rank_llm_json(source / "candidates_with_text.json")[:rows]
    root.mkdir(parents=True)
    data = []
    for n, cl in enumerate(lists):
        grades = qrels[cl.query.qid]
        final = sorted(cl.docids, key=lambda d: -grades.get(d, 0))
        if n % 2:
            final.insert(0, final.pop())
        data.append(
            {
                "dataset": "noveleval",
                "qid": f"noveleval_{cl.query.qid}",
                "initial_list": cl.docids,
                "final_list": final,
                "relevant_docids": [d for d in cl.docids if grades.get(d, 0) >= 1],
                "reasoning": f"Okay, I need to rank the 20 passages for “{queries[cl.query.qid]}”. "
                f"[{cl.docids.index(final[0]) + 1}] answers it most directly.",
            }
        )
    (root / "training_data_all.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in data))
    query_map = {f"noveleval_{cl.query.qid}": queries[cl.query.qid] for cl in lists}
    doc_map = {p.docid: p.text for cl in lists for p in cl.candidates}
    if maps == "dir-json":  # one JSON object per dataset file
        (root / "id_query").mkdir()
        (root / "id_doc").mkdir()
        (root / "id_query" / "noveleval.json").write_text(json.dumps(query_map, ensure_ascii=False, indent=1))
        (root / "id_doc" / "noveleval.json").write_text(json.dumps(doc_map, ensure_ascii=False))
    elif maps == "dir-jsonl":  # JSONL lines, split over two files
        (root / "id_query").mkdir()
        (root / "id_doc").mkdir()
        (root / "id_query" / "q.jsonl").write_text(
            "".join(json.dumps({"qid": k, "query": v}) + "\n" for k, v in query_map.items())
        )
        items = list(doc_map.items())
        for part, chunk in enumerate((items[:30], items[30:])):
            (root / "id_doc" / f"part{part}.jsonl").write_text(
                "".join(json.dumps({"docid": k, "contents": v}) + "\n" for k, v in chunk)
            )
    else:  # single TSV files beside the data file
        (root / "id_query.tsv").write_text("".join(f"{k}\t{v}\n" for k, v in query_map.items()))
        (root / "id_doc.tsv").write_text("".join(f"{k}\t{v}\n" for k, v in doc_map.items()))
    return root


@pytest.fixture(scope="session")
def release_dir(tmp_path_factory, test_data) -> Path:
    return build_release(tmp_path_factory.mktemp("release") / "reasonrank_data", test_data)
