"""Waiting for several awaitables at once, on the hot paths."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


async def together(awaitables: list[Coroutine[Any, Any, T]]) -> list[T]:
    """``asyncio.gather``, but a single awaitable (a batch of one room, a fetch of one partition: the usual case) is
    awaited in place. gather makes a task of each one, and a task starts a turn of the event loop later, which
    under load is milliseconds."""
    if len(awaitables) == 1:
        return [await awaitables[0]]
    return list(await asyncio.gather(*awaitables))
