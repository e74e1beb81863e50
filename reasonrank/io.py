"""Read and write the on-disk formats users already have: TREC runs and qrels, our candidate
JSONL, and RankLLM's retrieve-results JSON.

Every reader raises `InputError` naming the file, the line and the field, so the CLI can print a
one-line message instead of a traceback.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path

from reasonrank.types import CandidateList, Passage, Query, RankResult


class InputError(ValueError):
    """Malformed or missing input; the message says which file, line and field."""


def _open_text(path: str | Path):
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    if path.suffix == ".gz":
        import gzip

        return gzip.open(path, "rt", encoding="utf-8")
    return path.open(encoding="utf-8")


# ----------------------------------------------------------------------------- TREC formats
def read_trec_run(path: str | Path) -> dict[str, list[tuple[str, float]]]:
    """`qid Q0 docid rank score tag` → {qid: [(docid, score)]} in rank order.

    Lines without exactly six fields are skipped, as ReasonRank's loader does (BRIGHT
    stackoverflow docids can contain spaces).
    """
    rows: dict[str, list[tuple[int, str, float]]] = {}
    with _open_text(path) as handle:
        for lineno, line in enumerate(handle, 1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 6:
                continue
            qid, _, docid, rank, score, _ = fields
            try:
                rows.setdefault(qid, []).append((int(rank), docid, float(score)))
            except ValueError as exc:
                raise InputError(f"{path}:{lineno}: rank/score not numeric ({exc})") from None
    return {
        qid: [(docid, score) for _, docid, score in sorted(hits, key=lambda h: h[0])]
        for qid, hits in rows.items()
    }


def read_qrels(path: str | Path) -> dict[str, dict[str, int]]:
    """`qid iter docid grade` (whitespace separated) → {qid: {docid: grade}}."""
    qrels: dict[str, dict[str, int]] = {}
    with _open_text(path) as handle:
        for lineno, line in enumerate(handle, 1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 4:
                raise InputError(f"{path}:{lineno}: expected 'qid iter docid grade', got {len(fields)} fields")
            qid, _, docid, grade = fields
            try:
                qrels.setdefault(qid, {})[docid] = int(grade)
            except ValueError:
                raise InputError(f"{path}:{lineno}: grade {grade!r} is not an integer") from None
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
    queries: dict[str, str] = {}
    with _open_text(path) as handle:
        for lineno, line in enumerate(handle, 1):
            line = line.rstrip("\n")
            if not line:
                continue
            qid, sep, text = line.partition("\t")
            if not sep:
                raise InputError(f"{path}:{lineno}: expected 'qid<TAB>query'")
            queries[qid] = text
    return queries


# ----------------------------------------------------------------------------- candidate JSONL
def candidate_from_dict(obj: dict, where: str = "") -> CandidateList:
    """Build a CandidateList from the candidate-JSONL contract (see DESIGN.md)."""
    prefix = f"{where}: " if where else ""
    for key in ("qid", "query", "candidates"):
        if key not in obj:
            raise InputError(f"{prefix}missing field {key!r}")
    if not isinstance(obj["candidates"], list):
        raise InputError(f"{prefix}field 'candidates' must be a list")
    passages = []
    for i, cand in enumerate(obj["candidates"]):
        if not isinstance(cand, dict) or "docid" not in cand or "text" not in cand:
            raise InputError(f"{prefix}candidates[{i}] needs 'docid' and 'text'")
        passages.append(Passage(str(cand["docid"]), str(cand["text"]), cand.get("title") or None))
    qrels = obj.get("qrels")
    return CandidateList(
        query=Query(str(obj["qid"]), str(obj["query"])),
        candidates=passages,
        qrels={str(k): int(v) for k, v in qrels.items()} if qrels else None,
        excluded_ids=[str(x) for x in obj.get("excluded_ids") or []],
        dataset=obj.get("dataset"),
    )


def candidate_to_dict(cl: CandidateList) -> dict:
    obj: dict = {
        "qid": cl.query.qid,
        "query": cl.query.text,
        "candidates": [
            {"docid": p.docid, "text": p.text, **({"title": p.title} if p.title else {})}
            for p in cl.candidates
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
    with _open_text(path) as handle:
        for lineno, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{path}:{lineno}: invalid JSON ({exc.msg})") from None
            if not isinstance(obj, dict):
                raise InputError(f"{path}:{lineno}: expected a JSON object")
            yield lineno, obj


def read_candidates_jsonl(path: str | Path) -> list[CandidateList]:
    return [candidate_from_dict(obj, f"{path}:{lineno}") for lineno, obj in iter_jsonl(path)]


def write_candidates_jsonl(lists: Iterable[CandidateList], path: str | Path) -> None:
    with Path(path).open("w", encoding="utf-8") as handle:
        for cl in lists:
            handle.write(json.dumps(candidate_to_dict(cl), ensure_ascii=False) + "\n")


# ----------------------------------------------------------------------------- RankLLM JSON
def read_rank_llm_json(
    path: str | Path, qrels: dict[str, dict[str, int]] | None = None, dataset: str | None = None
) -> list[CandidateList]:
    """RankLLM's retrieve-results file: `[{query, hits: [{content, qid, docid, rank, score}]}]`."""
    with _open_text(path) as handle:
        try:
            data = json.load(handle)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}: invalid JSON ({exc.msg} at line {exc.lineno})") from None
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
