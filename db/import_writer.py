"""The writes of an import, one dataset at a time inside the caller's transaction: the checks
only the store can make (a docid or qid stored with another text), then passages, queries,
items, labels and re-scored judgments as bulk Core INSERTs and UPDATEs (`DatasetWriter`)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import Table, bindparam, insert, select, update
from sqlmodel import Session

from db.engine import chunks, utcnow
from db.import_outcome import ImportRefused, ImportSummary
from db.label_rows import BACK_TO_REVIEW, label_fingerprint, label_row
from db.models import Dataset, Item, Label, Passage, Query
from reasonrank.imports import self_consistency
from reasonrank.types import CandidateList
from reasonrank.types import Label as LabelData
from reasonrank.types import Passage as PassageData


@dataclass
class DatasetEntry:
    """One candidate list of the batch, with its label when it has one."""

    candidates: CandidateList
    label: LabelData | None


def _insert_rows(session: Session, table: Table, rows: list[dict], *returning) -> list[tuple]:
    """Core executemany INSERTs in chunks; the `returning` columns of every row, in no set order."""
    connection = session.connection()
    statement = insert(table).returning(*returning) if returning else insert(table)
    out: list[tuple] = []
    for chunk in chunks(rows):
        result = connection.execute(statement, list(chunk))
        if returning:
            out.extend(result.tuples().all())
    return out


def _consistency(
    ranking: list[str], relevant: list[str] | None, qrels: dict[str, int] | None, alpha: float
) -> tuple[float | None, bool]:
    score = self_consistency(ranking, relevant if relevant is not None else qrels)
    return score, score is not None and score >= alpha


class DatasetWriter:
    """Writes the entries of one dataset inside the caller's transaction."""

    def __init__(self, session: Session, name: str, alpha: float, required_reviews: int, summary: ImportSummary):
        self.session, self.alpha, self.required_reviews, self.summary = session, alpha, required_reviews, summary
        self.name = name
        self.dataset_id = self._dataset_id(name)
        # both filled by text_problems, which runs before write
        self.first_passages: dict[str, PassageData] = {}  # docid -> its first passage in the batch
        self.stored_docids: set[str] = set()

    def _dataset_id(self, name: str) -> int:
        found = self.session.scalar(select(Dataset.id).where(Dataset.name == name))
        if found is not None:
            return found
        return self.session.scalar(insert(Dataset).values(name=name, created_at=utcnow()).returning(Dataset.id))

    def write(self, entries: list[DatasetEntry], qrels: dict[str, dict[str, int]]) -> None:
        self._insert_passages()
        query_ids = self._query_ids(entries)
        items = self._items(entries, query_ids, qrels)
        self._insert_labels(entries, items)
        states = list(items.values()) + self._qrels_only(qrels, set(items))
        self._rescore(states)
        self._save(states)
        self.summary.items_unchanged += sum(not s.new and not s.changes for s in items.values())

    # -- texts: a docid or qid means one text per dataset; a second text is refused, not overwritten
    def text_problems(self, entries: list[DatasetEntry]) -> list[str]:
        problems: list[str] = []
        passages = self.first_passages
        queries: dict[str, str] = {}
        where = f"dataset {self.name!r}:"
        for entry in entries:
            query = entry.candidates.query
            if queries.setdefault(query.qid, query.text) != query.text:
                problems.append(f"{where} qid {query.qid!r} appears with two different query texts")
            for passage in entry.candidates.candidates:
                if passages.setdefault(passage.docid, passage).text != passage.text:
                    problems.append(f"{where} docid {passage.docid!r} appears with two different texts")
        passage_texts = {docid: passage.text for docid, passage in passages.items()}
        for column, key, texts, what in (
            (Passage.docid, Passage.text, passage_texts, "docid"),
            (Query.qid, Query.text, queries, "qid"),
        ):
            for chunk in chunks(list(texts)):
                rows = (
                    self.session.execute(
                        select(column, key).where(column.class_.dataset_id == self.dataset_id, column.in_(chunk))
                    )
                    .tuples()
                    .all()
                )
                problems += [
                    f"dataset {self.name!r}: {what} {ident!r} is already stored with a different text"
                    for ident, text in rows
                    if texts[ident] != text
                ]
                if what == "docid":
                    self.stored_docids.update(ident for ident, _ in rows)
        return problems

    def _insert_passages(self) -> None:
        """The first passage of every docid that text_problems saw and the store lacks."""
        new = [
            {"dataset_id": self.dataset_id, "docid": docid, "text": passage.text, "title": passage.title}
            for docid, passage in self.first_passages.items()
            if docid not in self.stored_docids
        ]
        _insert_rows(self.session, Passage.__table__, new)
        self.summary.passages_created += len(new)

    def _query_ids(self, entries: list[DatasetEntry]) -> dict[str, int]:
        texts = {entry.candidates.query.qid: entry.candidates.query.text for entry in entries}
        ids: dict[str, int] = {}
        for chunk in chunks(list(texts)):
            ids.update(
                self.session.execute(
                    select(Query.qid, Query.id).where(Query.dataset_id == self.dataset_id, Query.qid.in_(chunk))
                )
                .tuples()
                .all()
            )
        new = [
            {"dataset_id": self.dataset_id, "qid": qid, "text": text} for qid, text in texts.items() if qid not in ids
        ]
        columns = Query.__table__.c
        ids.update(_insert_rows(self.session, Query.__table__, new, columns.qid, columns.id))
        self.summary.queries_created += len(new)
        return ids

    # -- items: one per (dataset, qid)
    def _load_items(self, query_ids: Iterable[int]) -> dict[int, _ItemState]:
        states: dict[int, _ItemState] = {}
        for chunk in chunks(list(query_ids)):
            for row in self.session.execute(
                select(
                    Item.id,
                    Item.query_id,
                    Item.candidates,
                    Item.qrels,
                    Item.excluded_ids,
                    Item.label_id,
                    Item.consistency,
                ).where(Item.query_id.in_(chunk))
            ).mappings():
                states[row["query_id"]] = _ItemState(**row)
        return states

    def _items(
        self, entries: list[DatasetEntry], query_ids: dict[str, int], qrels: dict[str, dict[str, int]]
    ) -> dict[str, _ItemState]:
        """The item of every entry (qid -> state), creating the missing ones.

        New candidates for a labelled item must come with a new label: the stored label ranks the
        old list, and a ranking over other passages cannot be reviewed against the new one.
        """
        by_query = {query_ids[e.candidates.query.qid]: e for e in entries}
        states = self._load_items(by_query)
        new_rows, problems = [], []
        for query_id, entry in by_query.items():
            cl = entry.candidates
            wanted = {
                "candidates": cl.docids,
                "excluded_ids": list(cl.excluded_ids),
                "qrels": cl.qrels if cl.qrels is not None else qrels.get(cl.query.qid),
            }
            state = states.get(query_id)
            if state is None:
                new_rows.append(
                    {
                        "dataset_id": self.dataset_id,
                        "query_id": query_id,
                        "required_reviews": self.required_reviews,
                        "updated_at": utcnow(),
                        **wanted,
                    }
                )
                continue
            if wanted["qrels"] is None:
                wanted["qrels"] = state.qrels  # a file without judgments keeps the stored ones
            if entry.label is None and state.label_id is not None and cl.docids != state.candidates:
                problems.append(
                    f"dataset {self.name!r}: qid {cl.query.qid!r} is stored with a labelled "
                    "candidate list that differs from this one; import it with a label, or "
                    "into another dataset"
                )
            state.want(reset=wanted["candidates"] != state.candidates, **wanted)
        if problems:
            raise ImportRefused(problems)  # the caller's transaction rolls back: nothing is written
        by_row = {row["query_id"]: row for row in new_rows}
        columns = Item.__table__.c
        for item_id, query_id in _insert_rows(self.session, Item.__table__, new_rows, columns.id, columns.query_id):
            row = by_row[query_id]
            states[query_id] = _ItemState(
                item_id, query_id, row["candidates"], row["qrels"], row["excluded_ids"], None, None, new=True
            )
        self.summary.items_created += len(new_rows)
        qid_of = {query_id: qid for qid, query_id in query_ids.items()}
        return {qid_of[query_id]: state for query_id, state in states.items()}

    # -- labels: keyed by content fingerprint per item
    def _insert_labels(self, entries: list[DatasetEntry], items: dict[str, _ItemState]) -> None:
        labelled = [(items[e.candidates.query.qid], e.label) for e in entries if e.label is not None]
        known: set[tuple[int, str]] = set()
        for chunk in chunks([state.id for state, _ in labelled]):
            known.update(
                self.session.execute(select(Label.item_id, Label.fingerprint).where(Label.item_id.in_(chunk)))
                .tuples()
                .all()
            )
        now = utcnow()
        rows, state_of = [], {}
        for state, label in labelled:
            fingerprint = label_fingerprint(label)
            if (state.id, fingerprint) in known:
                self.summary.labels_unchanged += 1
                continue
            score, kept = _consistency(label.ranking, label.relevant_docids, state.final_qrels, self.alpha)
            rows.append(label_row(label, state.id, score, kept, fingerprint, now))
            state_of[state.id] = state
        columns = Label.__table__.c
        for label_id, item_id, score in _insert_rows(
            self.session, Label.__table__, rows, columns.id, columns.item_id, columns.consistency
        ):
            # a new label is what reviewers now judge: earlier decisions no longer apply
            state_of[item_id].want(reset=state_of[item_id].label_id is not None, label_id=label_id, consistency=score)
        self.summary.labels_created += len(rows)
        self.summary.labels_kept += sum(row["kept"] for row in rows)

    # -- qrels: new judgments re-score the labels that have no relevant_docids of their own
    def _rescore(self, states: Iterable[_ItemState]) -> None:
        rescored = [state for state in states if "qrels" in state.changes]
        for state in rescored:
            current = state.changes.get("label_id", state.label_id)
            for label_id, ranking in self.session.execute(
                select(Label.id, Label.ranking).where(Label.item_id == state.id, Label.relevant_docids.is_(None))
            ).tuples():
                score, kept = _consistency(ranking, None, state.final_qrels, self.alpha)
                self.session.execute(update(Label).where(Label.id == label_id).values(consistency=score, kept=kept))
                if label_id == current:
                    state.want(reset=False, consistency=score)

    def _qrels_only(self, qrels: dict[str, dict[str, int]], done: set[str]) -> list[_ItemState]:
        """Items named only by a qrels file: attach the judgments to the stored items."""
        wanted = [qid for qid in qrels if qid not in done]
        query_ids: dict[str, int] = {}
        for chunk in chunks(wanted):
            query_ids.update(
                self.session.execute(
                    select(Query.qid, Query.id).where(Query.dataset_id == self.dataset_id, Query.qid.in_(chunk))
                )
                .tuples()
                .all()
            )
        self.summary.qrels_unmatched += len(wanted) - len(query_ids)
        states = self._load_items(query_ids.values())
        qid_of = {query_id: qid for qid, query_id in query_ids.items()}
        for query_id, state in states.items():
            state.want(reset=False, qrels=qrels[qid_of[query_id]])
        return list(states.values())

    def _save(self, states: list[_ItemState]) -> None:
        """New items get their label in one executemany; changed old items are bumped one by one."""
        fresh = [
            {"item": s.id, "label": s.changes.get("label_id"), "score": s.changes.get("consistency")}
            for s in states
            if s.new and "label_id" in s.changes
        ]
        table = Item.__table__
        statement = (
            update(table)
            .where(table.c.id == bindparam("item"))
            .values(label_id=bindparam("label"), consistency=bindparam("score"))
        )
        connection = self.session.connection()
        for chunk in chunks(fresh):
            connection.execute(statement, list(chunk))
        for state in states:
            if state.new or not state.changes:
                continue
            values = dict(state.changes)
            if state.reset:
                values.update(BACK_TO_REVIEW)
            # the version bump makes a reviewer who loaded the old item reload it
            self.session.execute(
                update(Item).where(Item.id == state.id).values(version=Item.version + 1, updated_at=utcnow(), **values)
            )
            self.summary.items_updated += 1


@dataclass
class _ItemState:
    """What the import knows about one item: stored values plus the changes it will write."""

    id: int
    query_id: int
    candidates: list[str]
    qrels: dict[str, int] | None
    excluded_ids: list[str]
    label_id: int | None
    consistency: float | None
    new: bool = False
    reset: bool = False  # what reviewers judged changed: back to pending
    changes: dict = field(default_factory=dict)

    @property
    def final_qrels(self) -> dict[str, int] | None:
        return self.changes.get("qrels", self.qrels)

    def want(self, *, reset: bool, **values) -> None:
        """Record the values that differ from what is stored; `reset` applies only if any did."""
        changed = {key: value for key, value in values.items() if self.changes.get(key, getattr(self, key)) != value}
        self.changes.update(changed)
        self.reset = self.reset or (reset and bool(changed))
