"""The in-process bus passes the same contract suite as the Kafka bus."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from chat_contracts.envelope import Record
from chat_contracts.spec import TopicSpec
from chat_contracts.topics import DLQ_PARTITIONS
from chat_runtime.bus.inprocess import InProcessBroker, InProcessBus
from chat_runtime.bus.port import Bus, RetryPolicy
from chat_runtime.testing.bus_contract import BusContract, BusReadinessContract, BusStartContract
from chat_runtime.testing.bus_pace_contract import BusPaceContract

FAST_RETRY = RetryPolicy(max_attempts=3, initial_backoff=0.005, max_backoff=0.05)


class InProcessHarness:
    def __init__(self, *, roundtrip: bool = True) -> None:
        self.broker = InProcessBroker(roundtrip=roundtrip)
        self.buses: list[InProcessBus] = []

    async def new_bus(self) -> Bus:
        bus = InProcessBus(self.broker, retry=FAST_RETRY)
        await bus.start()
        self.buses.append(bus)
        return bus

    async def create(self, spec: TopicSpec) -> None:
        self.broker.ensure_topic(spec.name, spec.partitions)
        self.broker.ensure_topic(spec.dlq, DLQ_PARTITIONS)

    async def inject(self, spec: TopicSpec, record: Record) -> None:
        await self.broker.append(record, partitions=spec.partitions)

    async def read_raw(self, topic: str, *, count: int, timeout: float) -> list[Record]:
        async def poll() -> list[Record]:
            while len(self.broker.records(topic)) < count:
                await asyncio.sleep(0.01)
            return self.broker.records(topic)[:count]

        return await asyncio.wait_for(poll(), timeout)

    async def close(self) -> None:
        for bus in self.buses:
            await bus.stop()
        await self.broker.stop_all()


class TestInProcessBus(BusContract, BusStartContract, BusReadinessContract, BusPaceContract):
    quiet_period = 0.2

    @pytest.fixture
    async def harness(self) -> AsyncIterator[InProcessHarness]:
        harness = InProcessHarness()
        yield harness
        await harness.close()


class TestInProcessBusHandingOverEnvelopes(BusContract, BusStartContract, BusReadinessContract, BusPaceContract):
    """The composition ``chat up`` uses: consumers get the published envelopes instead of decoding their bytes."""

    quiet_period = 0.2

    @pytest.fixture
    async def harness(self) -> AsyncIterator[InProcessHarness]:
        harness = InProcessHarness(roundtrip=False)
        yield harness
        await harness.close()
