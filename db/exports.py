"""Read reviewed items out of the store for training exports, and record each export made.

The export builders (reasonrank.export) take plain ReviewedItem objects; this module is where
the database turns into them. For a fixed item the target order is the people's order and the
reasoning is the edited trace when a reviewer edited it, else the teacher's. Items come out in
item_key order so that the same reviews always give the same bytes (and sha256).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine, Text, cast, select
from sqlmodel import Session

from db.engine import chunks, read_session, write_session
from db.models import COUNTED_DECISIONS, Dataset, Export, Item, Label, Passage, Query, Review, User
from db.users import user_row
from reasonrank.export import DECISIONS, ExportFile, ReviewedItem
from reasonrank.gc_pause import paused_gc
from reasonrank.io import InputError
from reasonrank.types import CandidateList
from reasonrank.types import Label as LabelData
from reasonrank.types import Passage as PassageData
from reasonrank.types import Query as QueryData


@dataclass(frozen=True)
class ExportFilter:
    statuses: tuple[str, ...] = DECISIONS  # accepted and/or fixed
    datasets: tuple[str, ...] | None = None  # None: every dataset
    min_consistency: float | None = None  # e.g. reasonrank.imports.ALPHA
    agreed_only: bool = False  # leave out items an admin had to adjudicate

    def __post_init__(self) -> None:
        unknown = [status for status in self.statuses if status not in DECISIONS]
        if unknown or not self.statuses:
            raise InputError(f"export statuses must be among {', '.join(DECISIONS)}, got {list(self.statuses)}")


@dataclass(frozen=True)
class ExportRecord:
    id: int
    name: str
    kind: str
    filter: dict
    count: int
    sha256: str
    path: str
    created_by: str | None
    created_at: datetime


def _conditions(filters: ExportFilter) -> list:
    """The WHERE terms on Item that select an export's items (shared by its two queries)."""
    conditions = [Item.status.in_(filters.statuses)]
    if filters.datasets is not None:
        conditions.append(Item.dataset_id.in_(select(Dataset.id).where(Dataset.name.in_(filters.datasets))))
    if filters.min_consistency is not None:
        conditions.append(Item.consistency >= filters.min_consistency)
    return conditions


def _json_text(column):
    """A JSON column read as its text: decoded by _loads, without SQLAlchemy's per-value
    processor (a third of the read at 100k items); the cast makes PostgreSQL send text too."""
    return cast(column, Text)


_DECODE = json.JSONDecoder().raw_decode  # json.loads less its whitespace checks: stored JSON has none


def _loads(text: str | None):
    """A JSON column's value from its text; SQL NULL stays None, and the common "[]" needs no parse."""
    if text is None:
        return None
    return [] if text == "[]" else _DECODE(text)[0]


def _rows(session: Session, filters: ExportFilter) -> list[tuple]:
    """Plain column tuples, not ORM objects: building 100k SQLModel instances alone takes seconds."""
    query = (
        select(
            Item.id,
            Item.dataset_id,
            Item.status,
            _json_text(Item.candidates),
            _json_text(Item.qrels),
            _json_text(Item.excluded_ids),
            Item.consistency,
            _json_text(Item.final_ranking),
            Item.final_reasoning,
            Label.source,
            Label.model,
            Label.reasoning,
            Label.raw_output,
            _json_text(Label.relevant_docids),
            _json_text(Label.reasons),
            Label.tokens_in,
            Label.tokens_out,
            Query.qid,
            Query.text,
            Dataset.name,
        )
        .join(Label, Label.id == Item.label_id)
        .join(Query, Query.id == Item.query_id)
        .join(Dataset, Dataset.id == Item.dataset_id)
        .where(*_conditions(filters))
    )
    return session.execute(query).tuples().all()


def _annotators(session: Session, filters: ExportFilter) -> dict[int, tuple[list[str], bool]]:
    """item id -> (names of the people whose decisions count, whether an admin adjudicated), for
    the export's items: one query with the export's own conditions, not IN lists of item ids."""
    found: dict[int, tuple[list[str], bool]] = {}
    rows = session.execute(
        select(Review.item_id, User.name, Review.adjudication)
        .join(User, User.id == Review.annotator_id)
        .join(Item, Item.id == Review.item_id)
        .where(Review.label_id == Item.label_id, Review.decision.in_(COUNTED_DECISIONS), *_conditions(filters))
        .order_by(Review.id)
    ).tuples()
    for item_id, name, adjudicated in rows:
        names, any_adjudication = found.get(item_id, ([], False))
        if name not in names:
            names.append(name)
        found[item_id] = (names, any_adjudication or adjudicated)
    return found


def passages_for(session: Session, wanted: dict[int, set[str]]) -> dict[int, dict[str, PassageData]]:
    """dataset id -> docid -> passage, for the docids wanted."""
    texts: dict[int, dict[str, PassageData]] = {}
    for dataset_id, docids in wanted.items():
        found = texts.setdefault(dataset_id, {})
        for chunk in chunks(sorted(docids)):
            for docid, text, title in session.execute(
                select(Passage.docid, Passage.text, Passage.title).where(
                    Passage.dataset_id == dataset_id, Passage.docid.in_(chunk)
                )
            ).tuples():
                found[docid] = PassageData(docid, text, title)
    return texts


def reviewed_items(engine: Engine, filters: ExportFilter | None = None) -> list[ReviewedItem]:
    """Accepted / fixed items matching `filters`, as export targets, in item_key order."""
    filters = filters or ExportFilter()
    # Nothing built here is garbage, so the collector's passes over the growing heap are pure cost
    # (docs/benchmarks.md, "Costs behind design choices").
    with paused_gc():
        return _reviewed_items(engine, filters)


def _reviewed_items(engine: Engine, filters: ExportFilter) -> list[ReviewedItem]:
    with read_session(engine) as session:
        rows = [(*row[:3], _loads(row[3]), *row[4:]) for row in _rows(session, filters)]
        people = _annotators(session, filters)
        wanted: dict[int, set[str]] = {}
        for row in rows:
            wanted.setdefault(row[1], set()).update(row[3])
        texts = passages_for(session, wanted)
    items = []
    for (
        item_id,
        dataset_id,
        status,
        docids,
        qrels,
        excluded_ids,
        consistency,
        final_ranking,
        final_reasoning,
        source,
        model,
        reasoning,
        raw_output,
        relevant_docids,
        reasons,
        tokens_in,
        tokens_out,
        qid,
        query,
        dataset,
    ) in rows:
        names, adjudicated = people.get(item_id, ([], False))
        if filters.agreed_only and adjudicated:
            continue
        candidates = CandidateList(
            query=QueryData(qid, query),
            candidates=list(map(texts[dataset_id].__getitem__, docids)),
            qrels=_loads(qrels),
            excluded_ids=_loads(excluded_ids),
            dataset=dataset,
        )
        fixed = status == "fixed"
        target = LabelData(
            candidates=candidates,
            ranking=_loads(final_ranking),
            source="human" if fixed else source,
            reasoning=final_reasoning or reasoning,
            model=model,
            relevant_docids=_loads(relevant_docids),
            raw_output=None if fixed or final_reasoning else raw_output,
            reasons=_loads(reasons),
            tokens_in=tokens_in,
            tokens_out=tokens_out,
        )
        items.append(
            ReviewedItem(
                label=target, decision=status, consistency=consistency, annotators=names, item_key=f"{dataset}/{qid}"
            )
        )
    return sorted(items, key=lambda reviewed: reviewed.item_key)


def _record_of(export: Export, creator: str | None) -> ExportRecord:
    return ExportRecord(
        id=export.id,
        name=export.name,
        kind=export.kind,
        filter=dict(export.filter),
        count=export.count,
        sha256=export.sha256,
        path=export.path,
        created_by=creator,
        created_at=export.created_at,
    )


def record_export(
    engine: Engine, name: str, kind: str, filters: ExportFilter, file: ExportFile, created_by: str | None = None
) -> ExportRecord:
    """Remember an export written by reasonrank.export.write_export (what, how many, its hash)."""
    with write_session(engine) as session:
        creator_id = user_row(session, created_by).id if created_by is not None else None
        export = Export(
            name=name,
            kind=kind,
            filter=_filter_json(filters),
            count=file.count,
            sha256=file.sha256,
            path=str(Path(file.path)),
            created_by=creator_id,
        )
        session.add(export)
        session.flush()
        return _record_of(export, created_by)


def _filter_json(filters: ExportFilter) -> dict:
    return {key: list(value) if isinstance(value, tuple) else value for key, value in asdict(filters).items()}


def get_export(engine: Engine, export_id: int) -> ExportRecord:
    """One recorded export (the trainer's `export:ID` input)."""
    with read_session(engine) as session:
        row = (
            session.execute(
                select(Export, User.name).outerjoin(User, User.id == Export.created_by).where(Export.id == export_id)
            )
            .tuples()
            .first()
        )
    if row is None:
        raise InputError(f"no export with id {export_id}")
    return _record_of(*row)


def list_exports(engine: Engine) -> list[ExportRecord]:
    """Every recorded export, newest first."""
    with read_session(engine) as session:
        rows = (
            session.execute(
                select(Export, User.name).outerjoin(User, User.id == Export.created_by).order_by(Export.id.desc())
            )
            .tuples()
            .all()
        )
        return [_record_of(export, creator) for export, creator in rows]
