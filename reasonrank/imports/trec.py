"""TREC formats: qrels (`qid iter docid grade`) and runs (`qid Q0 docid rank score tag`) read as
MODEL labels over a candidate file (see validate_file for the window each label covers)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from reasonrank.imports.issues import IssueLog, Record
from reasonrank.imports.readers import read_lines
from reasonrank.io import MAX_GRADE
from reasonrank.types import CandidateList, Label


def _rows(path: Path, issues: IssueLog, layout: str) -> Iterator[tuple[Record, list[str]]]:
    """(record, columns) of each whitespace-separated line with as many columns as `layout`."""
    width = len(layout.split())
    for lineno, text in read_lines(path, issues):
        record = Record(issues, path, lineno, 0)
        cols = text.split()
        if len(cols) == width:
            yield record, cols
        else:
            record.fail("columns", f"expected {width} columns '{layout}', got {len(cols)}")


def read_qrels(path: Path, issues: IssueLog) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    first_line: dict[tuple[str, str], int] = {}
    for record, (qid, _, docid, grade_text) in _rows(path, issues, "qid iter docid grade"):
        if not (grade_text.lstrip("-").isdigit() and len(grade_text) <= 5 and abs(int(grade_text)) <= MAX_GRADE):
            record.fail("grade", f"grade {grade_text[:40]!r} is not an integer in -{MAX_GRADE}..{MAX_GRADE}")
            continue
        grade = int(grade_text)
        previous = qrels.get(qid, {}).get(docid)
        if previous is not None and previous != grade:
            record.fail(
                "docid",
                f"docid {docid!r} of qid {qid!r} is judged {previous} on line "
                f"{first_line[qid, docid]} and {grade} here",
            )
            continue
        qrels.setdefault(qid, {})[docid] = grade
        first_line.setdefault((qid, docid), record.line)  # type: ignore[arg-type]
    return qrels


@dataclass
class _RunHits:
    tag: str
    hits: list[tuple[int, str]] = field(default_factory=list)  # (rank, docid)
    docid_line: dict[str, int] = field(default_factory=dict)
    rank_line: dict[int, int] = field(default_factory=dict)


def read_run_labels(
    path: Path, lists: list[CandidateList], issues: IssueLog, model: str | None, source: str, depth: int | None
) -> list[Label]:
    """One model Label per run qid over the docids that the run ranks (see validate_file)."""
    by_qid = {cl.query.qid: cl for cl in lists}
    known = {cl.query.qid: set(cl.docids) for cl in lists}
    runs: dict[str, _RunHits] = {}
    unknown_qids: set[str] = set()
    for record, (qid, _, docid, rank_text, score_text, tag) in _rows(path, issues, "qid Q0 docid rank score tag"):
        try:
            rank = int(rank_text)
        except ValueError:
            record.fail("rank", f"rank {rank_text!r} is not an integer")
            rank = None
        try:
            score_ok = math.isfinite(float(score_text))
        except ValueError:
            score_ok = False
        if not score_ok:
            record.fail("score", f"score {score_text!r} is not a finite number")
        if qid not in by_qid:
            if qid not in unknown_qids:
                unknown_qids.add(qid)
                record.fail("qid", f"qid {qid!r} is not in the candidate file")
            continue
        run = runs.setdefault(qid, _RunHits(tag))
        if docid in run.docid_line:
            record.fail(
                "docid", f"docid {docid!r} is ranked twice for qid {qid!r} (first on line {run.docid_line[docid]})"
            )
        elif docid not in known[qid]:
            record.fail("docid", f"docid {docid!r} is not a candidate of qid {qid!r}")
        if rank is not None and rank in run.rank_line:
            record.fail("rank", f"rank {rank} is given twice for qid {qid!r} (first on line {run.rank_line[rank]})")
        if record.bad:
            continue
        run.docid_line[docid] = run.rank_line[rank] = record.line  # type: ignore[index,assignment]
        run.hits.append((rank, docid))  # type: ignore[arg-type]
    labels = []
    for qid, run in runs.items():
        ranking = [docid for _, docid in sorted(run.hits)][:depth]
        if not ranking:
            continue
        cl = by_qid[qid]
        window = set(ranking)
        candidates = CandidateList(
            query=cl.query,
            candidates=[p for p in cl.candidates if p.docid in window],
            qrels={d: g for d, g in cl.qrels.items() if d in window} if cl.qrels is not None else None,
            excluded_ids=[d for d in cl.excluded_ids if d in window],
            dataset=cl.dataset,
        )
        labels.append(Label(candidates=candidates, ranking=ranking, source=source, model=model or run.tag))
    return labels
