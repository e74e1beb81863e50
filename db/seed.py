"""First-run content: the bundled sample (db/sample/, see its README for provenance and licences).

An empty database would greet a new user with an empty queue, so `ensure_ready` migrates the
database and, when it holds no dataset yet, imports two real sets through the normal validated
import path:
- "trec-dl19": the real RankVicuna-7B rerankings of the BM25 top-20 for the 43 DL19 queries, as
  model labels with TREC grades; each carries the model's recorded answer (`raw_output`, from
  db/sample/recorded/rankvicuna7b-dl19) so Review shows what the model wrote, its [n] linked.
  RankVicuna writes no reasoning, so these labels have none: none is made up;
- "noveleval": the 21 NovelEval queries × 20 judged passages, labelled with their BM25 order
  (a first-stage "model" label for reviewers to fix against the visible gold grades).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import func, select

from db.engine import init_db, read_session
from db.importer import ImportSummary, import_batch
from db.models import Dataset
from reasonrank.imports import ImportBatch, validate_file
from reasonrank.io import read_qrels, read_rank_llm_json
from reasonrank.replay import load_recording, replay_ranking
from reasonrank.types import Label

SAMPLE = Path(__file__).resolve().parent / "sample"
DL19_RECORDING = "recorded/rankvicuna7b-dl19"


@dataclass
class SeedSummary:
    """What seeding did, per dataset (empty when the database already had content)."""

    imports: dict[str, ImportSummary] = field(default_factory=dict)

    @property
    def seeded(self) -> bool:
        return bool(self.imports)


def dataset_count(engine: Engine) -> int:
    with read_session(engine) as session:
        return session.exec(select(func.count()).select_from(Dataset)).one()


def dl19_batch(sample: Path = SAMPLE) -> ImportBatch:
    """RankVicuna-7B's top-20 rerankings as model labels over the BM25 candidates, with qrels."""
    root = sample / "trec-dl19"
    batch = validate_file(
        root / "rankvicuna7b_rerank_top20.run",
        kind="trec-run",
        dataset="trec-dl19",
        candidates_path=root / "bm25_top100_with_text.json",
        qrels_path=root / "qrels.txt",
        run_depth=20,
        model="RankVicuna-7B",
    )
    recording = load_recording(sample / DL19_RECORDING)
    for label in batch.labels:
        calls = recording.calls.get(label.candidates.query.qid, [])
        # attach the recorded answer only where it is the answer that produced this very ranking
        if len(calls) == 1 and replay_ranking(calls, label.candidates.docids) == label.ranking:
            label.raw_output = calls[0].raw_output
    return batch


def noveleval_batch(sample: Path = SAMPLE) -> ImportBatch:
    """NovelEval's BM25 order as a first-stage model label per query, with the graded judgments."""
    root = sample / "noveleval"
    qrels = read_qrels(root / "qrels.txt")
    lists = read_rank_llm_json(root / "candidates_with_text.json", qrels=qrels, dataset="noveleval")
    labels = [Label(candidates=cl, ranking=cl.docids, source="model", model="BM25") for cl in lists]
    return ImportBatch(labels=labels, candidates=[], qrels={}, dataset="noveleval", kind="labels", issues=[])


def seed_sample(engine: Engine) -> SeedSummary:
    """Import the bundled sample (idempotent: a second run changes nothing)."""
    summary = SeedSummary()
    for batch in (dl19_batch(), noveleval_batch()):
        summary.imports[batch.dataset] = import_batch(engine, batch)
    return summary


def ensure_ready(engine: Engine) -> SeedSummary:
    """Migrate to the newest schema; seed the sample when the database has no dataset yet."""
    init_db(engine)
    if dataset_count(engine):
        return SeedSummary()
    return seed_sample(engine)
