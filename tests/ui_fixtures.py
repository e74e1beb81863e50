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
        labels.append(make_label(f"q{i}", docids, relevant=relevant, dataset=dataset, reasoning=reasoning,
                                 query=f"{dataset} question {i}", texts=texts))
    return labels


def _seed(engine) -> None:
    init_db(engine)
    import_batch(engine, make_batch(_labels("uitest", 8, size=8), dataset="uitest"))
    import_batch(engine, make_batch(_labels("browser", 3), dataset="browser"))
    xss = make_label("qx", ["xss-a", "xss-b", "xss-c"], relevant=["xss-a"], dataset="xss", reasoning=None,
                     source="model", texts={"xss-a": XSS_TEXT})
    import_batch(engine, make_batch([xss], dataset="xss"))
    for name in USERS:
        add_user(engine, name, "annotator", PASSWORD)


@pytest.fixture(scope="session")
def review_app(request, tmp_path_factory):
    """(base url, engine) of the app running in this process on a free loopback port."""
    if "app" not in _cache:
        os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
        from db.users import verify
        from ui import build_app

        engine = get_engine(f"sqlite:///{tmp_path_factory.mktemp('review-app') / 'reasonrank.db'}")
        _seed(engine)
        demo = build_app(engine)
        for attempt in range(3):
            try:
                _, url, _ = demo.launch(server_name="127.0.0.1", server_port=_free_port(), prevent_thread_lock=True,
                                        quiet=True, show_error=True,
                                        auth=lambda u, p: verify(engine, u, p) is not None)
                break
            except OSError:
                if attempt == 2:
                    raise
        request.config.add_cleanup(demo.close)
        _cache["app"] = (url.rstrip("/"), engine, demo)
    url, engine, demo = _cache["app"]
    yield url, engine
