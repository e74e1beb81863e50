"""Issue collection and per-field checks shared by every import kind.

Why a shared checker: each kind reads different records, but a bad id, an empty text or a
ranking that is not a permutation must be worded the same everywhere, with its line and field,
so a reviewer can fix a whole file in one pass. Checks never raise; they record an issue and
mark the record bad.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from reasonrank.io import MAX_GRADE
from reasonrank.types import Passage

MAX_ISSUES = 200
MISSING = object()  # a field absent from its object (JSON null is None)


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


class IssueLog:
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


def _all_strings(values: list) -> bool:
    """Every element is exactly a str (not a subclass), checked without a Python-level loop."""
    return not values or set(map(type, values)) == {str}


def _all_dicts(values: list) -> bool:
    return set(map(type, values)) == {dict}


def json_type(value: object) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "list", dict: "object"}.get(
        type(value), type(value).__name__
    )


class Record:
    """Field checks for one record (a line, or an entry of a JSON file); each failed check adds
    one issue naming the field and marks the record bad. Checks return the clean value or None."""

    def __init__(
        self, issues: IssueLog, path: Path, line: int | None, max_chars: int, texts: dict[str, str] | None = None
    ) -> None:
        self.issues = issues
        self.path = path
        self.line = line
        self.max_chars = max_chars
        self.failed: set[str] = set()
        # Passage texts shared by the records of one file: equal texts become one string, so
        # a corpus quoted by 100k lists is held once, not once per list (gigabytes at that size).
        self.texts = texts

    @property
    def bad(self) -> bool:
        return bool(self.failed)

    def fail(self, field: str, message: str) -> None:
        self.issues.add(self.path, self.line, field, message)
        self.failed.add(field)

    def _absent(self, value: object, field: str, expected: str, required: bool) -> None:
        if value is MISSING:
            if required:
                self.fail(field, "missing field")
        elif value is not None or required:
            self.fail(field, f"must be {expected}, got {json_type(value)}")

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
        if value is MISSING or value is None:
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
        if value and _all_strings(value) and all(map(str.strip, value)) and max(map(len, value)) <= self.max_chars:
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
        if value is MISSING or value is None:
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
            if type(grade) is not int or abs(grade) > MAX_GRADE:
                shown = f"{json_type(grade)} {str(grade)[:40]}"
                self.fail(f"{field}.{docid}", f"grade must be an integer in -{MAX_GRADE}..{MAX_GRADE}, got {shown}")
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
        clean = self._clean_passages(value, text_key)
        if clean is not None:
            return clean
        passages: list[Passage] = []
        first: dict[str, int] = {}
        limit = self.max_chars
        for index, cand in enumerate(value):
            if type(cand) is dict:  # fast path: a well-formed candidate with string fields
                docid, text, title = cand.get("docid"), cand.get(text_key), cand.get("title")
                if (
                    type(docid) is str
                    and type(text) is str
                    and docid not in first
                    and len(docid) <= limit
                    and len(text) <= limit
                    and docid.strip()
                    and text.strip()
                    and (title is None or (type(title) is str and len(title) <= limit))
                ):
                    first[docid] = index
                    passages.append(Passage(docid, text, title or None))
                    continue
            where = f"{field}[{index}]"
            if not isinstance(cand, dict):
                self.fail(where, f"must be an object {{docid, text}}, got {json_type(cand)}")
                continue
            docid = self.ident(cand.get("docid", MISSING), f"{where}.docid")
            text = self.text(cand.get(text_key, MISSING), f"{where}.{text_key}")
            title = self.text(cand.get("title"), f"{where}.title", required=False)
            if docid is None or text is None:
                continue
            if docid in first:
                self.fail(f"{where}.docid", f"duplicate docid {docid!r} (also {field}[{first[docid]}])")
                continue
            first[docid] = index
            passages.append(Passage(docid, text, title or None))
        return passages

    def _clean_passages(self, value: list, text_key: str) -> list[Passage] | None:
        """The passages of a list that passes every check, each tested column-wise in C loops
        (map, set, max) instead of field by field; None sends any other list to the slow path,
        which then names each problem."""
        if not _all_dicts(value):
            return None
        docids = [cand.get("docid") for cand in value]
        texts = [cand.get(text_key) for cand in value]
        titles = [cand.get("title") for cand in value]
        limit = self.max_chars
        if not (
            _all_strings(docids)
            and _all_strings(texts)
            and len(set(docids)) == len(docids)
            and max(map(len, docids)) <= limit
            and max(map(len, texts)) <= limit
            and all(map(str.strip, docids))
            and all(map(str.strip, texts))
        ):
            return None
        if self.texts is not None:
            texts = list(map(self.texts.setdefault, texts, texts))
        if titles.count(None) == len(titles):
            return list(map(Passage, docids, texts, titles))
        if not all(title is None or (type(title) is str and len(title) <= limit) for title in titles):
            return None
        return [Passage(docid, text, title or None) for docid, text, title in zip(docids, texts, titles)]

    def permutation(self, ranking: list[str], candidates: list[str], field: str) -> None:
        """`ranking` (already free of repeats) must order exactly the candidates. Missing
        candidates are reported only when no element of the ranking was wrong: a wrong or
        repeated element already explains the gap."""
        known = set(candidates)
        if len(ranking) == len(known) and known.issuperset(ranking):
            return  # distinct, as many as the candidates and all among them: a permutation
        self.subset(ranking, candidates, field)
        ranked = set(ranking)
        missing = [docid for docid in candidates if docid not in ranked]
        if missing and not any(name.startswith(f"{field}[") for name in self.failed):
            shown = ", ".join(repr(d) for d in missing[:3]) + (" …" if len(missing) > 3 else "")
            self.fail(
                field, f"is not a permutation of the {len(candidates)} candidates: misses {len(missing)} ({shown})"
            )

    def subset(self, docids: list[str], candidates: list[str], field: str) -> None:
        known = set(candidates)
        if known.issuperset(docids):
            return
        for index, docid in enumerate(docids):
            if docid not in known:
                self.fail(f"{field}[{index}]", f"docid {docid!r} is not a candidate")


class SeenQids:
    """Flags a (dataset, qid) that a file lists twice."""

    def __init__(self) -> None:
        self.first: dict[tuple[str, str], int | None] = {}

    def check(self, record: Record, dataset: str, qid: str) -> None:
        key = (dataset, qid)
        if key in self.first:
            where = f"line {self.first[key]}" if self.first[key] is not None else "an earlier entry"
            record.fail("qid", f"duplicate qid {qid!r} in dataset {dataset!r} (first on {where})")
        else:
            self.first[key] = record.line
