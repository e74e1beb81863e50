"""A teacher label on the wire: what a synth job on a remote runner sends back to the app as a
`label` event (reasonrank.runners has the event stream), and the teacher fingerprint that ties a
label to the configuration that wrote it (db.synth keeps one label per item and fingerprint)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from reasonrank.io import InputError
from reasonrank.types import CandidateList, Label, Query

LABEL_EVENT = "label"
_LABEL_FIELDS = ("model", "ranking", "reasoning", "raw_output", "relevant_docids", "reasons", "tokens_in", "tokens_out")


def teacher_fingerprint(teacher: dict[str, Any]) -> str:
    """The fingerprint every label written by this teacher configuration carries (db.synth)."""
    return hashlib.sha256(json.dumps({"synth": teacher}, sort_keys=True).encode()).hexdigest()


def label_event(key: Any, label: Label, consistency: float | None, kept: bool, fingerprint: str) -> dict[str, Any]:
    """A finished label as the fields of a `label` event: the item's key, the teacher fingerprint
    and what the store keeps of a label, not its candidate list (the app holds that already)."""
    fields = {name: getattr(label, name) for name in _LABEL_FIELDS}
    return {
        "item": key,
        "qid": label.candidates.query.qid,
        "fingerprint": fingerprint,
        "consistency": consistency,
        "kept": kept,
        **fields,
    }


def label_from_event(event: dict[str, Any]) -> tuple[Any, Label, float | None, bool, str]:
    """(item key, label, consistency, kept, fingerprint) of a `label` event; a field missing or of
    the wrong kind raises InputError. The label's candidate list holds only the qid: the stored
    label refers to its item, whose list the store already has."""
    try:
        ranking = [str(docid) for docid in event["ranking"]]
        relevant = event.get("relevant_docids")
        label = Label(
            candidates=CandidateList(Query(str(event.get("qid", "")), ""), []),
            ranking=ranking,
            source="teacher",
            reasoning=event.get("reasoning"),
            model=event.get("model"),
            relevant_docids=None if relevant is None else [str(docid) for docid in relevant],
            raw_output=event.get("raw_output"),
            reasons=[str(reason) for reason in event.get("reasons") or []],
            tokens_in=int(event.get("tokens_in") or 0),
            tokens_out=int(event.get("tokens_out") or 0),
        )
        consistency = event.get("consistency")
        return (
            event["item"],
            label,
            None if consistency is None else float(consistency),
            bool(event["kept"]),
            str(event["fingerprint"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"not a label event ({type(exc).__name__}: {exc})") from exc
