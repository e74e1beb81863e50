"""Real threads against SQLite and PostgreSQL: no double claims, no lost or silent overwrites."""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import timedelta

from db_fixtures import *  # noqa: F403  (engine fixtures, users, batch builders)
from db_fixtures import ANNOTATORS, make_batch, make_label
from sqlalchemy import select

from db.engine import read_session
from db.importer import import_batch
from db.models import Item, Review
from db.queue import get_item, next_item
from db.reviews import VersionConflict, save_review

WORKERS = [name for name in ANNOTATORS if name.startswith("worker")]
DOCS = ["a", "b", "c", "d"]


def _run_threads(target, count: int) -> list[BaseException]:
    errors: list[BaseException] = []

    def guarded(index: int) -> None:
        try:
            target(index)
        except BaseException as exc:  # collected and asserted on in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a worker thread hung"
    return errors


def test_eight_threads_never_claim_an_item_twice(engine):
    total = 48
    import_batch(engine, make_batch([make_label(f"q{i:02d}", DOCS, relevant=[DOCS[i % 4]]) for i in range(total)]))
    claimed: list[list[int]] = [[] for _ in WORKERS]
    start = threading.Barrier(len(WORKERS))  # all claim at once, even on a loaded machine

    def work(index: int) -> None:
        user = WORKERS[index]
        start.wait(timeout=30)
        while (view := next_item(engine, user)) is not None:
            claimed[index].append(view.item_id)
            save_review(engine, view.item_id, user, "accept", view.version)
            time.sleep(0.002)  # a reviewer reads between items; without it one SQLite writer can win every claim

    errors = _run_threads(work, len(WORKERS))
    assert errors == []  # in particular no "database is locked" and no VersionConflict
    every = [item_id for per_thread in claimed for item_id in per_thread]
    assert len(every) == total and len(set(every)) == total
    assert sum(1 for per_thread in claimed if per_thread) >= 2  # the work really was shared
    with read_session(engine) as session:
        assert set(session.scalars(select(Item.status))) == {"accepted"}
        per_item = Counter(session.scalars(select(Review.item_id)))
    assert len(per_item) == total and set(per_item.values()) == {1}


def test_two_reviewers_saving_the_same_item_one_wins_nothing_overwritten(engine):
    rounds = 6
    import_batch(engine, make_batch([make_label(f"q{i}", DOCS) for i in range(rounds)]))
    orders = {WORKERS[0]: ["b", "a", "c", "d"], WORKERS[1]: ["d", "c", "b", "a"]}
    for _ in range(rounds):
        # a claim that lapses at once: both may save, so only the item version decides (claims: tests/security)
        view = next_item(engine, WORKERS[0], claim_ttl=timedelta(0))
        loaded = {user: get_item(engine, view.item_id, user).version for user in orders}
        assert set(loaded.values()) == {view.version}
        barrier = threading.Barrier(len(orders))
        outcomes: dict[str, object] = {}

        def save(index: int, barrier=barrier, outcomes=outcomes, view=view, loaded=loaded) -> None:
            user = list(orders)[index]
            barrier.wait()
            try:
                outcomes[user] = save_review(engine, view.item_id, user, "fix", loaded[user], ranking=orders[user])
            except VersionConflict as conflict:
                outcomes[user] = conflict

        assert _run_threads(save, len(orders)) == []
        winners = [user for user, outcome in outcomes.items() if not isinstance(outcome, VersionConflict)]
        losers = [outcome for outcome in outcomes.values() if isinstance(outcome, VersionConflict)]
        assert len(winners) == 1 and len(losers) == 1
        assert losers[0].current_version == view.version + 1
        after = get_item(engine, view.item_id)
        assert after.version == view.version + 1 and after.current_ranking == orders[winners[0]]
        with read_session(engine) as session:
            rows = session.scalars(select(Review).where(Review.item_id == view.item_id)).all()
        assert [(r.decision, r.ranking) for r in rows] == [("fix", orders[winners[0]])]


def test_writers_of_one_process_take_turns_without_the_busy_timeout(tmp_path, monkeypatch):
    """Threads of one process queue on the process's writer lock, so even a busy timeout far
    shorter than a transaction never fails one of them with "database is locked"."""
    from sqlalchemy import text

    import db.engine as engine_module
    from db.engine import get_engine, write_session

    monkeypatch.setattr(engine_module, "BUSY_TIMEOUT_S", 0.001)
    db = get_engine(f"sqlite:///{tmp_path / 'turns.db'}")
    with write_session(db) as session:
        session.execute(text("CREATE TABLE counter (n INTEGER)"))
        session.execute(text("INSERT INTO counter VALUES (0)"))
    errors: list[BaseException] = []

    def add(times: int) -> None:
        for _ in range(times):
            try:
                with write_session(db) as session:
                    value = session.execute(text("SELECT n FROM counter")).scalar_one()
                    time.sleep(0.002)  # hold the write lock far longer than the busy timeout
                    session.execute(text("UPDATE counter SET n = :n"), {"n": value + 1})
            except BaseException as exc:  # collected: a thread's exception would vanish
                errors.append(exc)

    threads = [threading.Thread(target=add, args=(10,)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with write_session(db) as session:
        assert session.execute(text("SELECT n FROM counter")).scalar_one() == 80
    db.dispose()
