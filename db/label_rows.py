"""A stored label's row: the columns of the `label` table (`label_row`), the fingerprint that
makes equal content the same label (`label_fingerprint`), and what an item goes back to when the
label under review is replaced (`BACK_TO_REVIEW`). Imports and teacher synthesis both store
labels so."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime

from reasonrank.types import Label as LabelData

#: an item whose label was replaced goes back to the review queue: what reviewers judged changed
BACK_TO_REVIEW = {
    "status": "pending",
    "final_ranking": None,
    "final_reasoning": None,
    "claimed_by": None,
    "claimed_until": None,
}


def label_row(
    label: LabelData, item_id: int, consistency: float | None, kept: bool, fingerprint: str, created_at: datetime
) -> dict:
    """A `label` table row of `label` for `item_id` (imports and synthesis both store labels so)."""
    return {
        "item_id": item_id,
        "source": label.source,
        "model": label.model,
        "ranking": list(label.ranking),
        "reasoning": label.reasoning,
        "raw_output": label.raw_output,
        "relevant_docids": label.relevant_docids,
        "consistency": consistency,
        "kept": kept,
        "reasons": list(label.reasons),
        "tokens_in": label.tokens_in,
        "tokens_out": label.tokens_out,
        "fingerprint": fingerprint,
        "created_at": created_at,
    }


def label_fingerprint(label: LabelData) -> str:
    """sha256 of everything a reviewer judges in a label; equal content means the same label."""
    content = {
        "source": label.source,
        "model": label.model,
        "ranking": label.ranking,
        "reasoning": label.reasoning,
        "relevant_docids": label.relevant_docids,
        "raw_output": label.raw_output,
    }
    return hashlib.sha256(json.dumps(content, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
