"""together: gather without a task for a single awaitable."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from chat_runtime.together import together


def _counting_tasks() -> list[str]:
    made: list[str] = []

    def counted(loop: asyncio.AbstractEventLoop, coro: Any, **options: Any) -> asyncio.Task[Any]:
        made.append(coro.__qualname__)
        return asyncio.Task(coro, loop=loop, **options)

    asyncio.get_running_loop().set_task_factory(counted)
    return made


async def _after(seconds: float, value: int) -> int:
    await asyncio.sleep(seconds)
    return value


async def test_one_awaitable_is_awaited_in_place_without_a_task() -> None:
    made = _counting_tasks()
    try:
        assert await together([_after(0, 7)]) == [7]
    finally:
        asyncio.get_running_loop().set_task_factory(None)
    assert made == []


async def test_several_run_concurrently_and_answer_in_their_order() -> None:
    second_started = asyncio.Event()

    async def first() -> int:
        await second_started.wait()  # one after another, this would wait for ever
        return 1

    async def second() -> int:
        second_started.set()
        return 2

    async with asyncio.timeout(10):
        assert await together([first(), second()]) == [1, 2]


async def test_a_failure_reaches_the_caller_with_one_awaitable_or_several() -> None:
    async def fail() -> int:
        raise ValueError("no")

    with pytest.raises(ValueError, match="no"):
        await together([fail()])
    with pytest.raises(ValueError, match="no"):
        await together([_after(0, 1), fail()])
