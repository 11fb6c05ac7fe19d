"""The Kafka bus passes the bus contract suite against a real broker."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from chat_contracts.envelope import Record, headers_from
from chat_contracts.spec import TopicSpec
from chat_runtime.bus.kafka import KafkaBus, KafkaConfig, ensure_topics
from chat_runtime.bus.port import Bus, RetryPolicy
from chat_runtime.testing.bus_contract import BusContract, BusReadinessContract, BusStartContract
from chat_runtime.testing.bus_pace_contract import BusPaceContract

FAST_RETRY = RetryPolicy(max_attempts=3, initial_backoff=0.01, max_backoff=0.1)


class KafkaHarness:
    def __init__(self, bootstrap: str) -> None:
        self.config = KafkaConfig(
            bootstrap=bootstrap,
            client_id=f"contract-{uuid.uuid4().hex[:6]}",
            session_timeout_ms=6_000,
            heartbeat_interval_ms=500,
            poll_timeout_ms=100,
        )
        self.buses: list[KafkaBus] = []
        self.topics: list[str] = []

    async def new_bus(self) -> Bus:
        bus = KafkaBus(self.config, retry=FAST_RETRY)
        await bus.start()
        self.buses.append(bus)
        return bus

    async def create(self, spec: TopicSpec) -> None:
        await ensure_topics(self.config, [spec])
        self.topics += [spec.name, spec.dlq]

    async def inject(self, spec: TopicSpec, record: Record) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=self.config.bootstrap, acks="all")
        await producer.start()
        try:
            await producer.send_and_wait(record.topic, value=record.value, key=record.key, headers=list(record.headers))
        finally:
            await producer.stop()

    async def read_raw(self, topic: str, *, count: int, timeout: float) -> list[Record]:
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=self.config.bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        found: list[Record] = []
        try:
            async with asyncio.timeout(timeout):
                while len(found) < count:
                    batches = await consumer.getmany(timeout_ms=200)
                    for records in batches.values():
                        found.extend(
                            Record(
                                topic=r.topic,
                                key=r.key or b"",
                                value=r.value or b"",
                                headers=headers_from(r.headers),
                            )
                            for r in records
                        )
        finally:
            await consumer.stop()
        return found[:count]

    async def close(self) -> None:
        for bus in self.buses:
            await bus.stop()
        if self.topics:
            admin = AIOKafkaAdminClient(bootstrap_servers=self.config.bootstrap)
            await admin.start()
            try:
                await admin.delete_topics(self.topics)
            finally:
                await admin.close()


class TestKafkaBus(BusContract, BusStartContract, BusReadinessContract, BusPaceContract):
    quiet_period = 2.0

    @pytest.fixture
    async def harness(self, kafka_bootstrap: str) -> AsyncIterator[KafkaHarness]:
        harness = KafkaHarness(kafka_bootstrap)
        yield harness
        await harness.close()
