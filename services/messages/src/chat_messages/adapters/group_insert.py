"""Group commit for ordered inserts: the inserts that callers ask for while one is being written go to the store
together, as one ordered ``insert_many``.

Each partition's batch of sends arrives as its own ordered insert (decisions/0011). With many busy rooms the
partitions' batches are small (one message each at a few hundred messages per second over 20 rooms), so the store
would answer one command per message. Here, while a write is in flight the next callers wait, and the next write
carries all of them: the number of store commands follows the store's speed, not the number of partitions.

Writes may also be paced once sends come quickly: with ``writes_per_second`` set, while more than ``pace_above``
sends a second arrive (counted over the last 100 ms), a write waits until ``batch`` documents are waiting or
``1 / writes_per_second`` has passed since the previous one started, whichever comes first, and the sends
arriving meanwhile join it. A busy store then gets fewer, larger writes, each cheaper per message than a write of
one, for a bounded delay (at most the interval); below that rate every write starts at once, so a conversation at
human speed never waits, and well above it the batch fills while the previous write is in flight, so the fastest
rates do not wait either. ``pause()`` tells a caller how long the next write would wait: with one busy partition
its consumer is the only caller, so it waits that long before taking its next batch (the bus's ``Pace``) and
brings what arrived meanwhile, instead of a small batch that waits here while nothing can join it.

Every caller keeps the meaning of its own ordered insert. The joined list is ordered too, so when the store refuses
a document, every caller before it is fully written, the refused document's caller learns how many of its own went
in and why the next did not, and the callers after it were not attempted: they go first into the next write.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pymongo.errors import BulkWriteError

RATE_WINDOW = 0.1
"""Seconds over which the rate of arriving sends is counted."""

Document = dict[str, Any]
Write = Callable[[list[Document]], Awaitable[object]]


@dataclass(frozen=True, slots=True)
class Written:
    """What one caller's ordered insert did."""

    inserted: int
    """How many of its documents, from the first, are stored."""
    failure: Mapping[str, Any] | None = None
    """The store's write error for the next one (None when all were stored)."""


@dataclass(slots=True)
class _Request:
    documents: list[Document]
    done: asyncio.Future[Written] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class GroupInsert:
    """Ordered inserts into one collection, joined while a write is in flight (one write at a time)."""

    def __init__(
        self, write: Write, *, writes_per_second: float = 0.0, pace_above: float = 200.0, batch: int = 6
    ) -> None:
        self._write = write
        self._interval = 1.0 / writes_per_second if writes_per_second > 0 else 0.0
        self._batch = batch
        self._waiting_documents = 0
        self._filled = asyncio.Event()
        """Set when ``batch`` documents wait: a paced write need not wait for the rest of its interval."""
        self._last_start = -math.inf
        self._arrivals: deque[float] = deque()
        """When the documents of the last ``RATE_WINDOW`` seconds arrived."""
        self._busy_count = pace_above * RATE_WINDOW
        self._waiting: list[_Request] = []
        self._writer: asyncio.Task[None] | None = None
        self._last_callers = 0
        """How many callers the latest write joined: more than one means several partitions feed the store."""

    async def insert(self, documents: Sequence[Document]) -> Written:
        """Insert ``documents`` in order, with whatever else is waiting; a store error other than a refused
        document (a lost connection, a write concern error) is raised to every caller of that write."""
        request = _Request(list(documents))
        if self._interval:
            self._count_arrivals(len(request.documents))
        self._waiting.append(request)
        self._waiting_documents += len(request.documents)
        if self._waiting_documents >= self._batch:
            self._filled.set()
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_all(), name="messages:group-insert")
        return await request.done

    @property
    def paced(self) -> bool:
        """Whether writes are paced at all (``writes_per_second`` > 0)."""
        return self._interval > 0

    @property
    def batch(self) -> int:
        """How many waiting documents start a paced write before its interval is over."""
        return self._batch

    def pause(self) -> float:
        """How long a caller with documents on the way (the consumer of a busy partition) should wait to bring
        them all to the next write: until that write would start, while this caller is the store's only writer.
        When the latest write joined several callers, others' inserts fill the writes while this one waits here
        (they join during the paced write's own wait), and holding a partition back would only delay it: 0."""
        if self._last_callers > 1:
            return 0.0
        return self._paced_wait()

    def _paced_wait(self) -> float:
        """Seconds until the next write would start, 0 when it would start now: until the interval since the
        previous one is over while sends come fast (paced), else 0."""
        if not self._interval:
            return 0.0
        now = time.monotonic()
        self._forget_arrivals_before(now - RATE_WINDOW)
        if len(self._arrivals) <= self._busy_count:
            return 0.0
        return max(0.0, self._last_start + self._interval - now)

    def _count_arrivals(self, documents: int) -> None:
        now = time.monotonic()
        self._arrivals.extend([now] * documents)
        self._forget_arrivals_before(now - RATE_WINDOW)

    def _forget_arrivals_before(self, moment: float) -> None:
        while self._arrivals and self._arrivals[0] < moment:
            self._arrivals.popleft()

    async def _write_all(self) -> None:
        try:
            while self._waiting:
                pause = self._paced_wait()
                if pause > 0 and self._waiting_documents < self._batch:
                    self._filled.clear()
                    # The ones arriving meanwhile join this write. A timeout scope, not wait_for: no task per wait.
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(pause):
                            await self._filled.wait()
                # A caller that gave up before its turn (cancelled) is not written.
                batch = [r for r in self._waiting if not r.done.done()]
                self._waiting = []
                self._waiting_documents = 0
                if batch:
                    not_attempted = await self._write_batch(batch)
                    self._waiting[:0] = not_attempted
                    self._waiting_documents += sum(len(r.documents) for r in not_attempted)
        finally:  # cancelled (shutdown) with callers waiting: they must not wait forever
            for request in self._waiting:
                request.done.cancel()
            self._waiting = []
            self._waiting_documents = 0

    async def _write_batch(self, batch: list[_Request]) -> list[_Request]:
        """Write ``batch`` as one ordered insert; returns the callers that were not attempted."""
        documents = [d for request in batch for d in request.documents]
        self._last_start = time.monotonic()
        self._last_callers = len(batch)
        try:
            await self._write(documents)
        except BulkWriteError as error:
            return _settle_refusal(batch, error)
        except Exception as error:  # the store is unreachable or failed: every caller of this write hears it
            for request in batch:
                _fail(request, error)
            return []
        except BaseException:
            for request in batch:
                request.done.cancel()
            raise
        for request in batch:
            _answer(request, Written(inserted=len(request.documents)))
        return []


def _settle_refusal(batch: list[_Request], error: BulkWriteError) -> list[_Request]:
    failures = error.details.get("writeErrors") or []
    if not failures:  # nothing refused, but the write is not known to be durable (a write concern error)
        for request in batch:
            _fail(request, error)
        return []
    failed_at = int(failures[0].get("index", error.details.get("nInserted", 0)))
    start = 0
    for position, request in enumerate(batch):
        end = start + len(request.documents)
        if failed_at < end:
            _answer(request, Written(inserted=failed_at - start, failure=failures[0]))
            return batch[position + 1 :]
        _answer(request, Written(inserted=len(request.documents)))
        start = end
    raise RuntimeError(f"the store refused document {failed_at} of {start}")


def _answer(request: _Request, written: Written) -> None:
    if not request.done.done():
        request.done.set_result(written)


def _fail(request: _Request, error: Exception) -> None:
    """Each caller raises its own copy: one instance raised in several tasks would gather all their frames."""
    if request.done.done():
        return
    try:
        own = copy.copy(error)
    except Exception:  # an exception type that cannot be copied: the original, rather than none
        own = error
    request.done.set_exception(own)
