"""Byte-level readers for imports: lines, JSONL objects and whole JSON documents.

Why not reasonrank.io: these readers never stop at the first problem; a bad line (encoding or
JSON) becomes an issue naming its line and the rest of the file is still read.
"""

from __future__ import annotations

import codecs
import gzip
import json
from collections.abc import Iterator
from pathlib import Path

from reasonrank.imports.issues import MISSING, IssueLog, json_type


def read_lines(path: Path, issues: IssueLog) -> Iterator[tuple[int, str]]:
    """(line number, text) of every non-blank line, each decoded as strict UTF-8 on its own so
    an encoding error names its line and the rest of the file is still checked."""
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rb") as handle:
        for lineno, raw in enumerate(handle, 1):
            if lineno == 1 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8) :]
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                issues.add(path, lineno, "encoding", f"invalid UTF-8 at byte {exc.start + 1} of the line")
                continue
            if text and not text.isspace():  # as `text.strip()`, without copying a long line
                yield lineno, text


def read_objects(path: Path, issues: IssueLog) -> Iterator[tuple[int, dict]]:
    for lineno, text in read_lines(path, issues):
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            issues.add(path, lineno, "json", f"invalid JSON: {exc.msg} (column {exc.colno})")
            continue
        if not isinstance(obj, dict):
            issues.add(path, lineno, "json", f"expected a JSON object, got {json_type(obj)}")
            continue
        yield lineno, obj


def read_whole_json(path: Path, issues: IssueLog) -> object:
    """A whole-file JSON document; decoding errors name their line. MISSING when unreadable."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        issues.add(path, raw.count(b"\n", 0, exc.start) + 1, "encoding", "invalid UTF-8")
        return MISSING
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        issues.add(path, exc.lineno, "json", f"invalid JSON: {exc.msg} (column {exc.colno})")
        return MISSING


def first_byte(path: Path) -> bytes:
    """The first non-blank byte after any BOM: `[` is a JSON list (RankLLM), `{` a JSONL object."""
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rb") as handle:
        head = handle.read(4096).lstrip(codecs.BOM_UTF8 + b" \t\r\n")
    return head[:1]
