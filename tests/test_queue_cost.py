"""The queue's work per call does not grow with the number of pending items.

Measured in SQLite virtual-machine steps (sqlite3's progress handler), which count the rows a
statement walks, not the machine's speed: a claim or a save must reach its rows through indexes.
A user's held claim, for one, was found by walking every pending item of the dataset (the planner
preferred the dataset/status index over claimed_by): 3.5 ms at 3,000 items, growing with the queue.
"""

from __future__ import annotations

import shutil

import pytest
from db_fixtures import make_batch, make_label, sqlite_template  # noqa: F401  (fixture)
from sqlalchemy import event

from db.engine import get_engine
from db.importer import import_batch
from db.queue import QueueFilter, next_item
from db.reviews import save_review

STEP = 50  # VM instructions per progress-handler call
SMALL, LARGE = 60, 1200


def _store(template, folder, items: int):
    path = folder / f"queue-{items}.db"
    shutil.copyfile(template, path)
    engine = get_engine(f"sqlite:///{path}")
    docs = ["a", "b", "c", "d"]
    import_batch(engine, make_batch([make_label(f"q{i:05d}", docs) for i in range(items)]))
    engine.dispose()  # new connections get the counting handler below
    steps = [0]

    def count() -> int:
        steps[0] += 1
        return 0  # 0: carry on

    @event.listens_for(engine, "connect")
    def _count_steps(dbapi_connection, _record) -> None:
        dbapi_connection.set_progress_handler(count, STEP)

    return engine, steps


def _costs(engine, steps, filters: QueueFilter) -> dict[str, int]:
    """VM steps of each call a reviewer makes: claim, reload (the held claim), save, next claim."""
    costs = {}

    def measure(name, call):
        before = steps[0]
        result = call()
        costs[name] = steps[0] - before
        return result

    first = measure("claim", lambda: next_item(engine, "alice", filters))
    again = measure("held", lambda: next_item(engine, "alice", filters))
    assert again.item_id == first.item_id
    measure("save", lambda: save_review(engine, first.item_id, "alice", "accept", first.version))
    measure("next", lambda: next_item(engine, "alice", filters))
    return costs


@pytest.fixture(scope="module")
def stores(sqlite_template, tmp_path_factory):  # noqa: F811
    folder = tmp_path_factory.mktemp("queue-cost")
    built = {items: _store(sqlite_template, folder, items) for items in (SMALL, LARGE)}
    yield built
    for engine, _ in built.values():
        engine.dispose()


@pytest.mark.parametrize("filters", [QueueFilter(dataset="toy"), QueueFilter()], ids=["one dataset", "no filter"])
def test_claims_and_saves_cost_the_same_at_20x_the_items(stores, filters):
    small = _costs(*stores[SMALL], filters)
    large = _costs(*stores[LARGE], filters)
    assert all(small.values()), small  # the handler counted: the comparison below means something
    for call, steps in large.items():
        assert steps <= 2 * small[call] + 10, (call, small, large)
