"""The ReasonRank release layout: `training_data_all.jsonl` plus the `id_query` and `id_doc` text
maps, read as teacher labels (the accepted map shapes are in the package docstring)."""

from __future__ import annotations

from pathlib import Path

from reasonrank.imports.issues import MISSING, IssueLog, Record, SeenQids, json_type
from reasonrank.imports.readers import read_lines, read_objects, read_whole_json
from reasonrank.types import CandidateList, Label, Passage, Query

RELEASE_FILE = "training_data_all.jsonl"
_MAP_ID_KEYS = ("id", "qid", "docid", "_id")
_MAP_TEXT_KEYS = ("text", "query", "contents", "content")
_MAP_SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".tsv")


def _map_files(root: Path, name: str) -> list[Path]:
    folder = root / name
    files = sorted(p for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else []
    files += [root / f"{name}{suffix}" for suffix in _MAP_SUFFIXES if (root / f"{name}{suffix}").is_file()]
    return [p for p in files if p.name.endswith(_MAP_SUFFIXES)]


def _text_map(root: Path, name: str, issues: IssueLog, max_chars: int) -> dict[str, str]:
    """{id: text} from every file of one release map (see the package docstring)."""
    files = _map_files(root, name)
    if not files:
        issues.add(root, None, name, f"no {name}/ map found ({', '.join(_MAP_SUFFIXES)} files in {name}/ or {name}.*)")
    texts: dict[str, str] = {}
    origin: dict[str, str] = {}

    def put(record: Record, key: object, value: object, id_field: str, text_field: str) -> None:
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
            data = read_whole_json(path, issues)
            if data is not MISSING and not isinstance(data, dict):
                issues.add(path, 1, "json", f"expected a JSON object {{id: text}}, got {json_type(data)}")
            elif isinstance(data, dict):
                record = Record(issues, path, None, max_chars)
                for key, value in data.items():
                    put(record, key, value, key, key)
        elif path.name.endswith(".tsv"):
            for lineno, text in read_lines(path, issues):
                record = Record(issues, path, lineno, max_chars)
                key, sep, value = text.rstrip("\r\n").partition("\t")
                if not sep:
                    record.fail("columns", "expected 'id<TAB>text'")
                    continue
                put(record, key, value, "id", "text")
        else:
            for lineno, obj in read_objects(path, issues):
                record = Record(issues, path, lineno, max_chars)
                id_key = next((k for k in _MAP_ID_KEYS if k in obj), _MAP_ID_KEYS[0])
                text_key = next((k for k in _MAP_TEXT_KEYS if k in obj), _MAP_TEXT_KEYS[0])
                put(record, obj.get(id_key, MISSING), obj.get(text_key, MISSING), id_key, text_key)
    return texts


def read_release_labels(path: Path, issues: IssueLog, max_chars: int, source: str, model: str | None) -> list[Label]:
    data_file = path if path.is_file() else path / RELEASE_FILE
    root = data_file.parent
    if not data_file.is_file():
        issues.add(path, None, RELEASE_FILE, f"a ReasonRank release directory needs {RELEASE_FILE}")
        return []
    queries = _text_map(root, "id_query", issues, max_chars)
    docs = _text_map(root, "id_doc", issues, max_chars)
    seen = SeenQids()
    labels = []
    for lineno, obj in read_objects(data_file, issues):
        record = Record(issues, data_file, lineno, max_chars)
        dataset = record.text(obj.get("dataset", MISSING), "dataset")
        qid = record.ident(obj.get("qid", MISSING), "qid")
        initial = record.ids(obj.get("initial_list", MISSING), "initial_list", required=True)
        final = record.ids(obj.get("final_list", MISSING), "final_list", required=True)
        if "reasoning" not in obj:
            record.fail("reasoning", "missing field")
        reasoning = record.text(obj.get("reasoning"), "reasoning", required=False)
        relevant = record.ids(obj.get("relevant_docids", MISSING), "relevant_docids", required=True)
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
            Query(qid, queries[qid]),
            [Passage(d, docs[d]) for d in initial],
            dataset=dataset,  # type: ignore[index,arg-type,union-attr]
        )
        labels.append(
            Label(
                candidates=candidates,
                ranking=final,
                source=source,
                reasoning=reasoning,  # type: ignore[arg-type]
                model=model or "DeepSeek-R1",
                relevant_docids=relevant,
            )
        )
    return labels
