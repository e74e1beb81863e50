"""reasonrank.imports on the malformed corpus in tests/fixtures/malformed (each file one defect,
its expected line and field in the folder's README table), and how validation fails: a missing
path or a bad line is an issue, never an exception; argument mistakes raise InputError at once;
issues are capped; one bad line rejects the whole file."""

from __future__ import annotations

from pathlib import Path

import pytest

from reasonrank.imports import MAX_ISSUES, ImportIssue, validate_file
from reasonrank.io import InputError

MALFORMED = Path(__file__).parent / "fixtures" / "malformed"


def malformed_cases() -> list[dict]:
    rows = []
    for line in (MALFORMED / "README.md").read_text().splitlines():
        if line.startswith("| ") and not line.startswith(("| file", "| ---")):
            file, kind, options, lineno, field, defect = (c.strip() for c in line.strip().strip("|").split("|"))
            rows.append(
                {
                    "file": file,
                    "kind": kind,
                    "line": int(lineno),
                    "field": field,
                    "defect": defect,
                    "options": dict(o.split("=", 1) for o in options.split(",") if o),
                }
            )
    return rows


CASES = malformed_cases()


def test_the_corpus_holds_at_least_30_different_defects():
    assert len(CASES) >= 30
    assert len({c["defect"] for c in CASES}) == len(CASES)
    listed = {c["file"].split("/")[0] for c in CASES} | {"README.md", "support"}
    assert {p.name for p in MALFORMED.iterdir()} == listed  # every file is described


@pytest.mark.parametrize("kind_given", [True, False], ids=["kind", "auto"])
@pytest.mark.parametrize("case", CASES, ids=[c["file"].split("/")[0] for c in CASES])
def test_each_malformed_file_is_rejected_naming_line_and_field(case, kind_given):
    options = case["options"]
    target = MALFORMED / options.get("dir", case["file"])
    batch = validate_file(
        target,
        kind=case["kind"] if kind_given else "auto",
        max_field_chars=int(options.get("max_field_chars", 100_000)),
        candidates_path=MALFORMED / options["candidates"] if "candidates" in options else None,
    )
    assert batch.kind == case["kind"]
    assert not batch.ok and batch.labels == [] and batch.candidates == [] and batch.qrels == {}
    assert len(batch.issues) == 1, [str(i) for i in batch.issues]  # one defect, one issue
    issue = batch.issues[0]
    assert (issue.line, issue.field) == (case["line"], case["field"])
    assert issue.path == str(MALFORMED / case["file"])
    assert str(issue).startswith(f"{MALFORMED / case['file']}:{case['line']}: {case['field']}: ")


def test_a_file_with_every_defect_at_once_reports_them_all(tmp_path):
    """Issues are collected across lines, not stopped at the first."""
    jsonl = [
        c for c in CASES if c["kind"] == "candidates" and not c["options"] and c["file"] != "cand_duplicate_qid.jsonl"
    ]
    bad_lines = [(MALFORMED / c["file"]).read_bytes().splitlines()[c["line"] - 1] for c in jsonl]
    unique = [line.replace(b'"q2"', b'"q%d"' % i) for i, line in enumerate(bad_lines, 10)]
    (tmp_path / "all.jsonl").write_bytes(b"\n".join(unique) + b"\n")
    batch = validate_file(tmp_path / "all.jsonl", kind="candidates")
    assert len(jsonl) >= 20
    assert [(i.line, i.field) for i in batch.issues] == [(n, c["field"]) for n, c in enumerate(jsonl, 1)]


def test_missing_path_is_one_issue_and_never_raises(tmp_path):
    batch = validate_file(tmp_path / "absent.jsonl")
    assert batch.issues == [ImportIssue(str(tmp_path / "absent.jsonl"), None, None, "file not found")]
    assert str(batch.issues[0]) == f"{tmp_path / 'absent.jsonl'}: file not found"
    run = tmp_path / "r.run"
    run.write_text("q1 Q0 d1 1 1.0 x\n")
    assert [i.field for i in validate_file(run).issues] == ["candidates_path"]
    assert [i.message for i in validate_file(tmp_path, kind="labels").issues] == [
        "is a directory; only kind 'reasonrank' imports a directory"
    ]
    (tmp_path / "empty.jsonl").write_text("\n\n")
    assert [i.message for i in validate_file(tmp_path / "empty.jsonl", kind="labels").issues] == ["no records found"]


def test_argument_mistakes_raise_input_error(tmp_path):
    with pytest.raises(InputError, match="unknown import kind 'csv'") as kind:
        validate_file(tmp_path, kind="csv")
    with pytest.raises(InputError, match="unknown label source") as source:
        validate_file(tmp_path, source="robot")
    with pytest.raises(InputError, match="run_depth") as depth:
        validate_file(tmp_path, run_depth=0)
    for error in (kind, source, depth):  # the CLI prints each as its one `error:` line
        assert "\n" not in str(error.value)
    assert list(tmp_path.iterdir()) == []  # refused before reading or writing anything


def test_issues_are_capped_with_a_count_of_the_rest(tmp_path):
    (tmp_path / "bad.jsonl").write_text("not json\n" * (MAX_ISSUES + 300))
    issues = validate_file(tmp_path / "bad.jsonl", kind="candidates").issues
    assert len(issues) == MAX_ISSUES + 1
    assert issues[MAX_ISSUES - 1].line == MAX_ISSUES
    assert issues[-1].message == "… and 300 more issues" and issues[-1].line is None


def test_one_bad_line_rejects_the_whole_file(tmp_path):
    good = (MALFORMED / "label_not_permutation.jsonl").read_text().splitlines()[0]
    (tmp_path / "l.jsonl").write_text(
        good + "\n" + good.replace('"q1"', '"q9"').replace('"d1", "d2", "d3"', '"d3"') + "\n"
    )
    batch = validate_file(tmp_path / "l.jsonl")
    assert not batch.ok and batch.labels == [] and [i.line for i in batch.issues] == [2]
