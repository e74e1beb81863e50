"""The import entry point: validate_file picks the kind, runs its reader and returns an
ImportBatch that is either complete or empty with its issues (never half a file)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from reasonrank.gc_pause import paused_gc
from reasonrank.imports.issues import ImportIssue, IssueLog
from reasonrank.imports.readers import first_byte, read_lines, read_objects
from reasonrank.imports.records import SOURCES, parse_label, read_candidate_file, read_jsonl_records
from reasonrank.imports.release import RELEASE_FILE, read_release_labels
from reasonrank.imports.trec import read_qrels, read_run_labels
from reasonrank.io import InputError
from reasonrank.types import CandidateList, Label

KINDS = ("candidates", "labels", "reasonrank", "trec-run", "qrels")


@dataclass
class ImportBatch:
    """What one import would write. With any issue, labels, candidates and qrels are empty.

    `candidates` holds lists that come without a label (kind "candidates"); `qrels` holds the
    judgments of a qrels import (or of `qrels_path`); every CandidateList has `.dataset` set.
    """

    labels: list[Label]
    candidates: list[CandidateList]
    qrels: dict[str, dict[str, int]]
    dataset: str
    kind: str
    issues: list[ImportIssue]
    issue_count: int = 0  # all issues found; `issues` lists the first MAX_ISSUES and a count of the rest

    @property
    def ok(self) -> bool:
        return not self.issues


def _detect_kind(path: Path, candidates_path: object) -> str | None:
    """The kind a file most likely holds, from its name, its first records and the arguments."""
    if path.is_dir() or path.name == RELEASE_FILE:
        return "reasonrank"
    if candidates_path is not None:
        return "trec-run"
    first = first_byte(path)
    if first == b"[":
        return "candidates"
    if first == b"{":
        for _, obj in read_objects(path, IssueLog(cap=0)):
            if "final_list" in obj or "initial_list" in obj:
                return "reasonrank"
            return "labels" if "ranking" in obj else "candidates"
        return "candidates"
    for _, text in read_lines(path, IssueLog(cap=0)):
        return {4: "qrels", 6: "trec-run"}.get(len(text.split()))
    return None


def _default_dataset(path: Path) -> str:
    name = path.name
    for suffix in (".gz", ".jsonl", ".json", ".tsv", ".txt", ".run"):
        name = name.removesuffix(suffix)
    return name or "imported"


def validate_file(
    path: str | Path,
    *,
    kind: str = "auto",
    dataset: str | None = None,
    candidates_path: str | Path | None = None,
    max_field_chars: int = 100_000,
    source: str | None = None,
    model: str | None = None,
    qrels_path: str | Path | None = None,
    run_depth: int | None = None,
) -> ImportBatch:
    """Validate and parse one import; never raises for bad content (a missing path is an issue).

    `dataset` names lists whose records carry no `dataset` of their own (default: the file or
    directory name). `source` defaults per kind: "model" for a TREC run, else "teacher"; a
    label record's own `source` wins. `model` names the labels' model where records do not
    (TREC run default: the run tag; release default: "DeepSeek-R1"). `qrels_path` attaches
    graded judgments to every list (replacing any in the file) and fills `batch.qrels`.

    TREC run labels: each run qid becomes one Label whose candidate list is exactly the docids
    the run ranks for it — a label over that window, not over the whole candidate file — with
    the passages in the candidate file's (first-stage) order and the run's order as the ranking,
    so the ranking is always a permutation of the label's candidates. `run_depth` keeps only
    the run's top `run_depth` ranks per qid: a run that reranked the top 20 of 100 but lists
    all 100 (RankLLM writes the untouched tail back) imports with run_depth=20. Candidate-file
    qids the run does not mention are not imported.

    Argument mistakes (unknown kind or source, run_depth < 1) raise InputError.
    """
    if kind != "auto" and kind not in KINDS:
        raise InputError(f"unknown import kind {kind!r}; choose auto or one of {', '.join(KINDS)}")
    if source is not None and source not in SOURCES:
        raise InputError(f"unknown label source {source!r}; choose one of {', '.join(SOURCES)}")
    if run_depth is not None and (type(run_depth) is not int or run_depth < 1):
        raise InputError(f"run_depth must be a positive integer, got {run_depth!r}")
    path = Path(path)
    name = dataset or _default_dataset(path)
    issues = IssueLog()
    batch = ImportBatch([], [], {}, name, kind, [])
    if not path.exists():
        batch.issues = [ImportIssue(str(path), None, None, "file not found")]
        batch.issue_count = 1
        return batch
    # A bulk parse: millions of live objects and no cyclic garbage. The pause covers everything
    # up to the return, so the collector does not wake to walk the new batch as soon as it ends.
    with paused_gc():
        try:
            batch.kind = kind if kind != "auto" else (_detect_kind(path, candidates_path) or "auto")
            _fill(batch, path, issues, max_field_chars, source, model, candidates_path, qrels_path, run_depth)
        except (OSError, EOFError) as exc:  # unreadable file, truncated gzip
            issues.add(path, None, None, f"cannot read: {exc}")
        batch.issues = issues.final(path)
        batch.issue_count = len(issues)
        if batch.issues:
            batch.labels, batch.candidates, batch.qrels = [], [], {}
    return batch


def _fill(
    batch: ImportBatch,
    path: Path,
    issues: IssueLog,
    max_chars: int,
    source: str | None,
    model: str | None,
    candidates_path: str | Path | None,
    qrels_path: str | Path | None,
    run_depth: int | None,
) -> None:
    kind, name = batch.kind, batch.dataset
    if kind == "auto":
        issues.add(path, None, None, f"cannot tell what this file holds; pass kind= one of {', '.join(KINDS)}")
        return
    if path.is_dir() and kind != "reasonrank":
        issues.add(path, None, None, "is a directory; only kind 'reasonrank' imports a directory")
        return
    if qrels_path is not None:
        if Path(qrels_path).is_file():
            batch.qrels = read_qrels(Path(qrels_path), issues)
        else:
            issues.add(qrels_path, None, None, "file not found")
    if kind == "qrels":
        batch.qrels = read_qrels(path, issues)
    elif kind == "candidates":
        batch.candidates = read_candidate_file(path, issues, max_chars, name)
    elif kind == "labels":
        batch.labels = read_jsonl_records(
            path, issues, max_chars, name, lambda r, o: parse_label(r, o, name, source, model)
        )
    elif kind == "reasonrank":
        batch.labels = read_release_labels(path, issues, max_chars, source or "teacher", model)
    else:
        if candidates_path is None or not Path(candidates_path).is_file():
            issues.add(
                path,
                None,
                "candidates_path",
                "a TREC run imports as model labels over a candidate "
                f"file; candidate file {'not given' if candidates_path is None else 'not found'}",
            )
            return
        lists = read_candidate_file(Path(candidates_path), issues, max_chars, name)
        if qrels_path is not None:
            _attach(lists, batch.qrels)
        batch.labels = read_run_labels(path, lists, issues, model, source or "model", run_depth)
    if qrels_path is not None and kind != "trec-run":
        _attach(batch.candidates + [label.candidates for label in batch.labels], batch.qrels)
    if not (batch.labels or batch.candidates or batch.qrels) and not len(issues):
        issues.add(path, None, None, "no records found")


def _attach(lists: list[CandidateList], qrels: dict[str, dict[str, int]]) -> None:
    for cl in lists:
        cl.qrels = qrels.get(cl.query.qid)
