"""What the bus contract suite works with: its test records (``Ping``, ``Pong``) on a fresh topic per test, the
``BusHarness`` an adapter's test module provides, a ``Collector`` of what handlers received, and the waits for
catching up and consumer lag. Apart from the suite (bus_contract.py) so its assertions read on their own, and so
other tests (tracing) can publish the same records without the suite.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Literal, Protocol

from pydantic import Field

from chat_contracts.base import Contract
from chat_contracts.envelope import Envelope, Record
from chat_contracts.spec import TopicSpec
from chat_runtime.bus.metrics import BusMetrics
from chat_runtime.bus.port import Bus, NotCaughtUp, Subscription

SOURCE = "contract-test"


class Ping(Contract):
    """A test payload keyed by ``key``."""

    type: Literal["test.ping"] = "test.ping"
    key: str = Field(max_length=50)
    n: int


class Pong(Contract):
    """A second test payload on the same topic."""

    type: Literal["test.pong"] = "test.pong"
    key: str = Field(max_length=50)
    note: str = Field(default="", max_length=50)


def make_spec(partitions: int = 6) -> TopicSpec:
    """A fresh topic for one test, so tests never see each other's records."""
    return TopicSpec(
        name=f"test.contract.{uuid.uuid4().hex[:12]}",
        key_field="key",
        partitions=partitions,
        cleanup_policy="delete",
        retention_ms=3_600_000,
        producers=frozenset({SOURCE}),
        consumers=frozenset({SOURCE}),
        payloads=(Ping, Pong),
    )


class BusHarness(Protocol):
    """What the suite needs from an adapter's test set-up."""

    async def new_bus(self) -> Bus:
        """A started bus, as a separate process would have; stopped by the harness at the end."""

    async def create(self, spec: TopicSpec) -> None:
        """Make ``spec``'s topic and dead-letter topic exist."""

    async def inject(self, spec: TopicSpec, record: Record) -> None:
        """Publish raw bytes on ``record.topic``, bypassing the contracts (bad records)."""

    async def read_raw(self, topic: str, *, count: int, timeout: float) -> list[Record]:
        """Read ``count`` records of ``topic`` from the beginning, failing after ``timeout`` seconds."""


class Collector:
    """Collects handled envelopes and lets a test wait for a condition on them."""

    def __init__(self) -> None:
        self.seen: list[Envelope] = []
        self._changed = asyncio.Condition()

    async def add(self, envelope: Envelope) -> None:
        async with self._changed:
            self.seen.append(envelope)
            self._changed.notify_all()

    def numbers(self) -> list[int]:
        return [e.data.n for e in self.seen if isinstance(e.data, Ping)]

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 30.0) -> None:
        async def waiting() -> None:
            async with self._changed:
                await self._changed.wait_for(predicate)

        await asyncio.wait_for(waiting(), timeout)


async def publish_many(bus: Bus, spec: TopicSpec, count: int, *, keys: int = 20, start: int = 0) -> None:
    """Publish Ping n=start..start+count-1 spread over ``keys`` keys."""
    for n in range(start, start + count):
        await bus.publish(spec, Ping(key=f"k{n % keys}", n=n), source=SOURCE)


async def caught_up(subscription: Subscription) -> bool:
    """Whether ``subscription`` says it holds its assignment and has caught up to the head it saw."""
    try:
        await subscription.check_caught_up()
    except NotCaughtUp:
        return False
    return True


async def until_caught_up(subscription: Subscription, timeout: float = 30.0) -> None:
    """Wait for ``subscription`` to catch up; fail after ``timeout`` seconds saying why it has not."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            await subscription.check_caught_up()
        except NotCaughtUp as exc:
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"not caught up after {timeout}s: {exc}") from exc
            await asyncio.sleep(0.05)
        else:
            return


def scraped(bus: Bus, sample_name: str, **labels: str) -> list[float]:
    """The values of the bus's samples called ``sample_name`` with ``labels``, as a scrape reads them."""
    metrics = getattr(bus, "metrics", None)
    assert isinstance(metrics, BusMetrics), "the bus under test keeps its BusMetrics as .metrics"
    return [
        sample.value
        for metric in metrics.registry.collect()
        for sample in metric.samples
        if sample.name == sample_name and all(sample.labels.get(k) == v for k, v in labels.items())
    ]


def consumer_lag(bus: Bus, group: str, topic: str) -> int | None:
    """The bus's ``chat_bus_consumer_lag`` of ``group`` on ``topic``, summed over partitions, as a scrape reads it
    (None: no partition reported)."""
    values = scraped(bus, "chat_bus_consumer_lag", group=group, topic=topic)
    return int(sum(values)) if values else None


def published_count(bus: Bus, topic: str) -> int:
    """The bus's ``chat_bus_published_total`` for ``topic``, as a scrape reads it (0: nothing counted)."""
    return int(sum(scraped(bus, "chat_bus_published_total", topic=topic)))


async def until_lag(bus: Bus, group: str, topic: str, expected: int, timeout: float = 30.0) -> None:
    """Scrape until the lag of ``group`` on ``topic`` is ``expected``; fail after ``timeout`` saying what it was."""
    deadline = asyncio.get_running_loop().time() + timeout
    while (seen := consumer_lag(bus, group, topic)) != expected:
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"consumer lag of {group} on {topic}: {seen} after {timeout}s, not {expected}")
        await asyncio.sleep(0.1)


async def settle(seconds: float) -> None:
    """Give a consumer time to (wrongly) deliver more; used only to prove something did NOT happen."""
    await asyncio.sleep(seconds)
