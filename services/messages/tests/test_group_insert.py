"""Group commit of ordered inserts: callers waiting while a write is in flight share the next write, and each still
gets what its own ordered insert would have done."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest
from pymongo.errors import AutoReconnect, BulkWriteError

from chat_messages.adapters.group_insert import Document, GroupInsert, Written


class Store:
    """An ordered insert_many over a set of unique keys, which can be told to fail or hold the next write."""

    def __init__(self) -> None:
        self.stored: list[str] = []
        self.writes: list[list[str]] = []
        self.fail_next: Exception | None = None
        self.fail_write: tuple[int, Exception] | None = None
        """(n, error): the n-th write (from 1) raises error."""
        self.gate: asyncio.Event | None = None

    async def write(self, documents: list[Document]) -> None:
        keys = [d["key"] for d in documents]
        self.writes.append(keys)
        if self.gate is not None:
            await self.gate.wait()
        if self.fail_write is not None and self.fail_write[0] == len(self.writes):
            raise self.fail_write[1]
        if self.fail_next is not None:
            error, self.fail_next = self.fail_next, None
            raise error
        for index, key in enumerate(keys):
            if key in self.stored:
                raise BulkWriteError(
                    {"nInserted": index, "writeErrors": [{"index": index, "code": 11000, "errmsg": f"dup {key}"}]}
                )
            self.stored.append(key)


def docs(*keys: str) -> list[Document]:
    return [{"key": k} for k in keys]


async def test_callers_waiting_while_a_write_is_in_flight_share_the_next_write() -> None:
    store = Store()
    store.gate = asyncio.Event()
    group = GroupInsert(store.write)
    first = asyncio.create_task(group.insert(docs("a1")))
    await asyncio.sleep(0.01)  # the first write is in flight, held at the gate
    later = [asyncio.create_task(group.insert(docs(f"{r}1", f"{r}2"))) for r in "bcd"]
    await asyncio.sleep(0.01)
    store.gate.set()
    results = await asyncio.gather(first, *later)
    assert store.writes == [["a1"], ["b1", "b2", "c1", "c2", "d1", "d2"]]
    assert results == [Written(1), Written(2), Written(2), Written(2)]
    assert store.stored == ["a1", "b1", "b2", "c1", "c2", "d1", "d2"]


async def test_a_refusal_answers_its_caller_and_the_callers_after_it_are_written_next() -> None:
    store = Store()
    store.stored = ["c2"]  # c's second document collides
    store.gate = asyncio.Event()
    group = GroupInsert(store.write)
    head = asyncio.create_task(group.insert(docs("a1")))
    await asyncio.sleep(0.01)
    tasks = [asyncio.create_task(group.insert(docs(f"{r}1", f"{r}2", f"{r}3"))) for r in "bcd"]
    await asyncio.sleep(0.01)
    store.gate.set()
    a, b, c, d = await asyncio.gather(head, *tasks)
    assert (a, b, d) == (Written(1), Written(3), Written(3))
    assert c.inserted == 1
    assert c.failure is not None
    assert c.failure["errmsg"] == "dup c2"
    # d was not attempted by the refused write (ordered), so it went alone into the next one
    assert store.writes[1:] == [["b1", "b2", "b3", "c1", "c2", "c3", "d1", "d2", "d3"], ["d1", "d2", "d3"]]
    assert store.stored == ["c2", "a1", "b1", "b2", "b3", "c1", "d1", "d2", "d3"]


async def test_a_store_error_reaches_every_caller_of_that_write_as_its_own_instance() -> None:
    store = Store()
    store.gate = asyncio.Event()
    group = GroupInsert(store.write)
    store.fail_write = (2, AutoReconnect("connection lost"))
    head = asyncio.create_task(group.insert(docs("a1")))
    await asyncio.sleep(0.01)
    tasks = [asyncio.create_task(group.insert(docs(f"{r}1"))) for r in "bcd"]
    await asyncio.sleep(0.01)
    store.gate.set()
    outcomes = await asyncio.gather(head, *tasks, return_exceptions=True)
    assert outcomes[0] == Written(1)
    failed = outcomes[1:]
    assert all(isinstance(o, AutoReconnect) for o in failed)
    assert len({id(o) for o in failed}) == 3
    # the next caller is written as usual: the group keeps working after an error
    store.gate = None
    assert await group.insert(docs("e1")) == Written(1)
    assert store.stored == ["a1", "e1"]


async def test_a_write_concern_error_without_a_refused_document_reaches_every_caller() -> None:
    store = Store()
    store.fail_next = BulkWriteError({"nInserted": 2, "writeErrors": [], "writeConcernErrors": [{"code": 64}]})
    group = GroupInsert(store.write)
    with pytest.raises(BulkWriteError):
        await group.insert(docs("a1", "a2"))


async def test_a_caller_cancelled_before_its_turn_is_not_written() -> None:
    store = Store()
    store.gate = asyncio.Event()
    group = GroupInsert(store.write)
    head = asyncio.create_task(group.insert(docs("a1")))
    await asyncio.sleep(0.01)
    gone = asyncio.create_task(group.insert(docs("b1")))
    kept = asyncio.create_task(group.insert(docs("c1")))
    await asyncio.sleep(0.01)
    gone.cancel()
    store.gate.set()
    results: Sequence[Any] = await asyncio.gather(head, gone, kept, return_exceptions=True)
    assert isinstance(results[1], asyncio.CancelledError)
    assert store.stored == ["a1", "c1"]


async def test_paced_writes_start_at_most_once_per_interval_and_carry_what_arrived_meanwhile() -> None:
    store = Store()
    group = GroupInsert(store.write, writes_per_second=4, pace_above=0, batch=100)  # a write per 250 ms at most
    assert await group.insert(docs("a1")) == Written(1)  # the first write starts at once
    tasks = []
    for n in range(5):
        tasks.append(asyncio.create_task(group.insert(docs(f"b{n}"))))
        await asyncio.sleep(0.002)
    await asyncio.gather(*tasks)
    assert store.writes == [["a1"], ["b0", "b1", "b2", "b3", "b4"]]


async def test_a_paced_write_starts_as_soon_as_its_batch_is_full() -> None:
    store = Store()
    group = GroupInsert(store.write, writes_per_second=1 / 30, pace_above=0, batch=3)  # 30 s between writes
    assert await group.insert(docs("a1")) == Written(1)
    tasks = []
    for n in range(6):
        tasks.append(asyncio.create_task(group.insert(docs(f"b{n}"))))
        await asyncio.sleep(0.002)
    await asyncio.wait_for(asyncio.gather(*tasks), 10)  # full batches do not wait out the interval
    assert store.writes == [["a1"], ["b0", "b1", "b2"], ["b3", "b4", "b5"]]


async def test_an_unpaced_group_writes_at_once() -> None:
    store = Store()
    group = GroupInsert(store.write)
    for n in range(3):
        await group.insert(docs(f"a{n}"))
    assert store.writes == [["a0"], ["a1"], ["a2"]]


async def test_sends_slower_than_the_pacing_threshold_are_written_at_once() -> None:
    store = Store()
    group = GroupInsert(store.write, writes_per_second=1, pace_above=1_000_000)  # never this busy
    for n in range(3):
        await group.insert(docs(f"a{n}"))  # paced, each would wait a second: none does
    assert store.writes == [["a0"], ["a1"], ["a2"]]


async def test_an_unpaced_group_never_asks_a_caller_to_wait() -> None:
    store = Store()
    group = GroupInsert(store.write)
    await group.insert(docs("a1"))
    assert group.pause() == 0.0


async def test_a_paced_group_asks_callers_to_wait_for_the_rest_of_its_interval_after_a_write() -> None:
    store = Store()
    group = GroupInsert(store.write, writes_per_second=1 / 30, pace_above=0, batch=3)  # 30 s between writes
    assert group.pause() == 0.0  # nothing written yet: the first write would start at once
    await group.insert(docs("a1"))
    assert 0.0 < group.pause() <= 30.0
    assert group.batch == 3


async def test_a_paced_group_below_its_threshold_asks_no_caller_to_wait() -> None:
    store = Store()
    group = GroupInsert(store.write, writes_per_second=1, pace_above=1_000_000)  # never this busy
    await group.insert(docs("a1"))
    assert group.pause() == 0.0


async def test_a_paced_group_asks_no_caller_to_wait_while_several_callers_share_its_writes() -> None:
    store = Store()
    group = GroupInsert(store.write, writes_per_second=1 / 30, pace_above=0, batch=1)  # 30 s between writes
    await asyncio.gather(group.insert(docs("a1")), group.insert(docs("b1")))
    assert store.writes == [["a1", "b1"]]
    assert group.pause() == 0.0  # two partitions feed it: the other's inserts fill the next write anyway
    await group.insert(docs("a2"))  # a full batch: written at once, by this caller alone
    assert 0.0 < group.pause() <= 30.0
