"""Backends loaded once and reused across calls: what keeps the Arena from reloading a 7B model
on every click, and from loading more local models than memory holds."""

from __future__ import annotations

import contextlib
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator

from reasonrank.backends import make_backend
from reasonrank.backends.base import Backend, BackendConfig

#: local models kept loaded at most (the Arena runs up to four side by side)
MAX_LOCAL = 4


class BackendPool:
    """Backends loaded once and reused across Arena runs (a 7B model takes a minute to load).

    A local model (and its tokenizer) must not generate for two runs at once, so each
    non-HTTP backend is leased to one lane at a time; OpenAI-compatible backends keep no state
    between calls and are shared freely. At most `max_local` local models stay loaded: loading
    one more closes the least recently used idle one, so a long-lived app that has shown many
    models does not keep them all in memory.
    """

    def __init__(self, factory: Callable[[BackendConfig], Backend] = make_backend, max_local: int = MAX_LOCAL) -> None:
        self._factory = factory
        self._max_local = max_local
        self._lock = threading.Lock()
        # key -> (lease lock, [backend] once loaded, is local), least recently leased first
        self._entries: OrderedDict[str, tuple[threading.Lock, list[Backend], bool]] = OrderedDict()

    @contextlib.contextmanager
    def lease(self, config: BackendConfig) -> Iterator[Backend]:
        key = json.dumps(config.to_dict(), sort_keys=True, default=str)
        local = config.kind != "openai"
        with self._lock:
            lock, holder, _ = self._entries.setdefault(key, (threading.Lock(), [], local))
            self._entries.move_to_end(key)
        with lock:
            if not holder:  # a failed load is not kept: the next run tries again
                holder.append(self._factory(config))
                if local:
                    self._evict(keep=key)
            if local:
                yield holder[0]
                return
        yield holder[0]

    def _evict(self, keep: str) -> None:
        """Close least recently used idle local models until at most `max_local` are loaded."""
        with self._lock:
            loaded = [(key, lock, holder) for key, (lock, holder, local) in self._entries.items() if local and holder]
            victims = []
            for key, lock, holder in loaded:
                if len(loaded) - len(victims) <= self._max_local:
                    break
                if key != keep and lock.acquire(blocking=False):  # in use by a lane: keep it
                    victims.append(holder.pop())
                    lock.release()
                    del self._entries[key]
        for backend in victims:
            backend.close()

    def loaded(self) -> int:
        """How many backends are loaded now (local and HTTP)."""
        with self._lock:
            return sum(1 for _, holder, _ in self._entries.values() if holder)

    def close(self) -> None:
        with self._lock:
            entries, self._entries = list(self._entries.values()), OrderedDict()
        for _, holder, _ in entries:
            for backend in holder:
                backend.close()
