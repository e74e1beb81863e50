"""The backend pool: each backend loaded once, a failed load retried, local models capped."""

from __future__ import annotations

import pytest
from openai_server import OpenAIServer
from scripted_backend import ScriptedBackend

from reasonrank.backends import make_backend
from reasonrank.backends.base import BackendConfig
from reasonrank.backends.pool import BackendPool


@pytest.fixture(scope="module")
def server():
    with OpenAIServer() as running:
        yield running


def test_pool_loads_each_backend_once_and_retries_a_failed_load(server):
    made = []

    def factory(config: BackendConfig):
        made.append(config.model)
        if config.model == "broken":
            raise RuntimeError("load failed")
        return make_backend(config)

    pool = BackendPool(factory)
    config = BackendConfig(kind="openai", model="test-model", base_url=server.base_url)
    with pool.lease(config) as first, pool.lease(config) as second:  # shared: HTTP backends keep no state
        assert first is second
    for _ in range(2):
        with pytest.raises(RuntimeError, match="load failed"), pool.lease(BackendConfig(kind="openai", model="broken")):
            pass
    assert made == ["test-model", "broken", "broken"]
    pool.close()


def test_pool_keeps_at_most_max_local_models_and_never_closes_one_in_use():
    """Loading a third local model closes the least recently used idle one; a leased one stays."""
    closed: list[str] = []

    class Closing(ScriptedBackend):
        def __init__(self, model: str) -> None:
            super().__init__()
            self.model = model

        def close(self) -> None:
            closed.append(self.model)

    pool = BackendPool(lambda config: Closing(config.model), max_local=2)
    local = {name: BackendConfig(kind="transformers", model=name) for name in ("a", "b", "c", "d")}
    with pool.lease(local["a"]) as first:
        with pool.lease(local["b"]):
            pass
        with pool.lease(local["c"]):  # "a" is in use, so "b" (idle) goes
            pass
        assert closed == ["b"] and pool.loaded() == 2
    with pool.lease(local["a"]) as again:
        assert again is first  # reused, not reloaded
    with pool.lease(local["d"]):  # "c" is now the least recently used
        pass
    assert closed == ["b", "c"] and pool.loaded() == 2
    pool.close()
    assert sorted(closed) == ["a", "b", "c", "d"]
