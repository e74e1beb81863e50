"""Bounded parsing of untrusted text: JSON and YAML with size caps, a nesting limit, finite
64-bit numbers and no YAML anchors or aliases, and text read in capped lines or blocks.

Every check runs before (or while) the parser sees the text, so no input can take the process's
memory or stack; a refusal is one `InputError` (or, from `json_value`, a ValueError) that says
which limit the text broke.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from typing import IO, Any

from reasonrank.errors import InputError

#: Bounds every JSON/YAML reader checks before parsing, so no input can take the process's memory
#: or stack: a JSONL line (a candidate list of 100 long passages is well under 1 MB), a whole JSON
#: document (RankLLM retrieve results), a YAML config, and nesting (our formats nest < 8 deep).
MAX_LINE_CHARS = 32 * 2**20
MAX_DOCUMENT_CHARS = 512 * 2**20
MAX_YAML_CHARS = 2**20
MAX_DEPTH = 64
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')  # unrolled: no backtracking per character
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")  # any surrogate at all: rare, and a cheap scan
# \uD800-\uDBFF not followed by \uDC00-\uDFFF, or the latter not preceded by the former
_LONE_SURROGATE = re.compile(
    r"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})"
    r"|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2}"
)


def nesting_depth(text: str) -> int:
    """How deep JSON `text` nests lists and objects (brackets inside strings do not count)."""
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    depth = deepest = 0
    for char in brackets:
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def parse_json(text: str, where: str, max_chars: int = MAX_LINE_CHARS, max_depth: int = MAX_DEPTH) -> Any:
    """json.loads after the size and depth checks; any failure is one InputError naming `where`.

    Numbers must be finite and fit 64 bits (NaN, Infinity, 1e400 and 10**400 are refused)."""
    try:
        return json_value(text, max_chars, max_depth)
    except ValueError as exc:
        raise InputError(f"{where}: {exc}") from None


def json_value(text: str, max_chars: int = MAX_LINE_CHARS, max_depth: int = MAX_DEPTH) -> Any:
    """The bounded parse of parse_json; a problem is a ValueError whose message names no place."""
    if len(text) > max_chars:
        raise ValueError(f"{len(text):,} characters, more than the {max_chars:,} allowed")
    # Fewer opening brackets than the limit, counted with those inside strings, cannot nest deeper.
    if text.count("[") + text.count("{") > max_depth and nesting_depth(text) > max_depth:
        raise ValueError(f"JSON nested deeper than {max_depth} levels")
    lone = _SURROGATE_ESCAPE.search(text) and _LONE_SURROGATE.search(text)
    if lone:
        raise ValueError(f"{lone.group()} is a lone surrogate, not a Unicode character (column {lone.start() + 1})")
    try:
        return json.loads(text, parse_constant=_no_constant, parse_float=_finite_float, parse_int=_bounded_int)
    except json.JSONDecodeError as exc:
        raise ValueError(f"invalid JSON: {exc.msg} (line {exc.lineno} column {exc.colno})") from None
    except (ValueError, RecursionError) as exc:
        raise ValueError(f"invalid JSON: {' '.join(str(exc).split())}") from None


def _no_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def _bounded_int(text: str) -> int:
    value = int(text) if len(text) <= 20 else 2**64  # more digits than any 64-bit integer has
    if not -(2**63) <= value < 2**63:
        raise ValueError(f"integer {text[:40]} is beyond 64 bits")
    return value


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:40]} is out of range")
    return value


def parse_yaml(text: str, where: str, max_chars: int = MAX_YAML_CHARS, max_depth: int = MAX_DEPTH) -> Any:
    """yaml.safe_load without anchors or aliases (no expansion bombs), after size and depth checks."""
    import yaml

    if len(text) > max_chars:
        raise InputError(f"{where}: {len(text):,} characters, more than the {max_chars:,} allowed")

    class Loader(yaml.SafeLoader):
        depth = 0

        def compose_node(self, parent, index):
            event = self.peek_event()
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                line = event.start_mark.line + 1
                raise InputError(f"{where}:{line}: YAML anchors and aliases (&name, *name) are not accepted")
            self.depth += 1
            if self.depth > max_depth:
                raise InputError(f"{where}:{event.start_mark.line + 1}: YAML nested deeper than {max_depth} levels")
            try:
                return super().compose_node(parent, index)
            finally:
                self.depth -= 1

    try:
        return yaml.load(text, Loader=Loader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as exc:
        raise InputError(f"{where}: not valid YAML: {' '.join(str(exc).split())}") from None


def read_bounded(handle: IO[str], limit: int, where: str) -> str:
    """All of `handle` (text), refusing more than `limit` characters (gzip bombs included)."""
    text = handle.read(limit + 1)
    if len(text) > limit:
        raise InputError(f"{where}: more than the {limit:,} characters allowed")
    return text


def bounded_lines(handle: IO[str], where: str, limit: int = MAX_LINE_CHARS) -> Iterator[tuple[int, str]]:
    """(line number, line) of a text handle; a line longer than `limit` is an InputError."""
    lineno = 0
    while True:
        try:
            line = handle.readline(limit + 1)
        except UnicodeDecodeError as exc:
            raise InputError(f"{where}:{lineno + 1}: not UTF-8 text (byte {exc.start + 1} of a read block)") from None
        if not line:
            return
        lineno += 1
        if len(line) > limit and not line.endswith("\n"):
            raise InputError(f"{where}:{lineno}: line longer than the {limit:,} characters allowed")
        yield lineno, line
