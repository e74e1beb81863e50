"""Export files: safe names under the data directory, exact JSONL bytes, atomic writes with a hash.

Kept apart from the row builders (reasonrank.export) because it is about files, not training
formats: a name can never leave its folder, the bytes are deterministic (compact, key-sorted,
UTF-8) so the sha256 is stable across runs, and a reader never sees half a file.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from reasonrank.io import InputError

JSON_ENCODER = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False)
_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9._-]")
_MAX_NAME_CHARS = 120
# An SFT line (~9 KB) is larger than the default 8 KiB buffer, so each would go to the kernel
# in its own write call; a 1 MiB buffer batches about a hundred lines per call.
_WRITE_BUFFER = 1 << 20


@dataclass(frozen=True)
class ExportFile:
    path: Path
    count: int
    sha256: str


def safe_export_name(name: str) -> str:
    """`name` as a file stem that cannot leave its folder: characters outside [A-Za-z0-9._-]
    become "_", leading dots and dashes go (no "..", no hidden files), at most 120 characters.
    A name with nothing left is an InputError."""
    stem = _UNSAFE_NAME_CHARS.sub("_", name.removesuffix(".jsonl")).lstrip(".-")[:_MAX_NAME_CHARS]
    if not stem.strip("_."):
        raise InputError(f"export name {name!r} has no usable characters (use letters, digits, '.', '_', '-')")
    return stem


def _as_built(row: dict, contents: tuple[str, ...]) -> bool:
    """Whether `row` is still the SFT row whose turns hold exactly `contents` (same objects)."""
    messages = row.get("messages") if len(row) == 1 else None
    return (
        type(messages) is list
        and len(messages) == len(contents)
        and all(
            type(message) is dict
            and len(message) == 2
            and message.get("content") is content
            and message.get("role") == role
            for message, content, role in zip(messages, contents, ("system", "user", "assistant"))
        )
    )


def _lines(rows: Iterable[dict]) -> Iterator[bytes]:
    """Each row's export line: the builder's pre-assembled one while the row is unchanged, else
    encoded here (each line on its own: joining a gigabyte of mostly non-ASCII text as one str
    and encoding that costs more than twice as much)."""
    encoded = getattr(rows, "encoded", None) or []
    encode = JSON_ENCODER.encode
    try:
        for index, row in enumerate(rows):
            built = encoded[index] if index < len(encoded) else None
            if built is not None and _as_built(row, built[1]):
                yield b"".join(built[0])
            else:
                yield (encode(row) + "\n").encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise InputError(f"export row is not plain JSON: {exc}") from None


def jsonl_bytes(rows: Iterable[dict]) -> bytes:
    """The exact bytes of an export: one compact, key-sorted JSON object a line, UTF-8."""
    return b"".join(list(_lines(rows)))


def write_export(rows: Iterable[dict], data_dir: str | Path, name: str, *, overwrite: bool = False) -> ExportFile:
    """Write `rows` to `<data_dir>/<safe name>.jsonl` and return its path, row count and sha256.

    The name is sanitised (see safe_export_name) and the resolved path must sit directly in
    data_dir, so a symlink planted there cannot redirect the write. The file is written to a
    temporary name and renamed, so a reader never sees half an export. An existing export is
    kept unless overwrite=True; an empty export is refused (no training set to record).
    """
    rows = rows if isinstance(rows, list) else list(rows)
    if not rows:
        raise InputError(f"export {name!r} has no rows; nothing was written")
    stem = safe_export_name(name)
    folder = Path(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{stem}.jsonl"
    if path.is_symlink() or path.resolve().parent != folder.resolve():
        raise InputError(f"export path {path} would leave the data directory {folder}")
    if path.exists() and not overwrite:
        raise InputError(f"export {path.name} already exists in {folder}; choose another name")
    partial = path.with_name(f".{path.name}.partial")
    digest = hashlib.sha256()
    try:  # hashed while written: the export is never held whole in memory
        with partial.open("wb", buffering=_WRITE_BUFFER) as out:
            for line in _lines(rows):
                digest.update(line)
                out.write(line)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, path)
    return ExportFile(path=path, count=len(rows), sha256=digest.hexdigest())
