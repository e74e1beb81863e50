"""Finding 9: bad input ends in one line naming the file, the line and the field; nothing is
created or written on the way (more cases live in tests/fixtures/malformed, read by
tests/test_imports_malformed.py)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from running_app import REPO

from reasonrank.io import InputError, read_candidates_jsonl, read_qrels, read_queries_tsv


def _reasonrank(*args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "reasonrank", *args],
        cwd=cwd,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_db_in_a_missing_directory_is_refused_not_created(tmp_path):
    target = tmp_path / "no" / "such" / "dir"
    done = _reasonrank("user", "list", "--db", f"sqlite:///{target / 'x.db'}", cwd=tmp_path)
    assert done.returncode == 2 and "does not exist" in done.stderr and done.stderr.count("\n") == 1, done.stderr
    assert not (tmp_path / "no").exists()


def _line(qid, docids, **extra) -> str:
    return json.dumps({"qid": qid, "query": "q", "candidates": [{"docid": d, "text": "t"} for d in docids], **extra})


GOOD = _line("q1", ["a", "b"])


@pytest.mark.parametrize(
    "bad, where",
    [
        (_line("q1", ["c", "d"]), "field 'qid': 'q1' is already on line 1"),
        (_line("q2", ["c", "c"]), "candidates[1].docid"),
        (_line("q2", ["", "c"]), "candidates[0].docid"),
        (_line("q\t2", ["c", "d"]), "field 'qid'"),
        (_line("q\n2", ["c", "d"]), "field 'qid'"),
        (_line("q2", ["c d", "e"]), "candidates[0].docid"),
        (GOOD.replace('"q1"', '"q2"')[:-1] + ', "qrels": {"a": NaN}}', "NaN is not a JSON number"),
        (_line("q2", ["c", "d"], qrels={"c": 7000}), "qrels['c']: grade 7000"),
    ],
)
def test_rerank_refuses_what_would_corrupt_run_trec(tmp_path, bad, where):
    path = tmp_path / "cands.jsonl"
    path.write_text(GOOD + "\n" + bad + "\n")
    with pytest.raises(InputError, match=rf"^{path}:2: "):
        read_candidates_jsonl(path)
    try:
        read_candidates_jsonl(path)
    except InputError as exc:
        assert where in str(exc) and "\n" not in str(exc), str(exc)
    out = tmp_path / "out"
    done = _reasonrank(
        "rerank", "--candidates", str(path), "--backend", "openai", "--base-url", "http://127.0.0.1:9/v1",
        "--model", "m", "--out", str(out), cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2 and f"{path}:2" in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert not (out / "run.trec").exists()


def test_decode_errors_name_the_file_and_line(tmp_path):
    queries = tmp_path / "queries.tsv"
    queries.write_bytes(b"q1\tfine\nq2\tbad \xff byte\n")
    with pytest.raises(InputError, match=rf"^{queries}:\d+: not UTF-8"):
        read_queries_tsv(queries)
    qrels = tmp_path / "qrels.txt"
    qrels.write_text("q1 0 d1 1\nq1 0 d2 1" + "0" * 400 + "\n")
    with pytest.raises(InputError, match=rf"^{qrels}:2: grade"):
        read_qrels(qrels)


def test_the_problem_count_is_the_count_in_all(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text("not json\n" * 10_000)
    done = _reasonrank(
        "import", str(bad), "--kind", "candidates", "--db", f"sqlite:///{tmp_path / 'x.db'}", cwd=tmp_path
    )
    assert done.returncode == 2 and "error: 10,000 problem(s) in" in done.stderr, done.stderr[-300:]
