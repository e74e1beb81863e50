"""A running review app for the UI tests: temp SQLite store, known users, small label batches.

One app per pytest session (importing gradio and building the Blocks costs seconds), shared by
the gradio_client and the browser tests through a module-level cache. Each test file works in
its own dataset with its own user, so claims and progress never interfere between them.
"""

from __future__ import annotations

import os
import socket

import pytest
from db_fixtures import make_batch, make_label

from db.engine import get_engine, init_db
from db.importer import import_batch
from db.users import add_user

PASSWORD = "review pass 42"
USERS = ("rev", "other", "web")
AGREE_USERS = ("ann1", "ann<i>2")
ADMIN = "boss"  # the Data tab (imports, exports) is for admins only
XSS_TEXT = '<script>window.__pwned=1</script> and <img src=x onerror="window.__pwned=2"> end'
_cache: dict[str, object] = {}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _labels(dataset: str, count: int, size: int = 5, texts: dict[str, str] | None = None) -> list:
    """`count` items whose self-consistency falls with the index: the first relevant passage
    sits ever lower in the teacher list, so the queue serves the last item first."""
    labels = []
    for i in range(count):
        docids = [f"{dataset}-{i}-d{j}" for j in range(size)]
        relevant = [docids[min(i, size - 1)]]
        reasoning = f"Passage [2] is on topic; [1] is not; {dataset} item {i}."
        labels.append(
            make_label(
                f"q{i}",
                docids,
                relevant=relevant,
                dataset=dataset,
                reasoning=reasoning,
                query=f"{dataset} question {i}",
                texts=texts,
            )
        )
    return labels


def _seed_agreement(engine) -> None:
    """Dataset `agree`: 3 items that each need 2 reviews; the two annotators split on q0 (accept vs
    fix) and q2 (fix vs reject) and agree on q1, so the Agreement tab has conflicts to adjudicate.
    The second annotator's name holds markup, to prove the tab escapes it; the admin is ADMIN."""
    from db.queue import QueueFilter, next_item
    from db.reviews import save_review

    import_batch(engine, make_batch(_labels("agree", 3, size=4), dataset="agree"), required_reviews=2)
    first, second = AGREE_USERS
    for name in AGREE_USERS:
        add_user(engine, name, "annotator", PASSWORD)
    swap = lambda order: [order[1], order[0]] + order[2:]  # noqa: E731
    plans = {
        first: {"q0": ("accept", None), "q1": ("fix", lambda o: o[::-1]), "q2": ("fix", lambda o: o[::-1])},
        second: {"q0": ("fix", swap), "q1": ("fix", lambda o: o[::-1]), "q2": ("reject", None)},
    }
    for name, plan in plans.items():
        while (view := next_item(engine, name, QueueFilter(dataset="agree"))) is not None:
            decision, reorder = plan[view.qid]
            save_review(
                engine,
                view.item_id,
                name,
                decision,
                view.version,
                ranking=reorder(view.teacher_ranking) if reorder else None,
                note="off topic" if decision == "reject" else None,
            )


def _seed(engine) -> None:
    init_db(engine)
    import_batch(engine, make_batch(_labels("uitest", 8, size=8), dataset="uitest"))
    import_batch(engine, make_batch(_labels("browser", 3), dataset="browser"))
    xss = make_label(
        "qx",
        ["xss-a", "xss-b", "xss-c"],
        relevant=["xss-a"],
        dataset="xss",
        reasoning=None,
        source="model",
        texts={"xss-a": XSS_TEXT},
    )
    import_batch(engine, make_batch([xss], dataset="xss"))
    for name in USERS:
        add_user(engine, name, "annotator", PASSWORD)
    _seed_agreement(engine)
    add_user(engine, ADMIN, "admin", PASSWORD)


@pytest.fixture(scope="session")
def review_app(request, tmp_path_factory):
    """(base url, engine) of the app running in this process on a free loopback port."""
    if "app" not in _cache:
        os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
        # jobs' logs and events, exports: never under the working directory
        os.environ.setdefault("REASONRANK_DATA", str(tmp_path_factory.mktemp("app-data")))
        from db.users import verify
        from ui import LAUNCH_OPTIONS, build_app

        engine = get_engine(f"sqlite:///{tmp_path_factory.mktemp('review-app') / 'reasonrank.db'}")
        _seed(engine)
        demo = build_app(engine)
        for attempt in range(3):
            try:
                _, url, _ = demo.launch(
                    server_name="127.0.0.1",
                    server_port=_free_port(),
                    prevent_thread_lock=True,
                    quiet=True,
                    show_error=True,
                    **LAUNCH_OPTIONS,
                    auth=lambda u, p: verify(engine, u, p) is not None,
                )
                break
            except OSError:
                if attempt == 2:
                    raise
        request.config.add_cleanup(demo.close)
        _cache["app"] = (url.rstrip("/"), engine, demo)
    url, engine, demo = _cache["app"]
    yield url, engine
