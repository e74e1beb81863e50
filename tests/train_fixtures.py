"""Training data for the trainer tests: short real DL19 windows written by the real export code.

Each window holds the first 2–4 BM25 candidates of a judged DL19 query; the teacher order is by
qrels grade (first-stage order among ties) and the reasoning is one short sentence naming the
best passage, so a tiny model can learn the output format in a few dozen steps. Passages are cut
to a few words (the export's own truncation) to keep the prompts short on CPU.
"""

from __future__ import annotations

from pathlib import Path

from reasonrank.export import ReviewedItem, rl_rows, sft_rows, write_export
from reasonrank.types import CandidateList, Label

SIZES = (2, 3, 4)
PASSAGE_WORDS = 12


def dl19_windows(dl19: list[CandidateList], count: int) -> list[Label]:
    """`count` labels over the first 2–4 candidates of the first judged DL19 queries."""
    labels = []
    for index, cl in enumerate(dl19[:count]):
        size = SIZES[index % len(SIZES)]
        window = CandidateList(query=cl.query, candidates=cl.candidates[:size], qrels=cl.qrels, dataset="dl19")
        grade = {p.docid: (cl.qrels or {}).get(p.docid, 0) for p in window.candidates}
        ranking = sorted(window.docids, key=lambda d: -grade[d])
        best = window.docids.index(ranking[0]) + 1
        labels.append(
            Label(
                candidates=window,
                ranking=ranking,
                reasoning=f"Passage [{best}] answers it best.",
                relevant_docids=[d for d in window.docids if grade[d] >= 2],
            )
        )
    return labels


def _items(labels: list[Label]) -> list[ReviewedItem]:
    return [
        ReviewedItem(label=label, decision="accepted", consistency=1.0, annotators=["t"], item_key=f"dl19/{index:03d}")
        for index, label in enumerate(labels)
    ]


def write_sft_export(labels: list[Label], folder: Path, name: str = "sft") -> Path:
    rows = sft_rows(_items(labels), max_passage_tokens=PASSAGE_WORDS)
    return Path(write_export(rows, folder, name, overwrite=True).path)


def write_rl_export(labels: list[Label], folder: Path, name: str = "rl") -> Path:
    rows = rl_rows(_items(labels), max_passage_tokens=PASSAGE_WORDS)
    return Path(write_export(rows, folder, name, overwrite=True).path)
