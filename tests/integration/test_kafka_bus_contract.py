"""The Kafka bus passes the bus contract suite against a real broker."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaConnectionError

from chat_contracts.envelope import Envelope, Record, headers_from
from chat_contracts.spec import TopicSpec
from chat_runtime.bus.kafka import KafkaBus
from chat_runtime.bus.kafka_consumer import KafkaSubscription
from chat_runtime.bus.kafka_setup import KafkaConfig, ensure_topics
from chat_runtime.bus.partitioner import partition_for
from chat_runtime.bus.port import Bus, Outgoing, Pace, PoisonRecord, RetryPolicy, Subscription
from chat_runtime.testing.bus_contract import BusContract, BusReadinessContract, BusStartContract
from chat_runtime.testing.bus_harness import SOURCE, Collector, Ping, make_spec, settle
from chat_runtime.testing.bus_pace_contract import FILL, HOUR, Batches, BusPaceContract

FAST_RETRY = RetryPolicy(max_attempts=3, initial_backoff=0.01, max_backoff=0.1)
HOUR_MS = 3_600_000


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

    async def new_bus(self, **config: Any) -> Bus:
        """A started bus; ``config`` replaces fields of the harness's ``KafkaConfig`` (``commit_interval_ms``)."""
        bus = KafkaBus(replace(self.config, **config), retry=FAST_RETRY)
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

    async def test_a_rebalance_during_a_paced_wait_hands_the_records_taken_over_unhandled(
        self, harness: KafkaHarness
    ) -> None:
        spec = make_spec(partitions=2)
        await harness.create(spec)
        first, second = await harness.new_bus(), await harness.new_bus()
        got = Collector()
        joining: list[asyncio.Task[Subscription]] = []

        def pause() -> float:
            # The first member waits with a record of each partition; a second member joins and takes one of them.
            if not joining:
                joining.append(asyncio.create_task(second.subscribe(spec, group="g-paced-rebalance", handler=got.add)))
                return HOUR
            return 0.0

        pace = Pace(pause, fill=FILL, longest=HOUR)
        await first.subscribe(spec, group="g-paced-rebalance", handler=got.add, batch=Batches().batch, pace=pace)
        keys = {partition_for(f"k{n}".encode(), 2): f"k{n}" for n in range(20)}
        await first.publish_all([Outgoing(spec, Ping(key=keys[p], n=p)) for p in (0, 1)], source=SOURCE)
        await got.wait_for(lambda: len(got.seen) >= 2, timeout=60)
        await settle(self.quiet_period)
        assert joining
        assert sorted(got.numbers()) == [0, 1], "a record taken before the rebalance was handled by both members"

    async def test_a_dead_letter_that_cannot_be_written_is_tried_again_and_the_partition_loses_nothing(
        self, harness: KafkaHarness
    ) -> None:
        spec = make_spec(partitions=1)
        await harness.create(spec)
        bus = await harness.new_bus()
        assert isinstance(bus, KafkaBus)
        written = bus.publish_record
        refused: list[Record] = []

        async def unreachable_once(record: Record) -> None:
            if not refused:
                refused.append(record)
                raise KafkaConnectionError("the dead-letter topic's broker is unreachable")
            await written(record)

        bus.publish_record = unreachable_once  # type: ignore[method-assign]
        got = Collector()

        async def handler(envelope: Envelope) -> None:
            if isinstance(envelope.data, Ping) and envelope.data.n == 0:
                raise PoisonRecord("never")
            await got.add(envelope)

        await bus.subscribe(spec, group="g-dlq-unreachable", handler=handler)
        await bus.publish_all([Outgoing(spec, Ping(key="k", n=n)) for n in range(3)], source=SOURCE)
        await got.wait_for(lambda: len(got.seen) >= 2)
        dead = await harness.read_raw(spec.dlq, count=1, timeout=30)
        await settle(self.quiet_period)
        assert refused, "the dead letter was never refused: the test did not test the lane's retry"
        assert got.numbers() == [1, 2]
        assert [r.value for r in dead] == [refused[0].value]

    async def test_a_crash_re_delivers_what_was_handled_since_the_last_commit_and_a_stop_commits_at_once(
        self, harness: KafkaHarness
    ) -> None:
        group = "g-commit-interval"
        spec, producer, subscription, commits = await _five_batches(harness, group=group, commit_interval_ms=HOUR_MS)
        await settle(1.0)
        assert commits == [1], "after the first batch's commit, the next waits for the interval"
        await subscription.abort()

        again = Collector()
        restarted = await (await harness.new_bus(commit_interval_ms=HOUR_MS)).subscribe(
            spec, group=group, handler=again.add
        )
        await again.wait_for(lambda: len(again.seen) >= 4)
        await settle(self.quiet_period)
        assert again.numbers() == [1, 2, 3, 4], "the records handled since the last commit, and only those"
        await restarted.stop()  # commits at once, interval or not
        await self._a_new_member_starts_after_the_five(harness, producer, spec, group)

    async def test_what_waited_for_the_commit_interval_is_committed_once_it_is_over(
        self, harness: KafkaHarness
    ) -> None:
        group = "g-commit-later"
        spec, producer, subscription, commits = await _five_batches(harness, group=group, commit_interval_ms=1_000)
        assert commits[:1] == [1]
        async with asyncio.timeout(10):
            while commits[-1] != 5:
                await asyncio.sleep(0.05)
        assert commits == [1, 5], "the four later batches share one commit"
        await subscription.abort()  # a crash after the timed commit re-delivers nothing
        await self._a_new_member_starts_after_the_five(harness, producer, spec, group)

    async def _a_new_member_starts_after_the_five(
        self, harness: KafkaHarness, producer: Bus, spec: TopicSpec, group: str
    ) -> None:
        got = Collector()
        await (await harness.new_bus()).subscribe(spec, group=group, handler=got.add)
        await producer.publish(spec, Ping(key="k", n=5), source=SOURCE)
        await got.wait_for(lambda: len(got.seen) >= 1)
        await settle(self.quiet_period)
        assert got.numbers() == [5]

    async def test_a_broadcast_reader_holding_a_long_fetch_gets_a_record_as_soon_as_it_is_published(
        self, harness: KafkaHarness
    ) -> None:
        spec = make_spec(partitions=3)
        await harness.create(spec)
        producer = await harness.new_bus()
        reader = await harness.new_bus(broadcast_fetch_max_wait_ms=30_000)
        got = Collector()
        await reader.subscribe(spec, group="g-held-fetch", handler=got.add, start="latest", broadcast=True)
        await settle(1.0)  # its first fetch is held by the broker by now
        await producer.publish(spec, Ping(key="k", n=1), source=SOURCE)
        await got.wait_for(lambda: len(got.seen) >= 1, timeout=15)  # the held fetch would end after 30 s
        assert got.numbers() == [1]


def _count_commits(subscription: Subscription) -> list[int]:
    """The offset each commit of a one-partition subscription carried, in order (filled as it commits)."""
    assert isinstance(subscription, KafkaSubscription)
    consumer = subscription.consumer
    real = consumer.commit
    carried: list[int] = []

    async def commit(offsets: Any = None) -> None:
        carried.extend(offsets.values())
        await real(offsets)

    consumer.commit = commit
    return carried


async def _five_batches(
    harness: KafkaHarness, *, group: str, commit_interval_ms: int
) -> tuple[TopicSpec, Bus, Subscription, list[int]]:
    """A member of ``group`` on a new one-partition topic, with that commit interval, that handled five records (0 to
    4) one batch each; returns the topic, a producer, the member's subscription and the offsets its commits carried
    (filled as it commits)."""
    spec = make_spec(partitions=1)
    await harness.create(spec)
    producer = await harness.new_bus()
    got = Collector()
    member = await harness.new_bus(commit_interval_ms=commit_interval_ms)
    subscription = await member.subscribe(spec, group=group, handler=got.add)
    commits = _count_commits(subscription)
    for n in range(5):
        await producer.publish(spec, Ping(key="k", n=n), source=SOURCE)
        await got.wait_for(lambda: len(got.seen) > n)  # noqa: B023 - awaited before n moves on
    return spec, producer, subscription, commits
