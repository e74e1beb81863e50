"""Pause Python's cyclic garbage collector around a bulk import.

Why: a 100k-list import builds millions of small objects (decoded JSON, Passages, row dicts)
that all stay alive until the import ends. Each allocation burst triggers a collection that
re-walks every live container, and none of them is cyclic garbage (reference counting frees
what is dropped), so about 45% of validation time went to collections that free nothing.
The pause is process-wide: cycles made meanwhile by other threads wait for the next full
collection.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused_gc() -> Iterator[None]:
    """Disable the cyclic collector inside the block; re-enable it only if this call disabled it."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            if not gc.get_freeze_count():
                # Hand what the block made to the oldest generation unscanned (freeze zeroes the
                # young count, unfreeze merges into the oldest): otherwise the next allocation
                # starts a young collection that walks the whole new batch and frees nothing.
                gc.freeze()
                gc.unfreeze()
            gc.enable()
