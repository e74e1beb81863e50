"""Training sets from reviewed labels: SFT rows (TRL conversational and LLaMA-Factory alpaca),
RL rows (TRL GRPO) and a deterministic JSONL writer.

Why the prompt comes from reasonrank.prompts: a model fine-tuned on a prompt that differs from
the inference prompt by one byte learns a slightly different task, so export and inference share
`prepare_query`, `prepare_passages` and `build_messages`. Every row is one window: the label's
candidates in first-stage order are the passages `[1]…[n]` (teacher lists hold at most 20), and
the target names them by those window-local ids.

Why deterministic bytes: an export is referenced by its sha256 (a training run records which
snapshot it used), so the same reviewed items must give the same file: rows in item_key order,
keys sorted, compact separators, UTF-8.
"""

from __future__ import annotations

import operator
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import repeat

from reasonrank.backends.base import TokenizerLike
from reasonrank.export_files import JSON_ENCODER as _JSON
from reasonrank.export_files import ExportFile, jsonl_bytes, safe_export_name, write_export
from reasonrank.gc_pause import paused_gc
from reasonrank.io import InputError
from reasonrank.prompts import build_messages, prepare_passages, prepare_query
from reasonrank.types import CandidateList, Label, Message, Passage

DECISIONS = ("accepted", "fixed")
NO_REASONING = "no reasoning text (include them with --allow-empty-reasoning to train on the answer alone)"
TAGGED_REASONING = "reasoning contains <think>/<answer> tags"
_TAGS = ("<think>", "</think>", "<answer>", "</answer>")


@dataclass
class ReviewedItem:
    """One item as the review produced it: `label` holds the target (the human order for a fix;
    the edited teacher reasoning when it was edited)."""

    label: Label
    decision: str  # accepted | fixed
    consistency: float | None
    annotators: list[str]
    item_key: str  # stable id, e.g. f"{dataset}/{qid}": the row order of every export


_Encoded = tuple[list[bytes], tuple[str, ...]]  # a line's pieces, and the turns they encode


class ExportRows(list):
    """The rows of one export (a plain list of dicts) plus the items left out, by reason.

    `encoded` may hold, index for index, the pieces of each row's JSONL line as its builder
    assembled them (see _SftLines), with the content strings they encode; the writer uses the
    pieces only while the row still holds exactly those strings, so editing rows stays safe.
    """

    def __init__(self, rows: Iterable[dict] = (), skipped: dict[str, int] | None = None) -> None:
        super().__init__(rows)
        self.skipped: dict[str, int] = dict(skipped or {})
        self.encoded: list[_Encoded | None] = []


# ----------------------------------------------------------------------------- one window
def window_ids(label: Label) -> list[int]:
    """The label's ranking as 1-based window ids (positions in first-stage candidate order)."""
    return _positions(label.candidates.docids, label.ranking, label.candidates.query.qid)


def _positions(docids: Sequence[str], ranking: Sequence[str], qid: str) -> list[int]:
    """window_ids for docids already at hand (an export has them cached per passage)."""
    position = dict(zip(docids, range(1, len(docids) + 1)))
    ids = list(map(position.get, ranking, repeat(0, len(ranking))))  # 0: unknown docid
    if 0 in ids or len(set(ids)) != len(ids) or len(ids) != len(position):
        raise InputError(f"qid {qid!r}: the ranking is not a permutation of the candidates")
    return ids


_ID_TAGS = {n: f"[{n}]" for n in range(1, 101)}  # "[n]" made once, not per row of a large export


def assistant_turn(reasoning: str, ids: list[int]) -> str:
    """The model's target output: `<think>{reasoning}</think>\\n<answer>[a] > [b] > …</answer>`."""
    try:
        answer = " > ".join([_ID_TAGS[n] for n in ids])
    except (KeyError, TypeError):  # ids beyond the tags made once
        answer = " > ".join(map("[{}]".format, ids))
    return f"<think>{reasoning}</think>\n<answer>{answer}</answer>"


def prompt_messages(
    label: Label, tokenizer: TokenizerLike | None = None, max_passage_tokens: int = 512, window: int = 20
) -> list[Message]:
    """[system, user] exactly as window.rerank would prompt for these candidates."""
    cl = label.candidates
    _check_window(cl, window)
    passages = prepare_passages(cl.candidates, tokenizer, max_passage_tokens)
    return build_messages(prepare_query(cl.query.text), passages)


def _check_window(cl: CandidateList, window: int) -> None:
    if len(cl.candidates) > window:
        raise InputError(
            f"qid {cl.query.qid!r} has {len(cl.candidates)} candidates, more than the window of {window}: "
            "an export row is one window (teacher lists hold at most 20)"
        )


class _Prompts:
    """prompt_messages for the many labels of one export, each distinct passage prepared once.

    Why: preparing a passage (ftfy, truncation) is most of an export's cost (docs/benchmarks.md),
    and datasets share passages between queries (one corpus, many queries). The
    prepared text depends only on the passage's title and text once the tokenizer and token
    limit are fixed, as they are within one export, so it is kept by (title, text). The
    passages one row still lacks are prepared in one call, keeping a fast tokenizer's batch
    encoding. Same bytes as prompt_messages: tests compare whole exports.
    """

    def __init__(self, tokenizer: TokenizerLike | None, max_passage_tokens: int, window: int) -> None:
        self._tokenizer = tokenizer
        self._max_passage_tokens = max_passage_tokens
        self.window = window
        self._prepared: dict[tuple[str | None, str], str] = {}

    def messages(self, label: Label) -> list[Message]:
        return build_messages(prepare_query(label.candidates.query.text), self.texts(label.candidates))

    def texts(self, cl: CandidateList) -> list[str]:
        """The candidates as prepared for the prompt, in first-stage order."""
        _check_window(cl, self.window)
        prepared = self._prepared
        keys = [(passage.title, passage.text) for passage in cl.candidates]
        try:
            texts = [prepared[key] for key in keys]
        except KeyError:  # new passages: prepare those this row lacks, in one call
            missing = {key: passage for key, passage in zip(keys, cl.candidates) if key not in prepared}
            prepared.update(
                zip(missing, prepare_passages(list(missing.values()), self._tokenizer, self._max_passage_tokens))
            )
            texts = [prepared[key] for key in keys]
        return texts


def _escaped(text: str) -> bytes:
    """`text` as it appears between the quotes of an export line (JSON-escaped, UTF-8).

    JSON escaping maps each character on its own, so the escape of a concatenation is the
    concatenation of the escapes: the pieces of a row can be escaped once and joined.
    """
    return _JSON.encode(text)[1:-1].encode("utf-8")


def _escaped_or_none(text: str) -> bytes | None:
    """_escaped, or None for text UTF-8 cannot hold (a lone surrogate)."""
    try:
        return _escaped(text)
    except ValueError:
        return None


_Q, _U, _A = "\x00q\x00", "\x00u\x00", "\x00a\x00"  # stand-ins: no prompt template holds a NUL
_SLOT = re.compile("\x00(q|p[0-9]+)\x00")
_ESCAPED_SLOT = re.compile(re.escape(_escaped("\x00")) + b"(u|a)" + re.escape(_escaped("\x00")))


class _SftLines:
    """Each SFT row and its JSONL line, assembled from pieces escaped once per export.

    Why: an SFT line repeats ~9 KB of prompt whose passages recur across rows, so escaping
    every line whole would escape the same passages again and again. The layout is not written out here: for
    each window size, build_messages and the JSON encoder themselves are run once on stand-in
    strings, and their output is cut at the stand-ins into literal pieces (row = literals and
    the query / passages / assistant turn interleaved). Same bytes as jsonl_bytes of the row:
    tests compare whole exports with a straightforward writer.
    """

    def __init__(self, prompts: _Prompts) -> None:
        self._prompts = prompts
        # id(passage) -> (passage, docid, prepared text, its escape or None), looked up 20 times a
        # row. Keyed by the object, not by (title, text): the items of one export share Passage
        # objects (db.exports makes one per stored passage), and an id lookup reads neither the
        # object nor its text, where hashing and comparing a content key touched ~2M scattered
        # objects per 100k rows. The entry keeps its passage alive, so no other object can take
        # its id while the export runs.
        self._by_object: dict[int, tuple[Passage, str, str, bytes | None]] = {}
        # (title, text) -> (prepared passage, its escape or None): equal passages held in distinct
        # objects are still prepared and escaped once
        self._by_content: dict[tuple[str | None, str], tuple[str, bytes | None]] = {}
        self._layouts: dict[int, tuple] = {}

    def _layout(self, num: int) -> tuple:
        """(system, user literals, their escapes with the line's outer bytes folded in, slot getter)."""
        layout = self._layouts.get(num)
        if layout is None:
            system, user = build_messages(_Q, [f"\x00p{i}\x00" for i in range(num)])
            pieces = _SLOT.split(user["content"])
            literals, slots = pieces[0::2], pieces[1::2]
            order = [0 if slot == "q" else int(slot[1:]) + 1 for slot in slots]
            outer = _JSON.encode(
                {"messages": [system, Message(role="user", content=_U), Message(role="assistant", content=_A)]}
            ).encode("utf-8")
            head, _, middle, _, tail = _ESCAPED_SLOT.split(outer)
            escaped = [_escaped(literal) for literal in literals]
            escaped[0] = head + escaped[0]
            escaped[-1] += middle
            layout = (system["content"], literals, escaped, operator.itemgetter(*order), tail + b"\n")
            self._layouts[num] = layout
        return layout

    def _entries(self, cl: CandidateList) -> list[tuple[Passage, str, str, bytes | None]]:
        """The cache entry of each candidate, in first-stage order."""
        by_object = self._by_object
        try:
            return [by_object[id(passage)] for passage in cl.candidates]
        except KeyError:  # passage objects not met yet: by content, else prepared as _Prompts does
            by_content = self._by_content
            keys = [(passage.title, passage.text) for passage in cl.candidates]
            if any(key not in by_content for key in keys):
                for key, text in zip(keys, self._prompts.texts(cl)):
                    if key not in by_content:
                        by_content[key] = (text, _escaped_or_none(text))
            for passage, key in zip(cl.candidates, keys):
                if id(passage) not in by_object:
                    by_object[id(passage)] = (passage, passage.docid, *by_content[key])
            return [by_object[id(passage)] for passage in cl.candidates]

    def row(self, label: Label, reasoning: str) -> tuple[dict, _Encoded | None]:
        """The row for `label` with `reasoning` in its think block, and its line's pieces
        (joined only when written, so that a 100k export holds its ~1 GB of lines one at a
        time) with the turns they encode; None when not encodable."""
        cl = label.candidates
        if len(cl.candidates) > self._prompts.window:  # refused: a ranking error first, as rl_rows does
            window_ids(label)
            _check_window(cl, self._prompts.window)
        entries = self._entries(cl)
        if entries:
            _, docids, texts, escapes = zip(*entries)
        else:
            docids = texts = escapes = ()
        assistant = assistant_turn(reasoning, _positions(docids, label.ranking, cl.query.qid))
        system, literals, escaped_literals, pick, tail = self._layout(len(texts))
        query = prepare_query(cl.query.text)
        parts: list = [None] * (2 * len(literals) - 1)
        parts[0::2] = literals
        parts[1::2] = pick((query, *texts))
        user = "".join(parts)
        row = {
            "messages": [
                Message(role="system", content=system),
                Message(role="user", content=user),
                Message(role="assistant", content=assistant),
            ]
        }
        values = (_escaped_or_none(query), *escapes, _escaped_or_none(assistant))
        if None in values:  # not encodable (a lone surrogate): the writer reports it
            return row, None
        parts[0::2] = escaped_literals
        parts[1::2] = pick(values)
        parts += (values[-1], tail)
        return row, (parts, (system, user, assistant))


def _ordered(items: Iterable[ReviewedItem]) -> list[ReviewedItem]:
    ordered = sorted(items, key=lambda item: item.item_key)
    for item in ordered:
        if item.decision not in DECISIONS:
            raise InputError(
                f"item {item.item_key!r}: decision {item.decision!r} is not exportable ({', '.join(DECISIONS)})"
            )
    return ordered


# ----------------------------------------------------------------------------- builders
def sft_rows(
    items: Iterable[ReviewedItem],
    *,
    tokenizer: TokenizerLike | None = None,
    max_passage_tokens: int = 512,
    window: int = 20,
    allow_empty_reasoning: bool = False,
) -> ExportRows:
    """TRL conversational rows `{"messages": [system, user, assistant]}` in item_key order.

    The reasoning is stripped of surrounding whitespace. Items without reasoning (e.g. RankVicuna
    model labels) are left out and counted in `.skipped`, unless allow_empty_reasoning (then the
    think block is empty); reasoning that itself contains think/answer tags is left out too,
    since it would teach a broken output format.
    """
    rows = ExportRows()
    skipped: Counter[str] = Counter()
    lines = _SftLines(_Prompts(tokenizer, max_passage_tokens, window))
    with paused_gc():  # every row built stays alive: collections would free nothing
        for item in _ordered(items):
            label = item.label
            reasoning = (label.reasoning or "").strip()
            if not reasoning and not allow_empty_reasoning:
                skipped[NO_REASONING] += 1
                continue
            if any(tag in reasoning for tag in _TAGS):
                skipped[TAGGED_REASONING] += 1
                continue
            row, encoded = lines.row(label, reasoning)
            rows.append(row)
            rows.encoded.append(encoded)
    rows.skipped = dict(skipped)
    return rows


def alpaca_rows(
    items: Iterable[ReviewedItem],
    *,
    tokenizer: TokenizerLike | None = None,
    max_passage_tokens: int = 512,
    window: int = 20,
    allow_empty_reasoning: bool = False,
) -> ExportRows:
    """LLaMA-Factory alpaca rows `{"system", "instruction", "output"}`: the SFT rows' three turns
    (the form of ReasonRank's released SFT set)."""
    sft = sft_rows(
        items,
        tokenizer=tokenizer,
        max_passage_tokens=max_passage_tokens,
        window=window,
        allow_empty_reasoning=allow_empty_reasoning,
    )
    rows = (
        {"system": system["content"], "instruction": user["content"], "output": assistant["content"]}
        for system, user, assistant in (row["messages"] for row in sft)
    )
    return ExportRows(rows, sft.skipped)


def rl_rows(
    items: Iterable[ReviewedItem],
    *,
    tokenizer: TokenizerLike | None = None,
    max_passage_tokens: int = 512,
    window: int = 20,
    rel_level: int = 1,
) -> ExportRows:
    """TRL GRPO rows `{"prompt": [system, user], "initial_list", "teacher_list",
    "relevant_docids", "dataset"}`; every column reaches `metrics.ranking_reward` by name.

    `relevant_docids` are the label's own (binary positives) or, when it has none, its
    candidates with a qrels grade >= rel_level; a label with neither gets an empty list (its
    reward then rests on the RBO term). No reasoning is needed.
    """
    rows = ExportRows()
    prompts = _Prompts(tokenizer, max_passage_tokens, window)
    for item in _ordered(items):
        label = item.label
        cl = label.candidates
        window_ids(label)  # the teacher list must be a permutation of the window
        relevant = label.relevant_docids
        if relevant is None:
            qrels = cl.qrels or {}
            relevant = [docid for docid in cl.docids if qrels.get(docid, 0) >= rel_level]
        rows.append(
            {
                "prompt": prompts.messages(label),
                "initial_list": cl.docids,
                "teacher_list": list(label.ranking),
                "relevant_docids": list(relevant),
                "dataset": cl.dataset or "",
            }
        )
    return rows


__all__ = [
    "DECISIONS",
    "ExportFile",
    "ExportRows",
    "ReviewedItem",
    "alpaca_rows",
    "assistant_turn",
    "jsonl_bytes",
    "prompt_messages",
    "rl_rows",
    "safe_export_name",
    "sft_rows",
    "window_ids",
    "write_export",
]
