"""Label store on SQLite and on a real PostgreSQL: migrations, users, imports, the queue."""

from __future__ import annotations

import itertools
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from db_fixtures import *  # noqa: F403  (engine fixtures, users, batch builders)
from db_fixtures import ADMIN, ANNOTATORS, make_batch, make_label
from sqlalchemy import func, inspect, select, text
from sqlalchemy.engine import make_url
from sqlmodel import SQLModel

from db.engine import MIGRATIONS, data_dir, database_url, get_engine, init_db, read_session, utcnow
from db.importer import ImportRefused, import_batch
from db.models import Item, Label, Passage, Query, Review, User
from db.queue import QueueFilter, get_item, next_item, progress
from db.reviews import save_review
from db.users import add_user, get_user, list_users, verify
from reasonrank.imports import ImportIssue, validate_file
from reasonrank.io import InputError
from reasonrank.metrics import ndcg_at_k

REPO = Path(__file__).resolve().parents[1]
ALICE, BOB = ANNOTATORS[0], ANNOTATORS[1]
_fresh = itertools.count()


def counts(engine) -> dict[str, int]:
    with read_session(engine) as session:
        return {
            model.__tablename__: session.scalar(select(func.count()).select_from(model))
            for model in (Query, Passage, Item, Label, Review)
        }


# ----------------------------------------------------------------------------- engine + migrations
def test_default_url_is_a_sqlite_file_in_the_data_dir(tmp_path, monkeypatch):
    monkeypatch.delenv("REASONRANK_DB", raising=False)
    monkeypatch.setenv("REASONRANK_DATA", str(tmp_path / "nested" / "data"))
    assert data_dir().is_dir()
    assert database_url() == f"sqlite:///{(tmp_path / 'nested' / 'data' / 'reasonrank.db').resolve()}"
    monkeypatch.setenv("REASONRANK_DB", "postgresql+psycopg://u@127.0.0.1:1/x")
    assert database_url() == "postgresql+psycopg://u@127.0.0.1:1/x"
    assert database_url("sqlite:///other.db") == "sqlite:///other.db"
    with pytest.raises(InputError, match="not supported"):
        get_engine("mysql://u@localhost/x")


def test_sqlite_engine_uses_wal_and_a_busy_timeout(tmp_path):
    engine = get_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with read_session(engine) as session:
        assert session.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert session.execute(text("PRAGMA busy_timeout")).scalar() == 5000
        assert session.execute(text("PRAGMA foreign_keys")).scalar() == 1
    engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_init_db_migrates_an_empty_database_to_head_idempotently(backend, request, tmp_path):
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'fresh.db'}"
    else:
        server, admin = request.getfixturevalue("pg_cluster")
        name = f"fresh_{next(_fresh)}"
        with admin.connect() as conn:
            conn.execute(text(f"CREATE DATABASE {name}"))
        url = make_url(server).set(database=name).render_as_string(hide_password=False)
    # three processes starting at once, as app workers do; each migrates or finds it done
    script = "import sys; from db.engine import get_engine, init_db; init_db(get_engine(sys.argv[1]))"
    workers = [
        subprocess.Popen([sys.executable, "-c", script, url], cwd=REPO, stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    failures = [worker.stderr.read() for worker in workers if worker.wait(timeout=120) != 0]
    assert failures == []
    engine = get_engine(url)
    init_db(engine)  # a later run is a no-op
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(config).get_current_head()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [head]
        # the migration creates exactly what the models describe (no drift on either engine)
        assert compare_metadata(MigrationContext.configure(conn), SQLModel.metadata) == []
    indexes = {index["name"]: index["column_names"] for index in inspect(engine).get_indexes("item")}
    assert indexes["ix_item_status_id"] == ["status", "id"]
    assert indexes["ix_item_dataset_status_consistency"] == ["dataset_id", "status", "consistency", "id"]
    engine.dispose()


# ----------------------------------------------------------------------------- users
def test_users_hash_verify_and_roles(engine):
    created = add_user(engine, "dave", "annotator", "s3cret")
    assert created.name == "dave" and created.role == "annotator" and not created.is_admin
    with read_session(engine) as session:
        stored = session.scalar(select(User.password_hash).where(User.name == "dave"))
    assert stored.startswith("$argon2id$") and "s3cret" not in stored
    assert verify(engine, "dave", "s3cret").id == created.id
    assert verify(engine, "dave", "wrong") is None
    assert verify(engine, "nobody", "s3cret") is None
    with pytest.raises(InputError, match="already exists"):
        add_user(engine, "dave", "admin", "other")
    with pytest.raises(InputError, match="role 'owner' is not valid"):
        add_user(engine, "erin", "owner", "pw")
    with pytest.raises(InputError, match="must not be empty"):
        add_user(engine, "erin", "annotator", "")
    with pytest.raises(InputError, match="no user named"):
        get_user(engine, "erin")
    assert get_user(engine, ADMIN).is_admin
    names = [user.name for user in list_users(engine)]
    assert names == sorted(names) and "dave" in names and "erin" not in names


# ----------------------------------------------------------------------------- imports
def test_real_dl19_run_imports_once_with_self_consistency(engine, test_data):
    dl19 = test_data / "trec-dl19"
    batch = validate_file(
        dl19 / "rankvicuna7b_rerank_top20.run",
        kind="trec-run",
        dataset="dl19",
        candidates_path=dl19 / "bm25_top100_with_text.json",
        qrels_path=dl19 / "qrels.txt",
        run_depth=20,
    )
    assert batch.ok and len(batch.labels) == 43
    summary = import_batch(engine, batch)
    assert (summary.items_created, summary.labels_created, summary.queries_created) == (43, 43, 43)
    docids = {p.docid for label in batch.labels for p in label.candidates.candidates}
    assert summary.passages_created == len(docids)
    before = counts(engine)
    assert before == {"query": 43, "passage": len(docids), "item": 43, "label": 43, "review": 0}

    with read_session(engine) as session:
        stored = {
            qid: (label.ranking, label.consistency, label.kept, label.source, item.consistency)
            for qid, label, item in session.execute(
                select(Query.qid, Label, Item)
                .join(Item, Item.query_id == Query.id)
                .join(Label, Label.id == Item.label_id)
            ).tuples()
        }
    for label in batch.labels:
        ranking, consistency, kept, source, item_consistency = stored[label.candidates.query.qid]
        expected = ndcg_at_k(label.ranking, label.candidates.qrels, 10)
        assert ranking == label.ranking and source == "model"
        assert consistency == pytest.approx(expected) and item_consistency == pytest.approx(expected)
        assert kept == (expected >= 0.4)
    assert summary.labels_kept == sum(kept for *_, kept, _, _ in stored.values())

    again = import_batch(engine, batch)  # the same file twice: nothing new
    assert (again.items_created, again.labels_created, again.items_updated) == (0, 0, 0)
    assert (again.items_unchanged, again.labels_unchanged) == (43, 43) and not again.changed
    assert counts(engine) == before


def test_batch_with_issues_writes_nothing(engine):
    import_batch(engine, make_batch([make_label("q1", ["a", "b"])]))
    before = counts(engine)
    bad = make_batch([make_label("q2", ["c", "d"])])
    bad.issues = [ImportIssue("labels.jsonl", 3, "ranking", "docid 'x' is not a candidate")]
    with pytest.raises(ImportRefused, match=r"labels.jsonl:3: ranking: docid 'x' is not a candidate"):
        import_batch(engine, bad)
    assert counts(engine) == before


def test_same_docid_with_other_text_is_refused_without_writing(engine):
    import_batch(engine, make_batch([make_label("q1", ["a", "b"])]))
    before = counts(engine)
    clash = make_batch([make_label("q2", ["c", "d"]), make_label("q3", ["a", "e"], texts={"a": "a new text"})])
    with pytest.raises(ImportRefused, match="docid 'a' is already stored with a different text") as refused:
        import_batch(engine, clash)
    assert len(refused.value.problems) == 1
    assert counts(engine) == before  # q2 was fine but is not written either
    inside = make_batch([make_label("q4", ["x", "y"]), make_label("q5", ["x"], texts={"x": "other"})])
    with pytest.raises(ImportRefused, match="docid 'x' appears with two different texts"):
        import_batch(engine, inside)
    # another dataset may reuse the docid with its own text
    other = make_batch([make_label("q1", ["a"], texts={"a": "elsewhere"}, dataset="other")], dataset="other")
    assert import_batch(engine, other).passages_created == 1


def test_new_label_for_an_item_resets_it_and_qrels_rescore(engine):
    first = make_label("q1", ["a", "b", "c"], ["a", "b", "c"], relevant=None)
    import_batch(engine, make_batch([first]))
    view = next_item(engine, ALICE)
    assert view.consistency is None  # no judgments yet
    save_review(engine, view.item_id, ALICE, "accept", view.version)
    assert get_item(engine, view.item_id).status == "accepted"

    qrels_only = make_batch(qrels={"q1": {"c": 1}, "unknown": {"a": 1}}, kind="qrels")
    summary = import_batch(engine, qrels_only)
    assert (summary.items_updated, summary.qrels_unmatched) == (1, 1)
    rescored = get_item(engine, view.item_id)
    assert rescored.status == "accepted"  # what was judged did not change
    assert rescored.consistency == pytest.approx(ndcg_at_k(["a", "b", "c"], {"c": 1}, 10))
    assert rescored.version == view.version + 2

    second = make_label("q1", ["a", "b", "c"], ["c", "a", "b"], reasoning="c is best")
    summary = import_batch(engine, make_batch([second]))
    assert (summary.labels_created, summary.items_updated) == (1, 1)
    relabelled = get_item(engine, view.item_id, ALICE)
    assert relabelled.status == "pending" and relabelled.teacher_ranking == ["c", "a", "b"]
    assert relabelled.consistency == pytest.approx(1.0) and relabelled.my_decision is None
    assert next_item(engine, ALICE).item_id == view.item_id  # alice reviews the new label afresh


def test_other_candidates_for_a_labelled_item_need_a_label(engine):
    import_batch(engine, make_batch([make_label("q1", ["a", "b", "c"])]))
    before = counts(engine)
    longer = make_label("q1", ["a", "b", "c", "d"]).candidates
    with pytest.raises(ImportRefused, match="qid 'q1' is stored with a labelled candidate list"):
        import_batch(engine, make_batch(candidates=[make_label("q2", ["e"]).candidates, longer], kind="candidates"))
    assert counts(engine) == before
    same = make_label("q1", ["a", "b", "c"]).candidates  # the same list again is fine
    assert import_batch(engine, make_batch(candidates=[same], kind="candidates")).items_unchanged == 1


# ----------------------------------------------------------------------------- queue
def _scored_items(engine, scores: dict[str, float | None], dataset: str = "toy", **kwargs) -> None:
    """One item per qid whose teacher list has nDCG@10 == the given score (None: unjudged)."""
    labels = []
    for qid, score in scores.items():
        docids = [f"{qid}-{i}" for i in range(3)]
        relevant = None
        if score is not None:
            # a single positive at rank r scores 1/log2(r+1): ranks 1, 2, 3 give 1.0, 0.63, 0.5
            relevant = [docids[{1.0: 0, 0.63: 1, 0.5: 2}[score]]]
        labels.append(make_label(qid, docids, relevant=relevant, dataset=dataset))
    import_batch(engine, make_batch(labels, dataset=dataset), **kwargs)


def test_queue_serves_lowest_consistency_first_then_unscored(engine):
    _scored_items(engine, {"q-none": None, "q-high": 1.0, "q-low": 0.5, "q-mid": 0.63})
    served = []
    while (view := next_item(engine, ALICE)) is not None:
        served.append((view.qid, view.consistency))
        save_review(engine, view.item_id, ALICE, "skip", view.version)
    assert [qid for qid, _ in served] == ["q-low", "q-mid", "q-high", "q-none"]
    assert served[0][1] == pytest.approx(0.5) and served[-1][1] is None
    # skipped items stay pending for others
    assert next_item(engine, BOB).qid == "q-low"


def test_queue_filters(engine):
    _scored_items(engine, {"a1": 0.5, "a2": 1.0, "a3": None}, dataset="A")
    _scored_items(engine, {"b1": 0.63}, dataset="B")
    assert next_item(engine, ALICE, QueueFilter(dataset="B")).qid == "b1"
    assert next_item(engine, BOB, QueueFilter(min_consistency=0.4, max_consistency=0.9)).qid == "a1"
    assert next_item(engine, ANNOTATORS[2], QueueFilter(min_consistency=0.9)).qid == "a2"
    assert next_item(engine, ANNOTATORS[3], QueueFilter(source="model")) is None
    assert next_item(engine, ANNOTATORS[3], QueueFilter(status="conflict")) is None
    with pytest.raises(InputError, match="no dataset named 'C'"):
        next_item(engine, ALICE, QueueFilter(dataset="C"))
    with pytest.raises(InputError, match="queue status 'done'"):
        next_item(engine, ALICE, QueueFilter(status="done"))
    with pytest.raises(InputError, match="label source 'robot' is not one of teacher, model, human"):
        next_item(engine, ALICE, QueueFilter(source="robot"))
    with pytest.raises(InputError, match="no user named 'mallory'"):
        next_item(engine, "mallory")
    mine = {row.dataset: row for row in progress(engine, ALICE)}
    assert (mine["A"].total, mine["A"].pending, mine["A"].mine) == (3, 3, 0)


def test_claims_keep_items_apart_and_expire(engine):
    _scored_items(engine, {"q1": 0.5, "q2": 1.0})
    start = utcnow()
    first = next_item(engine, ALICE, now=start)
    assert first.qid == "q1" and first.claimed_by == ALICE
    assert next_item(engine, ALICE, now=start).item_id == first.item_id  # a reload: same item
    assert next_item(engine, BOB, now=start).qid == "q2"  # alice holds q1
    assert next_item(engine, ANNOTATORS[2], now=start) is None
    later = start + timedelta(minutes=31)  # the default claim lapses after 30 minutes
    assert next_item(engine, ANNOTATORS[2], now=later).qid == "q1"
    short = next_item(engine, ANNOTATORS[3], now=later, claim_ttl=timedelta(seconds=5))
    assert short.qid == "q2"  # bob's claim lapsed too
    assert next_item(engine, ANNOTATORS[4], now=later + timedelta(seconds=1)) is None
    assert next_item(engine, ANNOTATORS[4], now=later + timedelta(seconds=6)).qid == "q2"


def test_item_view_has_what_the_review_screen_shows(engine):
    label = make_label(
        "q1",
        ["d1", "d2", "d3"],
        ["d3", "d1", "d2"],
        qrels={"d3": 2, "d1": 0},
        reasoning="[3] is on topic",
        query="what is d3",
    )
    import_batch(engine, make_batch([label]))
    view = next_item(engine, ALICE)
    assert (view.query, view.dataset, view.item_key, view.status) == ("what is d3", "toy", "toy/q1", "pending")
    assert view.teacher_ranking == ["d3", "d1", "d2"] == view.current_ranking
    assert view.initial_ranking == ["d1", "d2", "d3"]
    assert [(p.docid, p.text, p.grade, p.prompt_id) for p in view.passages] == [
        ("d3", "text of d3", 2, 3),
        ("d1", "text of d1", 0, 1),
        ("d2", "text of d2", None, 2),
    ]
    assert view.reasoning == "[3] is on topic" and view.source == "teacher" and view.model == "teacher-x"
    assert view.consistency == pytest.approx(1.0) and view.kept
    assert (view.required_reviews, view.reviews_done, view.my_decision) == (1, 0, None)


def test_trained_models_get_the_next_free_name_in_one_transaction(engine):
    """Two jobs that finish at once may ask for the same name: the second gets `name-2`, and a
    plain add of a taken name is still refused."""
    from db.registry import add_reranker

    first = add_reranker(engine, "sft-run", "transformers", "m1", source="trained", next_free_name=True)
    second = add_reranker(engine, "sft-run", "transformers", "m2", source="trained", next_free_name=True)
    third = add_reranker(engine, "sft-run", "transformers", "m3", source="trained", next_free_name=True)
    assert (first.name, second.name, third.name) == ("sft-run", "sft-run-2", "sft-run-3")
    with pytest.raises(InputError, match="already exists"):
        add_reranker(engine, "sft-run", "transformers", "m4", source="trained")
