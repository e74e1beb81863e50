"""Byte-level readers for imports: lines, JSONL objects and whole JSON documents.

Why not reasonrank.io: these readers never stop at the first problem; a bad line (encoding or
JSON) becomes an issue naming its line and the rest of the file is still read.
"""

from __future__ import annotations

import codecs
import gzip
import re
from collections.abc import Iterator
from pathlib import Path

from reasonrank.bounded import MAX_DOCUMENT_CHARS, MAX_LINE_CHARS, json_value
from reasonrank.imports.issues import MISSING, IssueLog, json_type


def read_lines(path: Path, issues: IssueLog) -> Iterator[tuple[int, str]]:
    """(line number, text) of every non-blank line, each decoded as strict UTF-8 on its own so
    an encoding error names its line and the rest of the file is still checked."""
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rb") as handle:
        for lineno, raw in enumerate(iter(lambda: handle.readline(MAX_LINE_CHARS + 1), b""), 1):
            if len(raw) > MAX_LINE_CHARS and not raw.endswith(b"\n"):
                issues.add(
                    path, lineno, "size", f"line longer than {MAX_LINE_CHARS:,} bytes; the file was not read further"
                )
                return
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
            obj = json_value(text)
        except ValueError as exc:
            issues.add(path, lineno, "json", str(exc))
            continue
        if not isinstance(obj, dict):
            issues.add(path, lineno, "json", f"expected a JSON object, got {json_type(obj)}")
            continue
        yield lineno, obj


def read_whole_json(path: Path, issues: IssueLog) -> object:
    """A whole-file JSON document; decoding errors name their line. MISSING when unreadable."""
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rb") as handle:
        raw = handle.read(MAX_DOCUMENT_CHARS + 1)
    if len(raw) > MAX_DOCUMENT_CHARS:
        issues.add(path, 1, "size", f"more than {MAX_DOCUMENT_CHARS:,} bytes; not read")
        return MISSING
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        issues.add(path, raw.count(b"\n", 0, exc.start) + 1, "encoding", "invalid UTF-8")
        return MISSING
    try:
        return json_value(text, MAX_DOCUMENT_CHARS)
    except ValueError as exc:
        issues.add(path, _line_of(str(exc)), "json", str(exc))
        return MISSING


def _line_of(message: str) -> int:
    """The line a json_value message names ("… (line N column M)"), else 1."""
    found = re.search(r"\(line (\d+) column \d+\)", message)
    return int(found.group(1)) if found else 1


def first_byte(path: Path) -> bytes:
    """The first non-blank byte after any BOM: `[` is a JSON list (RankLLM), `{` a JSONL object."""
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rb") as handle:
        head = handle.read(4096).lstrip(codecs.BOM_UTF8 + b" \t\r\n")
    return head[:1]
