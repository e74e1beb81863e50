"""Candidate and label records: our candidate/label JSONL (docs/architecture.md §2) and RankLLM's
retrieve-results JSON list, each validated record by record."""

from __future__ import annotations

from pathlib import Path

from reasonrank.imports.issues import MISSING, IssueLog, Record, SeenQids, json_type
from reasonrank.imports.readers import first_byte, read_objects, read_whole_json
from reasonrank.types import CandidateList, Label, Query

SOURCES = ("teacher", "model", "human")


def parse_candidate_list(record: Record, obj: dict, dataset: str) -> CandidateList | None:
    qid = record.ident(obj.get("qid", MISSING), "qid")
    query = record.text(obj.get("query", MISSING), "query")
    passages = record.passages(obj.get("candidates", MISSING), "candidates")
    qrels = record.grades(obj.get("qrels"), "qrels")
    excluded = record.ids(obj.get("excluded_ids"), "excluded_ids", required=False)
    own_dataset = record.text(obj.get("dataset"), "dataset", required=False)
    if record.bad:
        return None
    return CandidateList(Query(qid, query), passages, qrels, excluded or [], own_dataset or dataset)  # type: ignore[arg-type]


def parse_label(record: Record, obj: dict, dataset: str, source: str | None, model: str | None) -> Label | None:
    cl = parse_candidate_list(record, obj, dataset)
    ranking = record.ids(obj.get("ranking", MISSING), "ranking", required=True)
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
        candidates=cl,
        ranking=ranking,
        source=own_source,
        reasoning=reasoning,
        model=own_model or model,
        relevant_docids=relevant,
        raw_output=raw_output,
        reasons=reasons,
        tokens_in=tokens_in,
        tokens_out=tokens_out,
    )


def read_jsonl_records(path: Path, issues: IssueLog, max_chars: int, dataset: str, build) -> list:
    """Validate every line of a candidate or label JSONL with `build(record, obj)`."""
    seen = SeenQids()
    out = []
    texts: dict[str, str] = {}
    for lineno, obj in read_objects(path, issues):
        record = Record(issues, path, lineno, max_chars, texts)
        item = build(record, obj)
        if item is not None:
            cl = item.candidates if isinstance(item, Label) else item
            seen.check(record, cl.dataset or dataset, cl.query.qid)
            out.append(item)
    return out


def _rank_llm_lists(path: Path, issues: IssueLog, max_chars: int, dataset: str) -> list[CandidateList]:
    """RankLLM retrieve-results JSON: `[{query, hits: [{content, qid, docid, rank, score}]}]`.
    Entries have no line of their own, so issues name the entry path (e.g. `[3].hits[2].docid`)."""
    data = read_whole_json(path, issues)
    if data is MISSING:
        return []
    if not isinstance(data, list):
        issues.add(path, 1, "json", f"expected a JSON list of {{query, hits}} objects, got {json_type(data)}")
        return []
    seen = SeenQids()
    lists = []
    for i, entry in enumerate(data):
        record = Record(issues, path, None, max_chars)
        if not isinstance(entry, dict):
            record.fail(f"[{i}]", f"must be an object {{query, hits}}, got {json_type(entry)}")
            continue
        query = record.text(entry.get("query", MISSING), f"[{i}].query")
        hits = entry.get("hits", MISSING)
        if not isinstance(hits, list) or not hits:
            record.fail(f"[{i}].hits", "must be a non-empty list of hits")
            continue
        passages = record.passages(hits, f"[{i}].hits", text_key="content")
        ranks: list[int] = []
        qids: set[str | None] = set()
        for j, hit in enumerate(hits):
            if isinstance(hit, dict):
                qids.add(record.ident(hit.get("qid", MISSING), f"[{i}].hits[{j}].qid"))
                ranks.append(hit.get("rank", j + 1))
                if type(ranks[-1]) is not int:
                    record.fail(f"[{i}].hits[{j}].rank", f"must be an integer, got {json_type(ranks[-1])}")
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


def read_candidate_file(path: Path, issues: IssueLog, max_chars: int, dataset: str) -> list[CandidateList]:
    """Our candidate JSONL or RankLLM JSON, told apart by the first non-blank byte."""
    if first_byte(path) == b"[":
        return _rank_llm_lists(path, issues, max_chars, dataset)
    return read_jsonl_records(path, issues, max_chars, dataset, lambda r, o: parse_candidate_list(r, o, dataset))
