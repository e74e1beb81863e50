"""asyncio helpers that behave the same on Python 3.10 (the Space's) and 3.11+.

`asyncio.TaskGroup`, `asyncio.timeout` and `ExceptionGroup` are 3.11-only; these give the two
behaviours the backends rely on with what 3.10 has.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable
from typing import TypeVar

T = TypeVar("T")

# On 3.10 `asyncio.TimeoutError` is its own class; from 3.11 it is the builtin `TimeoutError`.
TIMEOUT_ERRORS: tuple[type[BaseException], ...] = (TimeoutError, asyncio.TimeoutError)


async def all_or_first_failure(awaitables: Iterable[Awaitable[T]]) -> list[T]:
    """Await every awaitable concurrently; results in input order.

    The first failure cancels the others, waits for them to finish cancelling, and is raised
    itself (not wrapped in a group) — what a TaskGroup does, minus the ExceptionGroup.
    """
    tasks = [asyncio.ensure_future(item) for item in awaitables]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


async def within(seconds: float | None, awaitable: Awaitable[T]) -> T:
    """`awaitable`'s result, or the builtin TimeoutError after `seconds` (None: no limit)."""
    try:
        return await asyncio.wait_for(awaitable, seconds)
    except asyncio.TimeoutError as exc:  # noqa: UP041 - a distinct class on 3.10
        raise TimeoutError(f"no answer within {seconds} s") from exc
