"""Read and write the on-disk formats users already have: TREC runs and qrels, our candidate
JSONL, RankLLM's retrieve-results JSON, passage corpora, label JSONL and calls.jsonl.

Every reader raises `InputError` naming the file, the line and the field, so the CLI can print a
one-line message instead of a traceback. The size, depth and number limits every reader applies
are in `reasonrank.bounded`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, fields
from pathlib import Path

from reasonrank.bounded import MAX_DOCUMENT_CHARS, bounded_lines, parse_json, read_bounded
from reasonrank.errors import InputError
from reasonrank.types import CandidateList, Label, Passage, Query, RankResult, WindowCall

MAX_GRADE = 1000  # relevance grades are small integers (TREC: 0-3); a bound keeps 10**400 out of the store


def open_text(path: str | Path):
    """A UTF-8 text handle on `path`, gunzipped when it ends in .gz; a missing file is an InputError."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    if path.suffix == ".gz":
        import gzip

        return gzip.open(path, "rt", encoding="utf-8")
    return path.open(encoding="utf-8")


# ----------------------------------------------------------------------------- TREC formats
def _whitespace_rows(path: str | Path) -> Iterator[tuple[int, list[str]]]:
    """(line number, whitespace-split cols) for every non-blank line of a TREC-style file."""
    with open_text(path) as handle:
        for lineno, line in bounded_lines(handle, str(path)):
            cols = line.split()
            if cols:
                yield lineno, cols


def read_trec_run(path: str | Path) -> dict[str, list[tuple[str, float]]]:
    """`qid Q0 docid rank score tag` → {qid: [(docid, score)]} in rank order.

    Lines without exactly six cols are skipped, as ReasonRank's loader does (BRIGHT
    stackoverflow docids can contain spaces).
    """
    rows: dict[str, list[tuple[int, str, float]]] = {}
    for lineno, cols in _whitespace_rows(path):
        if len(cols) != 6:
            continue
        qid, _, docid, rank, score, _ = cols
        try:
            rows.setdefault(qid, []).append((int(rank), docid, float(score)))
        except ValueError as exc:
            raise InputError(f"{path}:{lineno}: rank/score not numeric ({exc})") from None
    return {qid: [(docid, score) for _, docid, score in sorted(hits, key=lambda h: h[0])] for qid, hits in rows.items()}


def read_qrels(path: str | Path) -> dict[str, dict[str, int]]:
    """`qid iter docid grade` (whitespace separated) → {qid: {docid: grade}}."""
    qrels: dict[str, dict[str, int]] = {}
    for lineno, cols in _whitespace_rows(path):
        if len(cols) != 4:
            raise InputError(f"{path}:{lineno}: expected 'qid iter docid grade', got {len(cols)} cols")
        qid, _, docid, grade = cols
        if not (grade.lstrip("-").isdigit() and len(grade) <= 5 and abs(int(grade)) <= MAX_GRADE):
            raise InputError(f"{path}:{lineno}: grade {grade[:40]!r} is not an integer in -{MAX_GRADE}..{MAX_GRADE}")
        qrels.setdefault(qid, {})[docid] = int(grade)
    return qrels


def write_trec_run(results: Iterable[RankResult], path: str | Path, tag: str = "reasonrank") -> None:
    """Write reranked lists with descending scores (rank r gets score n - r + 1)."""
    with Path(path).open("w", encoding="utf-8") as handle:
        for result in results:
            n = len(result.ranking)
            for rank, docid in enumerate(result.ranking, 1):
                handle.write(f"{result.qid} Q0 {docid} {rank} {n - rank + 1} {tag}\n")


def read_queries_tsv(path: str | Path) -> dict[str, str]:
    """`qid<TAB>query` → {qid: query}."""
    return dict(_read_key_tab_text(path, "qid<TAB>query"))


def _read_key_tab_text(path: str | Path, expected: str) -> Iterator[tuple[str, str]]:
    """(key, text) per non-empty `key<TAB>text` line; the text may itself contain tabs."""
    with open_text(path) as handle:
        for lineno, line in bounded_lines(handle, str(path)):
            line = line.rstrip("\n")
            if not line:
                continue
            key, sep, text = line.partition("\t")
            if not sep:
                raise InputError(f"{path}:{lineno}: expected '{expected}'")
            yield key, text


# ----------------------------------------------------------------------------- candidate JSONL
def candidate_from_dict(obj: dict, where: str = "") -> CandidateList:
    """Build a CandidateList from the candidate-JSONL contract (docs/architecture.md §2.1)."""
    prefix = f"{where}: " if where else ""
    for key in ("qid", "query", "candidates"):
        if key not in obj:
            raise InputError(f"{prefix}missing field {key!r}")
    if not isinstance(obj["candidates"], list):
        raise InputError(f"{prefix}field 'candidates' must be a list")
    qid = _run_id(obj["qid"], f"{prefix}field 'qid'")
    passages = []
    seen: set[str] = set()
    for i, cand in enumerate(obj["candidates"]):
        if not isinstance(cand, dict) or "docid" not in cand or "text" not in cand:
            raise InputError(f"{prefix}candidates[{i}] needs 'docid' and 'text'")
        docid = _run_id(cand["docid"], f"{prefix}candidates[{i}].docid")
        if docid in seen:
            raise InputError(f"{prefix}candidates[{i}].docid: {docid!r} appears twice in this list")
        seen.add(docid)
        passages.append(Passage(docid, str(cand["text"]), cand.get("title") or None))
    qrels = obj.get("qrels")
    return CandidateList(
        query=Query(qid, str(obj["query"])),
        candidates=passages,
        qrels=_grades(qrels, prefix) if qrels else None,
        excluded_ids=[str(x) for x in obj.get("excluded_ids") or []],
        dataset=obj.get("dataset"),
    )


def _run_id(value: object, where: str) -> str:
    """A qid or docid as a TREC run file can hold it: non-empty, no whitespace."""
    text = str(value)
    if not text or any(c.isspace() for c in text):
        raise InputError(f"{where}: {text[:40]!r} must be non-empty and without spaces, tabs or newlines")
    return text


def _grades(qrels: object, prefix: str) -> dict[str, int]:
    if not isinstance(qrels, dict):
        raise InputError(f"{prefix}field 'qrels' must be an object of docid: grade")
    grades = {}
    for docid, grade in qrels.items():
        if type(grade) is not int or abs(grade) > MAX_GRADE:
            raise InputError(
                f"{prefix}qrels[{docid!r}]: grade {str(grade)[:40]} is not an integer in -{MAX_GRADE}..{MAX_GRADE}"
            )
        grades[str(docid)] = grade
    return grades


def candidate_to_dict(cl: CandidateList) -> dict:
    obj: dict = {
        "qid": cl.query.qid,
        "query": cl.query.text,
        "candidates": [
            {"docid": p.docid, "text": p.text, **({"title": p.title} if p.title else {})} for p in cl.candidates
        ],
    }
    if cl.qrels is not None:
        obj["qrels"] = cl.qrels
    if cl.excluded_ids:
        obj["excluded_ids"] = cl.excluded_ids
    if cl.dataset:
        obj["dataset"] = cl.dataset
    return obj


def iter_jsonl(path: str | Path) -> Iterator[tuple[int, dict]]:
    """Yield (line number, object) for each non-empty line; bad JSON names the line."""
    with open_text(path) as handle:
        for lineno, line in bounded_lines(handle, str(path)):
            if not line.strip():
                continue
            obj = parse_json(line, f"{path}:{lineno}")
            if not isinstance(obj, dict):
                raise InputError(f"{path}:{lineno}: expected a JSON object")
            yield lineno, obj


def read_candidates_jsonl(path: str | Path) -> list[CandidateList]:
    lists: list[CandidateList] = []
    first: dict[str, int] = {}
    for lineno, obj in iter_jsonl(path):
        cl = candidate_from_dict(obj, f"{path}:{lineno}")
        if cl.query.qid in first:
            raise InputError(f"{path}:{lineno}: field 'qid': {cl.query.qid!r} is already on line {first[cl.query.qid]}")
        first[cl.query.qid] = lineno
        lists.append(cl)
    return lists


def write_candidates_jsonl(lists: Iterable[CandidateList], path: str | Path) -> None:
    write_jsonl((candidate_to_dict(cl) for cl in lists), path)


# ----------------------------------------------------------------------------- RankLLM JSON
def read_rank_llm_json(
    path: str | Path, qrels: dict[str, dict[str, int]] | None = None, dataset: str | None = None
) -> list[CandidateList]:
    """RankLLM's retrieve-results file: `[{query, hits: [{content, qid, docid, rank, score}]}]`."""
    with open_text(path) as handle:
        data = parse_json(read_bounded(handle, MAX_DOCUMENT_CHARS, str(path)), str(path), MAX_DOCUMENT_CHARS)
    if not isinstance(data, list):
        raise InputError(f"{path}: expected a JSON list of {{query, hits}} objects")
    lists = []
    for i, entry in enumerate(data):
        hits = entry.get("hits") if isinstance(entry, dict) else None
        if not hits:
            raise InputError(f"{path}: entry {i} has no 'hits'")
        qid = str(hits[0]["qid"])
        ordered = sorted(hits, key=lambda h: h.get("rank", 0))
        passages = [Passage(str(h["docid"]), str(h["content"])) for h in ordered]
        lists.append(
            CandidateList(
                query=Query(qid, str(entry["query"])),
                candidates=passages,
                qrels=(qrels or {}).get(qid) if qrels is not None else None,
                dataset=dataset,
            )
        )
    return lists


def read_candidate_file(
    path: str | Path, qrels: dict[str, dict[str, int]] | None = None, dataset: str | None = None
) -> list[CandidateList]:
    """Read our candidate JSONL or a RankLLM retrieve-results JSON, told apart by the first byte.

    Users hold both formats; making them name the format would only add a way to get it wrong.
    `qrels`, when given, replace any judgments stored in the file; `dataset` fills empty names.
    """
    with open_text(path) as handle:
        head = handle.read(4096).lstrip()
    if head.startswith("["):
        lists = read_rank_llm_json(path, qrels=qrels, dataset=dataset)
    else:
        lists = read_candidates_jsonl(path)
        for cl in lists:
            if qrels is not None:
                cl.qrels = qrels.get(cl.query.qid)
            cl.dataset = cl.dataset or dataset
    if not lists:
        raise InputError(f"{path}: no candidate lists in file")
    return lists


# ----------------------------------------------------------------------------- corpora
_DOCID_KEYS = ("docid", "id", "_id")
_TEXT_KEYS = ("text", "content", "contents", "body", "segment", "passage")


def read_corpus(path: str | Path) -> dict[str, Passage]:
    """A passage collection → {docid: Passage}.

    Accepts `docid<TAB>text` TSV (MS MARCO, NovelEval) and JSONL with an id field
    (docid/id/_id), a text field (text/content/contents/body/segment/passage; BEIR, BRIGHT,
    Pyserini) and an optional title, plain or gzipped.
    """
    name = Path(path).name.removesuffix(".gz")
    if name.endswith(".tsv"):
        return _read_corpus_tsv(path)
    corpus: dict[str, Passage] = {}
    for lineno, obj in iter_jsonl(path):
        docid = next((obj[k] for k in _DOCID_KEYS if k in obj), None)
        text = next((obj[k] for k in _TEXT_KEYS if k in obj), None)
        if docid is None or text is None:
            raise InputError(
                f"{path}:{lineno}: a document needs an id ({'/'.join(_DOCID_KEYS)}) and a text ({'/'.join(_TEXT_KEYS)})"
            )
        corpus[str(docid)] = Passage(str(docid), str(text), obj.get("title") or None)
    return corpus


def _read_corpus_tsv(path: str | Path) -> dict[str, Passage]:
    return {docid: Passage(docid, text) for docid, text in _read_key_tab_text(path, "docid<TAB>text")}


# ----------------------------------------------------------------------------- label JSONL
# Optional label fields and the value a file may leave out (the Label defaults).
_OPTIONAL_LABEL_FIELDS = {
    "source": "teacher",
    "reasoning": None,
    "model": None,
    "relevant_docids": None,
    "raw_output": None,
    "reasons": [],
    "tokens_in": 0,
    "tokens_out": 0,
}


def label_from_dict(obj: dict, where: str = "") -> Label:
    """A Label from one label-JSONL object; stops at the first problem.

    reasonrank.imports validates whole files and reports every problem; this reader is for
    files our own code wrote.
    """
    prefix = f"{where}: " if where else ""
    cl = candidate_from_dict(obj, where)
    ranking = obj.get("ranking")
    if not isinstance(ranking, list) or not ranking:
        raise InputError(f"{prefix}field 'ranking' must be a non-empty list of docids")
    ranking = [str(d) for d in ranking]
    known = set(cl.docids)
    unknown = [d for d in ranking if d not in known]
    if unknown:
        raise InputError(f"{prefix}ranking names docid {unknown[0]!r} that is not a candidate")
    if len(set(ranking)) != len(ranking):
        raise InputError(f"{prefix}ranking repeats a docid")
    relevant = obj.get("relevant_docids")
    return Label(
        candidates=cl,
        ranking=ranking,
        source=str(obj.get("source") or "teacher"),
        reasoning=obj.get("reasoning"),
        model=obj.get("model"),
        relevant_docids=[str(d) for d in relevant] if relevant is not None else None,
        raw_output=obj.get("raw_output"),
        reasons=[str(r) for r in obj.get("reasons") or []],
        tokens_in=int(obj.get("tokens_in") or 0),
        tokens_out=int(obj.get("tokens_out") or 0),
    )


def label_to_dict(label: Label) -> dict:
    """Candidate fields + ranking, plus every optional field that differs from its default."""
    obj = candidate_to_dict(label.candidates)
    obj["ranking"] = label.ranking
    for key, default in _OPTIONAL_LABEL_FIELDS.items():
        value = getattr(label, key)
        if value != default:
            obj[key] = value
    return obj


def read_labels_jsonl(path: str | Path) -> list[Label]:
    return [label_from_dict(obj, f"{path}:{lineno}") for lineno, obj in iter_jsonl(path)]


def write_labels_jsonl(labels: Iterable[Label], path: str | Path) -> None:
    write_jsonl((label_to_dict(label) for label in labels), path)


# ----------------------------------------------------------------------------- calls.jsonl
def call_to_dict(call: WindowCall) -> dict:
    return asdict(call)


def call_from_dict(obj: dict, where: str = "") -> WindowCall:
    """Rebuild a WindowCall; unknown or missing fields name the line (the file may be hand-edited)."""
    prefix = f"{where}: " if where else ""
    known = {f.name for f in fields(WindowCall)}
    extra = sorted(set(obj) - known)
    if extra:
        raise InputError(f"{prefix}unknown WindowCall field {extra[0]!r}")
    try:
        return WindowCall(**obj)
    except TypeError as exc:
        raise InputError(f"{prefix}{exc}") from None


def write_calls_jsonl(results: Iterable[RankResult], path: str | Path) -> None:
    """Every WindowCall of every result, one JSON object a line, in call order per query."""
    write_jsonl((call_to_dict(call) for result in results for call in result.calls), path)


def read_calls_jsonl(path: str | Path) -> list[WindowCall]:
    return [call_from_dict(obj, f"{path}:{lineno}") for lineno, obj in iter_jsonl(path)]


def write_jsonl(objects: Iterable[dict], path: str | Path) -> None:
    """One JSON object per line, written under a temporary name and then renamed: a reader (or a
    crash half-way) never leaves half a file at `path`."""
    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    with partial.open("w", encoding="utf-8") as handle:
        for obj in objects:
            handle.write(json.dumps(obj, ensure_ascii=False) + "\n")
    partial.replace(path)
