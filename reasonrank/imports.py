"""Validated imports: read a candidate, label, qrels or TREC run file, or a ReasonRank release
directory, and report every problem in it with its line and field.

Why every problem and not the first: a reviewer fixing a 13k-row file by hand should not need
thirteen thousand round trips. Why no database here: validation is pure, so the CLI, the UI
and the tests share it, and `db.importer` writes a batch only when it has no issues (one bad
line means zero rows written).

Kinds (`validate_file(kind=...)`, "auto" tells them apart):
  * "candidates": our candidate JSONL (DESIGN.md) or RankLLM's retrieve-results JSON list.
  * "labels": our label JSONL: candidate fields plus `ranking` (a permutation of the candidates)
    and optional `reasoning, model, relevant_docids, source, raw_output, reasons, tokens_in,
    tokens_out`. Unknown fields are ignored.
  * "reasonrank": the ReasonRank release (HF `liuwenhan/reasonrank_data_13k`): a directory with
    `training_data_all.jsonl` (`dataset, qid, initial_list, final_list, reasoning,
    relevant_docids`; `initial_list` is the first-stage order, `final_list` the teacher's) and
    the text maps `id_query/` and `id_doc/`. The maps' on-disk shape is not documented, so each
    may be a directory (every `.jsonl`, `.json`, `.tsv` file in it, e.g. one per dataset) or one
    file beside the data file (`id_query.jsonl` …). Accepted files: JSONL lines with an id
    (`id`/`qid`/`docid`/`_id`) and a text (`text`/`query`/`contents`/`content`); a JSON object
    `{id: text}`; TSV `id<TAB>text`. Ids must be unique across the files of one map (the
    release's ids carry their dataset, e.g. "math_1001"); a repeat with another text is an issue.
  * "trec-run": a run file (`qid Q0 docid rank score tag`) as MODEL labels over a candidate file
    (`candidates_path`, our JSONL or RankLLM JSON): one Label per run qid.
  * "qrels": `qid iter docid grade`.

Limits: a string field longer than `max_field_chars` is an issue; at most MAX_ISSUES issues are
kept per import, then one "… and N more issues" line.
"""
from __future__ import annotations

import codecs
import gzip
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from reasonrank.io import InputError
from reasonrank.metrics import ndcg_at_k
from reasonrank.types import CandidateList, Label, Passage, Query

ALPHA = 0.4  # spec §2: teacher labels with self-consistency nDCG@10 below this are dropped
CONSISTENCY_CUTOFF = 10
KINDS = ("candidates", "labels", "reasonrank", "trec-run", "qrels")
SOURCES = ("teacher", "model", "human")
MAX_ISSUES = 200
RELEASE_FILE = "training_data_all.jsonl"
_MAP_ID_KEYS = ("id", "qid", "docid", "_id")
_MAP_TEXT_KEYS = ("text", "query", "contents", "content")
_MAP_SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".tsv")
_MISSING = object()  # a field absent from its object (JSON null is None)


@dataclass(frozen=True)
class ImportIssue:
    """One problem: the file, its 1-based line (None when it has no line), the field, why."""

    path: str
    line: int | None
    field: str | None
    message: str

    def __str__(self) -> str:
        where = self.path if self.line is None else f"{self.path}:{self.line}"
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


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

    @property
    def ok(self) -> bool:
        return not self.issues


# ----------------------------------------------------------------------------- self-consistency
def self_consistency(ranking: list[str], relevant: list[str] | dict[str, int] | None) -> float | None:
    """nDCG@10 of a teacher ranking against the teacher's own positives (spec §2).

    `relevant` is a list of relevant docids (binary, as `relevant_docids` in the release) or a
    {docid: grade} qrels dict (graded, trec_eval semantics). None or an empty dict means no
    judgments: the score is unknown (None). An empty list means "judged, no positives": 0.0.
    """
    if relevant is None:
        return None
    if isinstance(relevant, dict):
        if not relevant:
            return None
        return ndcg_at_k(ranking, relevant, CONSISTENCY_CUTOFF)
    return ndcg_at_k(ranking, {docid: 1 for docid in relevant}, CONSISTENCY_CUTOFF)


def label_consistency(label: Label) -> float | None:
    """A label's self-consistency: against its relevant_docids, else its list's qrels."""
    if label.relevant_docids is not None:
        return self_consistency(label.ranking, label.relevant_docids)
    return self_consistency(label.ranking, label.candidates.qrels)


# ----------------------------------------------------------------------------- issue collection
class _Issues:
    """The issues of one import: the first `cap` kept, the rest counted."""

    def __init__(self, cap: int = MAX_ISSUES) -> None:
        self.kept: list[ImportIssue] = []
        self.dropped = 0
        self.cap = cap

    def add(self, path: Path | str, line: int | None, field: str | None, message: str) -> None:
        if len(self.kept) < self.cap:
            self.kept.append(ImportIssue(str(path), line, field, message))
        else:
            self.dropped += 1

    def __len__(self) -> int:
        return len(self.kept) + self.dropped

    def final(self, path: Path | str) -> list[ImportIssue]:
        if self.dropped:
            return [*self.kept, ImportIssue(str(path), None, None, f"… and {self.dropped} more issues")]
        return list(self.kept)


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "list", dict: "object"}.get(
        type(value), type(value).__name__
    )


class _Record:
    """Field checks for one record (a line, or an entry of a JSON file); each failed check adds
    one issue naming the field and marks the record bad. Checks return the clean value or None."""

    def __init__(self, issues: _Issues, path: Path, line: int | None, max_chars: int) -> None:
        self.issues = issues
        self.path = path
        self.line = line
        self.max_chars = max_chars
        self.failed: set[str] = set()

    @property
    def bad(self) -> bool:
        return bool(self.failed)

    def fail(self, field: str, message: str) -> None:
        self.issues.add(self.path, self.line, field, message)
        self.failed.add(field)

    def _absent(self, value: object, field: str, expected: str, required: bool) -> None:
        if value is _MISSING:
            if required:
                self.fail(field, "missing field")
        elif value is not None or required:
            self.fail(field, f"must be {expected}, got {_json_type(value)}")

    def _too_long(self, value: str, field: str) -> bool:
        if len(value) > self.max_chars:
            self.fail(field, f"is {len(value):,} characters, over the limit of {self.max_chars:,}")
            return True
        return False

    def ident(self, value: object, field: str) -> str | None:
        """An id: a non-blank string or an integer (JSON numbers are common for qids)."""
        if type(value) is str:
            if not value.strip():
                self.fail(field, "is empty")
                return None
            return None if self._too_long(value, field) else value
        if type(value) is int:
            return str(value)
        self._absent(value, field, "a string or integer id", required=True)
        return None

    def text(self, value: object, field: str, *, required: bool = True) -> str | None:
        """A string; a required one must not be blank, an optional one may be null or absent."""
        if type(value) is str:
            if required and not value.strip():
                self.fail(field, "is empty")
                return None
            return None if self._too_long(value, field) else value
        self._absent(value, field, "a string", required)
        return None

    def count(self, value: object, field: str) -> int:
        if value is _MISSING or value is None:
            return 0
        if type(value) is int and value >= 0:
            return value
        self.fail(field, f"must be a non-negative integer, got {value!r}")
        return 0

    def ids(self, value: object, field: str, *, required: bool) -> list[str] | None:
        """A list of distinct ids; each bad or repeated element is named by its index."""
        if not isinstance(value, list):
            self._absent(value, field, "a list of ids", required)
            return None
        limit = self.max_chars
        if all(type(item) is str and item.strip() and len(item) <= limit for item in value):
            if len(set(value)) == len(value):  # fast path: distinct, well-formed string ids
                return list(value)
        out: list[str] = []
        first: dict[str, int] = {}
        for index, item in enumerate(value):
            docid = self.ident(item, f"{field}[{index}]")
            if docid is None:
                continue
            if docid in first:
                self.fail(f"{field}[{index}]", f"repeats docid {docid!r} (first at [{first[docid]}])")
                continue
            first[docid] = index
            out.append(docid)
        return out

    def strings(self, value: object, field: str) -> list[str]:
        if value is _MISSING or value is None:
            return []
        if isinstance(value, list) and all(type(item) is str for item in value):
            return value
        self.fail(field, "must be a list of strings")
        return []

    def grades(self, value: object, field: str) -> dict[str, int] | None:
        """Optional qrels {docid: integer grade}."""
        if not isinstance(value, dict):
            self._absent(value, field, "an object {docid: grade}", required=False)
            return None
        grades: dict[str, int] = {}
        for docid, grade in value.items():
            if type(grade) is not int:
                self.fail(f"{field}.{docid}", f"grade must be an integer, got {_json_type(grade)} {grade!r}")
            elif self.ident(docid, f"{field}.{docid}") is not None:
                grades[docid] = grade
        return grades

    def passages(self, value: object, field: str, text_key: str = "text") -> list[Passage]:
        """A non-empty list of {docid, text, title?} with distinct docids (the hot loop of a
        large import: a 100k-list file holds two million of these)."""
        if not isinstance(value, list) or not value:
            if isinstance(value, list):
                self.fail(field, "must not be empty")
            else:
                self._absent(value, field, "a list of {docid, text} objects", required=True)
            return []
        passages: list[Passage] = []
        first: dict[str, int] = {}
        limit = self.max_chars
        for index, cand in enumerate(value):
            if type(cand) is dict:  # fast path: a well-formed candidate with string fields
                docid, text, title = cand.get("docid"), cand.get(text_key), cand.get("title")
                if (
                    type(docid) is str and type(text) is str and docid not in first
                    and len(docid) <= limit and len(text) <= limit and docid.strip() and text.strip()
                    and (title is None or (type(title) is str and len(title) <= limit))
                ):
                    first[docid] = index
                    passages.append(Passage(docid, text, title or None))
                    continue
            where = f"{field}[{index}]"
            if not isinstance(cand, dict):
                self.fail(where, f"must be an object {{docid, text}}, got {_json_type(cand)}")
                continue
            docid = self.ident(cand.get("docid", _MISSING), f"{where}.docid")
            text = self.text(cand.get(text_key, _MISSING), f"{where}.{text_key}")
            title = self.text(cand.get("title"), f"{where}.title", required=False)
            if docid is None or text is None:
                continue
            if docid in first:
                self.fail(f"{where}.docid", f"duplicate docid {docid!r} (also {field}[{first[docid]}])")
                continue
            first[docid] = index
            passages.append(Passage(docid, text, title or None))
        return passages

    def permutation(self, ranking: list[str], candidates: list[str], field: str) -> None:
        """`ranking` (already free of repeats) must order exactly the candidates. Missing
        candidates are reported only when no element of the ranking was wrong: a wrong or
        repeated element already explains the gap."""
        self.subset(ranking, candidates, field)
        ranked = set(ranking)
        missing = [docid for docid in candidates if docid not in ranked]
        if missing and not any(name.startswith(f"{field}[") for name in self.failed):
            shown = ", ".join(repr(d) for d in missing[:3]) + (" …" if len(missing) > 3 else "")
            self.fail(field, f"is not a permutation of the {len(candidates)} candidates: misses {len(missing)} ({shown})")

    def subset(self, docids: list[str], candidates: list[str], field: str) -> None:
        known = set(candidates)
        for index, docid in enumerate(docids):
            if docid not in known:
                self.fail(f"{field}[{index}]", f"docid {docid!r} is not a candidate")


# ----------------------------------------------------------------------------- reading lines
def _lines(path: Path, issues: _Issues) -> Iterator[tuple[int, str]]:
    """(line number, text) of every non-blank line, each decoded as strict UTF-8 on its own so
    an encoding error names its line and the rest of the file is still checked."""
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rb") as handle:
        for lineno, raw in enumerate(handle, 1):
            if lineno == 1 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8):]
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                issues.add(path, lineno, "encoding", f"invalid UTF-8 at byte {exc.start + 1} of the line")
                continue
            if text.strip():
                yield lineno, text


def _objects(path: Path, issues: _Issues) -> Iterator[tuple[int, dict]]:
    for lineno, text in _lines(path, issues):
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            issues.add(path, lineno, "json", f"invalid JSON: {exc.msg} (column {exc.colno})")
            continue
        if not isinstance(obj, dict):
            issues.add(path, lineno, "json", f"expected a JSON object, got {_json_type(obj)}")
            continue
        yield lineno, obj


def _whole_json(path: Path, issues: _Issues) -> object:
    """A whole-file JSON document; decoding errors name their line. _MISSING when unreadable."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        issues.add(path, raw.count(b"\n", 0, exc.start) + 1, "encoding", "invalid UTF-8")
        return _MISSING
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        issues.add(path, exc.lineno, "json", f"invalid JSON: {exc.msg} (column {exc.colno})")
        return _MISSING


class _SeenQids:
    """Flags a (dataset, qid) that a file lists twice."""

    def __init__(self) -> None:
        self.first: dict[tuple[str, str], int | None] = {}

    def check(self, record: _Record, dataset: str, qid: str) -> None:
        key = (dataset, qid)
        if key in self.first:
            where = f"line {self.first[key]}" if self.first[key] is not None else "an earlier entry"
            record.fail("qid", f"duplicate qid {qid!r} in dataset {dataset!r} (first on {where})")
        else:
            self.first[key] = record.line


# ----------------------------------------------------------------------------- candidates / labels
def _candidate_list(record: _Record, obj: dict, dataset: str) -> CandidateList | None:
    qid = record.ident(obj.get("qid", _MISSING), "qid")
    query = record.text(obj.get("query", _MISSING), "query")
    passages = record.passages(obj.get("candidates", _MISSING), "candidates")
    qrels = record.grades(obj.get("qrels"), "qrels")
    excluded = record.ids(obj.get("excluded_ids"), "excluded_ids", required=False)
    own_dataset = record.text(obj.get("dataset"), "dataset", required=False)
    if record.bad:
        return None
    return CandidateList(Query(qid, query), passages, qrels, excluded or [], own_dataset or dataset)  # type: ignore[arg-type]


def _label(record: _Record, obj: dict, dataset: str, source: str | None, model: str | None) -> Label | None:
    cl = _candidate_list(record, obj, dataset)
    ranking = record.ids(obj.get("ranking", _MISSING), "ranking", required=True)
    relevant = record.ids(obj.get("relevant_docids"), "relevant_docids", required=False)
    reasoning = record.text(obj.get("reasoning"), "reasoning", required=False)
    own_model = record.text(obj.get("model"), "model", required=False)
    raw_output = record.text(obj.get("raw_output"), "raw_output", required=False)
    reasons = record.strings(obj.get("reasons"), "reasons")
    tokens_in = record.count(obj.get("tokens_in"), "tokens_in")
    tokens_out = record.count(obj.get("tokens_out"), "tokens_out")
    own_source = obj.get("source", source or "teacher")
    if own_source not in SOURCES:
        record.fail("source", f"must be one of {', '.join(SOURCES)}, got {own_source!r}")
    if ranking == []:
        record.fail("ranking", "must not be empty")
    elif cl is not None and ranking is not None:
        record.permutation(ranking, cl.docids, "ranking")
    if cl is not None and relevant:
        record.subset(relevant, cl.docids, "relevant_docids")
    if record.bad or cl is None or ranking is None:
        return None
    return Label(
        candidates=cl, ranking=ranking, source=own_source, reasoning=reasoning,
        model=own_model or model, relevant_docids=relevant, raw_output=raw_output,
        reasons=reasons, tokens_in=tokens_in, tokens_out=tokens_out,
    )


def _jsonl_records(path: Path, issues: _Issues, max_chars: int, dataset: str, build) -> list:
    """Validate every line of a candidate or label JSONL with `build(record, obj)`."""
    seen = _SeenQids()
    out = []
    for lineno, obj in _objects(path, issues):
        record = _Record(issues, path, lineno, max_chars)
        item = build(record, obj)
        if item is not None:
            cl = item.candidates if isinstance(item, Label) else item
            seen.check(record, cl.dataset or dataset, cl.query.qid)
            out.append(item)
    return out


def _rank_llm_lists(path: Path, issues: _Issues, max_chars: int, dataset: str) -> list[CandidateList]:
    """RankLLM retrieve-results JSON: `[{query, hits: [{content, qid, docid, rank, score}]}]`.
    Entries have no line of their own, so issues name the entry path (e.g. `[3].hits[2].docid`)."""
    data = _whole_json(path, issues)
    if data is _MISSING:
        return []
    if not isinstance(data, list):
        issues.add(path, 1, "json", f"expected a JSON list of {{query, hits}} objects, got {_json_type(data)}")
        return []
    seen = _SeenQids()
    lists = []
    for i, entry in enumerate(data):
        record = _Record(issues, path, None, max_chars)
        if not isinstance(entry, dict):
            record.fail(f"[{i}]", f"must be an object {{query, hits}}, got {_json_type(entry)}")
            continue
        query = record.text(entry.get("query", _MISSING), f"[{i}].query")
        hits = entry.get("hits", _MISSING)
        if not isinstance(hits, list) or not hits:
            record.fail(f"[{i}].hits", "must be a non-empty list of hits")
            continue
        passages = record.passages(hits, f"[{i}].hits", text_key="content")
        ranks: list[int] = []
        qids: set[str | None] = set()
        for j, hit in enumerate(hits):
            if isinstance(hit, dict):
                qids.add(record.ident(hit.get("qid", _MISSING), f"[{i}].hits[{j}].qid"))
                ranks.append(hit.get("rank", j + 1))
                if type(ranks[-1]) is not int:
                    record.fail(f"[{i}].hits[{j}].rank", f"must be an integer, got {_json_type(ranks[-1])}")
        if len(qids) > 1:
            record.fail(f"[{i}].hits", f"hits name {len(qids)} different qids")
        if record.bad:
            continue
        qid = qids.pop()
        seen.check(record, dataset, qid)  # type: ignore[arg-type]
        if not record.bad:
            by_rank = [passages[k] for k in sorted(range(len(passages)), key=ranks.__getitem__)]
            lists.append(CandidateList(Query(qid, query), by_rank, dataset=dataset))  # type: ignore[arg-type]
    return lists


def _candidate_file(path: Path, issues: _Issues, max_chars: int, dataset: str) -> list[CandidateList]:
    """Our candidate JSONL or RankLLM JSON, told apart by the first non-blank byte."""
    if _first_byte(path) == b"[":
        return _rank_llm_lists(path, issues, max_chars, dataset)
    return _jsonl_records(path, issues, max_chars, dataset, lambda r, o: _candidate_list(r, o, dataset))


def _first_byte(path: Path) -> bytes:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rb") as handle:
        head = handle.read(4096).lstrip(codecs.BOM_UTF8 + b" \t\r\n")
    return head[:1]


# ----------------------------------------------------------------------------- TREC formats
def _rows(path: Path, issues: _Issues, layout: str) -> Iterator[tuple[_Record, list[str]]]:
    """(record, columns) of each whitespace-separated line with as many columns as `layout`."""
    width = len(layout.split())
    for lineno, text in _lines(path, issues):
        record = _Record(issues, path, lineno, 0)
        cols = text.split()
        if len(cols) == width:
            yield record, cols
        else:
            record.fail("columns", f"expected {width} columns '{layout}', got {len(cols)}")


def _qrels(path: Path, issues: _Issues) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    first_line: dict[tuple[str, str], int] = {}
    for record, (qid, _, docid, grade_text) in _rows(path, issues, "qid iter docid grade"):
        try:
            grade = int(grade_text)
        except ValueError:
            record.fail("grade", f"grade {grade_text!r} is not an integer")
            continue
        previous = qrels.get(qid, {}).get(docid)
        if previous is not None and previous != grade:
            record.fail("docid", f"docid {docid!r} of qid {qid!r} is judged {previous} on line "
                                 f"{first_line[qid, docid]} and {grade} here")
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


def _run_labels(
    path: Path, lists: list[CandidateList], issues: _Issues, model: str | None, source: str, depth: int | None
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
            record.fail("docid", f"docid {docid!r} is ranked twice for qid {qid!r} (first on line {run.docid_line[docid]})")
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


# ----------------------------------------------------------------------------- ReasonRank release
def _map_files(root: Path, name: str) -> list[Path]:
    folder = root / name
    files = sorted(p for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else []
    files += [root / f"{name}{suffix}" for suffix in _MAP_SUFFIXES if (root / f"{name}{suffix}").is_file()]
    return [p for p in files if p.name.endswith(_MAP_SUFFIXES)]


def _text_map(root: Path, name: str, issues: _Issues, max_chars: int) -> dict[str, str]:
    """{id: text} from every file of one release map (see the module docstring)."""
    files = _map_files(root, name)
    if not files:
        issues.add(root, None, name, f"no {name}/ map found ({', '.join(_MAP_SUFFIXES)} files in {name}/ or {name}.*)")
    texts: dict[str, str] = {}
    origin: dict[str, str] = {}

    def put(record: _Record, key: object, value: object, id_field: str, text_field: str) -> None:
        ident = record.ident(key, id_field)
        text = record.text(value, text_field)
        if ident is None:
            return
        if text is None:  # reported; keep the id known so the rows using it add no follow-on issue
            text = ""
        where = f"{record.path.name}:{record.line}" if record.line else record.path.name
        if ident in texts and texts[ident] != text:
            record.fail(id_field, f"id {ident!r} already has a different text ({origin[ident]})")
        elif ident not in texts:
            texts[ident], origin[ident] = text, where

    for path in files:
        if path.name.endswith(".json"):
            data = _whole_json(path, issues)
            if data is not _MISSING and not isinstance(data, dict):
                issues.add(path, 1, "json", f"expected a JSON object {{id: text}}, got {_json_type(data)}")
            elif isinstance(data, dict):
                record = _Record(issues, path, None, max_chars)
                for key, value in data.items():
                    put(record, key, value, key, key)
        elif path.name.endswith(".tsv"):
            for lineno, text in _lines(path, issues):
                record = _Record(issues, path, lineno, max_chars)
                key, sep, value = text.rstrip("\r\n").partition("\t")
                if not sep:
                    record.fail("columns", "expected 'id<TAB>text'")
                    continue
                put(record, key, value, "id", "text")
        else:
            for lineno, obj in _objects(path, issues):
                record = _Record(issues, path, lineno, max_chars)
                id_key = next((k for k in _MAP_ID_KEYS if k in obj), _MAP_ID_KEYS[0])
                text_key = next((k for k in _MAP_TEXT_KEYS if k in obj), _MAP_TEXT_KEYS[0])
                put(record, obj.get(id_key, _MISSING), obj.get(text_key, _MISSING), id_key, text_key)
    return texts


def _release_labels(path: Path, issues: _Issues, max_chars: int, source: str, model: str | None) -> list[Label]:
    data_file = path if path.is_file() else path / RELEASE_FILE
    root = data_file.parent
    if not data_file.is_file():
        issues.add(path, None, RELEASE_FILE, f"a ReasonRank release directory needs {RELEASE_FILE}")
        return []
    queries = _text_map(root, "id_query", issues, max_chars)
    docs = _text_map(root, "id_doc", issues, max_chars)
    seen = _SeenQids()
    labels = []
    for lineno, obj in _objects(data_file, issues):
        record = _Record(issues, data_file, lineno, max_chars)
        dataset = record.text(obj.get("dataset", _MISSING), "dataset")
        qid = record.ident(obj.get("qid", _MISSING), "qid")
        initial = record.ids(obj.get("initial_list", _MISSING), "initial_list", required=True)
        final = record.ids(obj.get("final_list", _MISSING), "final_list", required=True)
        if "reasoning" not in obj:
            record.fail("reasoning", "missing field")
        reasoning = record.text(obj.get("reasoning"), "reasoning", required=False)
        relevant = record.ids(obj.get("relevant_docids", _MISSING), "relevant_docids", required=True)
        if qid is not None and qid not in queries:
            record.fail("qid", f"qid {qid!r} has no text in id_query")
        if initial is not None:
            if not initial:
                record.fail("initial_list", "must not be empty")
            for index, docid in enumerate(initial):
                if docid not in docs:
                    record.fail(f"initial_list[{index}]", f"docid {docid!r} has no text in id_doc")
            if final is not None:
                record.permutation(final, initial, "final_list")
            if relevant is not None:
                record.subset(relevant, initial, "relevant_docids")
        if dataset is not None and qid is not None:
            seen.check(record, dataset, qid)
        if record.bad:
            continue
        candidates = CandidateList(
            Query(qid, queries[qid]), [Passage(d, docs[d]) for d in initial], dataset=dataset  # type: ignore[index,arg-type,union-attr]
        )
        labels.append(Label(candidates=candidates, ranking=final, source=source, reasoning=reasoning,  # type: ignore[arg-type]
                            model=model or "DeepSeek-R1", relevant_docids=relevant))
    return labels


# ----------------------------------------------------------------------------- entry point
def _detect_kind(path: Path, candidates_path: object) -> str | None:
    """The kind a file most likely holds, from its name, its first records and the arguments."""
    if path.is_dir() or path.name == RELEASE_FILE:
        return "reasonrank"
    if candidates_path is not None:
        return "trec-run"
    first = _first_byte(path)
    if first == b"[":
        return "candidates"
    if first == b"{":
        for _, obj in _objects(path, _Issues(cap=0)):
            if "final_list" in obj or "initial_list" in obj:
                return "reasonrank"
            return "labels" if "ranking" in obj else "candidates"
        return "candidates"
    for _, text in _lines(path, _Issues(cap=0)):
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
    issues = _Issues()
    batch = ImportBatch([], [], {}, name, kind, [])
    if not path.exists():
        batch.issues = [ImportIssue(str(path), None, None, "file not found")]
        return batch
    try:
        batch.kind = kind if kind != "auto" else (_detect_kind(path, candidates_path) or "auto")
        _fill(batch, path, issues, max_field_chars, source, model, candidates_path, qrels_path, run_depth)
    except (OSError, EOFError) as exc:  # unreadable file, truncated gzip
        issues.add(path, None, None, f"cannot read: {exc}")
    batch.issues = issues.final(path)
    if batch.issues:
        batch.labels, batch.candidates, batch.qrels = [], [], {}
    return batch


def _fill(
    batch: ImportBatch, path: Path, issues: _Issues, max_chars: int, source: str | None,
    model: str | None, candidates_path: str | Path | None, qrels_path: str | Path | None,
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
            batch.qrels = _qrels(Path(qrels_path), issues)
        else:
            issues.add(qrels_path, None, None, "file not found")
    if kind == "qrels":
        batch.qrels = _qrels(path, issues)
    elif kind == "candidates":
        batch.candidates = _candidate_file(path, issues, max_chars, name)
    elif kind == "labels":
        batch.labels = _jsonl_records(
            path, issues, max_chars, name, lambda r, o: _label(r, o, name, source, model)
        )
    elif kind == "reasonrank":
        batch.labels = _release_labels(path, issues, max_chars, source or "teacher", model)
    else:
        if candidates_path is None or not Path(candidates_path).is_file():
            issues.add(path, None, "candidates_path", "a TREC run imports as model labels over a candidate "
                       f"file; candidate file {'not given' if candidates_path is None else 'not found'}")
            return
        lists = _candidate_file(Path(candidates_path), issues, max_chars, name)
        if qrels_path is not None:
            _attach(lists, batch.qrels)
        batch.labels = _run_labels(path, lists, issues, model, source or "model", run_depth)
    if qrels_path is not None and kind != "trec-run":
        _attach(batch.candidates + [label.candidates for label in batch.labels], batch.qrels)
    if not (batch.labels or batch.candidates or batch.qrels) and not len(issues):
        issues.add(path, None, None, "no records found")


def _attach(lists: list[CandidateList], qrels: dict[str, dict[str, int]]) -> None:
    for cl in lists:
        cl.qrels = qrels.get(cl.query.qid)
