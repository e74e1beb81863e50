"""What an import reports: `ImportSummary` (the counts of what it created, changed or left
alone) or `ImportRefused` (every reason the batch was not written)."""

from __future__ import annotations

from dataclasses import dataclass, field

from reasonrank.io import InputError

_SHOWN_PROBLEMS = 5


class ImportRefused(InputError):
    """The batch was not written; `problems` lists every reason (one line each)."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        shown = "; ".join(problems[:_SHOWN_PROBLEMS])
        more = f" (and {len(problems) - _SHOWN_PROBLEMS} more)" if len(problems) > _SHOWN_PROBLEMS else ""
        super().__init__(f"import refused, nothing written: {len(problems)} problem(s): {shown}{more}")


@dataclass
class ImportSummary:
    datasets: list[str] = field(default_factory=list)
    items_created: int = 0
    items_updated: int = 0  # candidates, qrels or the label under review changed
    items_unchanged: int = 0
    labels_created: int = 0
    labels_unchanged: int = 0  # same content already stored for the item
    labels_kept: int = 0  # of the created labels, those with consistency >= alpha
    passages_created: int = 0
    queries_created: int = 0
    qrels_unmatched: int = 0  # qrels for qids that have no item in the dataset

    @property
    def changed(self) -> bool:
        return bool(self.items_created or self.items_updated or self.labels_created)
