"""Training rows from an export file, checked against the contract, and the length report.

Why a report that refuses by default: ReasonRank's SFT examples run to 23,552 tokens, and a
trainer that silently cuts them teaches the model to stop mid-reasoning (or never to close the
answer). So every example is measured with the model's own chat template before training, and a
run with examples longer than `max_length` stops with their count unless the config says what to
do with them (`truncate` or `drop`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reasonrank.io import InputError, iter_jsonl

SFT_ROLES = ("system", "user", "assistant")
RL_COLUMNS = ("prompt", "initial_list", "teacher_list", "relevant_docids")


def _messages(value: Any, where: str, roles: Sequence[str]) -> list[dict[str, str]]:
    if not isinstance(value, list) or [m.get("role") if isinstance(m, dict) else None for m in value] != list(roles):
        raise InputError(f"{where}: expected messages with roles {', '.join(roles)}")
    for message in value:
        if not isinstance(message.get("content"), str):
            raise InputError(f"{where}: every message needs a text content")
    return [{"role": m["role"], "content": m["content"]} for m in value]


def _docids(value: Any, where: str, name: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(d, (str, int)) for d in value):
        raise InputError(f"{where}: {name} must be a list of docids")
    return [str(d) for d in value]


def _sft_row(record: dict, where: str) -> dict:
    if "messages" in record:
        return {"messages": _messages(record["messages"], where, SFT_ROLES)}
    if all(isinstance(record.get(key), str) for key in ("system", "instruction", "output")):  # alpaca
        return {
            "messages": [
                {"role": "system", "content": record["system"]},
                {"role": "user", "content": record["instruction"]},
                {"role": "assistant", "content": record["output"]},
            ]
        }
    raise InputError(f"{where}: not an SFT row (needs messages, or system/instruction/output)")


def _rl_row(record: dict, where: str) -> dict:
    missing = [key for key in RL_COLUMNS if key not in record]
    if missing:
        raise InputError(f"{where}: not an RL row, missing {', '.join(missing)}")
    row = {
        "prompt": _messages(record["prompt"], where, SFT_ROLES[:2]),
        "initial_list": _docids(record["initial_list"], where, "initial_list"),
        "teacher_list": _docids(record["teacher_list"], where, "teacher_list"),
        "relevant_docids": _docids(record["relevant_docids"], where, "relevant_docids"),
        "dataset": str(record.get("dataset") or ""),
    }
    if sorted(row["teacher_list"]) != sorted(row["initial_list"]):
        raise InputError(f"{where}: teacher_list must be a permutation of initial_list")
    return row


def _records(path: str | Path) -> Iterator[tuple[str, dict]]:
    """("file:line", object) for each row of an export JSONL (gzip too); a missing file or a bad
    line is an InputError."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"training data not found: {path}")
    for lineno, record in iter_jsonl(path):
        yield f"{path}:{lineno}", record


def load_rows(path: str | Path, stage: str) -> list[dict]:
    """Every row of an export JSONL as the stage's trainer takes it (SFT: messages; GRPO: prompt
    plus the reward columns); the first bad line is an InputError naming file and line."""
    convert = {"sft": _sft_row, "grpo": _rl_row}[stage]
    rows = [convert(record, where) for where, record in _records(path)]
    if not rows:
        raise InputError(f"{Path(path)}: no training rows")
    return rows


def load_row(path: str | Path, stage: str, index: int) -> dict:
    """Row `index` (from 0) of an export JSONL as `load_rows` gives it, reading only up to that
    row and converting only it; a row past the end names how many the file has."""
    convert = {"sft": _sft_row, "grpo": _rl_row}[stage]
    count = 0
    for count, (where, record) in enumerate(_records(path), 1):
        if count - 1 == index:
            return convert(record, where)
    if not count:
        raise InputError(f"{Path(path)}: no training rows")
    raise InputError(f"row {index} does not exist: the file has {count} rows")


@dataclass
class LengthReport:
    """Token lengths of the examples against the limit (SFT: whole conversation; GRPO: prompt)."""

    max_length: int
    lengths: list[int] = field(default_factory=list)

    @property
    def too_long(self) -> list[int]:
        """Indices of the examples longer than max_length."""
        return [index for index, length in enumerate(self.lengths) if length > self.max_length]

    @property
    def longest(self) -> int:
        return max(self.lengths, default=0)

    def summary(self) -> dict[str, int]:
        return {
            "examples": len(self.lengths),
            "too_long": len(self.too_long),
            "longest": self.longest,
            "max_length": self.max_length,
        }


def _encoded_length(tokenizer: Any, messages: list[dict], add_generation_prompt: bool) -> int:
    ids = tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=add_generation_prompt)
    if hasattr(ids, "keys"):  # transformers 5 may return a BatchEncoding (or a dict)
        ids = ids["input_ids"]
    return len(ids)


def length_report(rows: list[dict], tokenizer: Any, max_length: int, stage: str) -> LengthReport:
    """Measure every example with the model's chat template, as the trainer will tokenize it."""
    # SFT: the whole conversation; GRPO: the prompt plus the generation prompt the rollout starts from
    column, add_generation_prompt = ("messages", False) if stage == "sft" else ("prompt", True)
    return LengthReport(max_length, [_encoded_length(tokenizer, row[column], add_generation_prompt) for row in rows])


def apply_length_policy(rows: list[dict], report: LengthReport, policy: str) -> list[dict]:
    """The rows to train on: all of them when none is too long; otherwise refuse (the default),
    drop the long ones, or keep them for the trainer to truncate."""
    too_long = report.too_long
    if not too_long or policy == "truncate":
        return rows
    if policy == "drop":
        dropped = set(too_long)
        kept = [row for index, row in enumerate(rows) if index not in dropped]
        if not kept:
            raise InputError(f"every example is longer than max_length {report.max_length}; nothing left to train on")
        return kept
    raise InputError(
        f"{len(too_long)} of {len(report.lengths)} examples are longer than max_length {report.max_length} tokens "
        f"(longest {report.longest}); raise max_length, or set on_overlong to "
        "truncate or drop"
    )
