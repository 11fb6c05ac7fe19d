"""The transactional outbox against real PostgreSQL (the auth service's migrations) and a real Kafka broker.

Each test gets a fresh database and a fresh topic. What reached the broker is read back from the beginning of
every partition and decoded with the real contracts, so duplicates and per-key order are visible exactly.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import statistics
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, MetaData, func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from chat_auth.adapters.postgres import MIGRATIONS as AUTH_MIGRATIONS
from chat_contracts.base import Contract
from chat_contracts.envelope import Envelope, Record, decode, headers_from
from chat_contracts.examples import example
from chat_contracts.spec import TopicSpec
from chat_contracts.topics import USERS_EVENTS
from chat_contracts.users import UserRegistered, UserUpdated
from chat_runtime import postgres
from chat_runtime.bus.inprocess import InProcessBroker, InProcessBus
from chat_runtime.bus.kafka import KafkaBus
from chat_runtime.bus.kafka_setup import KafkaConfig, ensure_topics
from chat_runtime.bus.port import Bus, Handler, Outgoing, RetryPolicy, Subscription
from chat_runtime.outbox import OUTBOX, OutboxRelay, enqueue, notify_relay, outbox_table

FAST_RETRY = RetryPolicy(initial_backoff=0.05, max_backoff=0.2)
SLOW_POLL = 10.0  # longer than any wait below: delivery that fast came from wake() or a notification
NEVER_POLLS = 3600.0  # longer than any test: whatever it relays came from wake() or a notification


# --- set-up ---


@pytest.fixture
def database_url(pg_database: str) -> str:
    postgres.upgrade(pg_database, AUTH_MIGRATIONS)
    return pg_database


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = postgres.async_engine(database_url, pool_size=5)
    yield engine
    await engine.dispose()


@pytest.fixture
async def second_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """Another process's engine on the same database."""
    engine = postgres.async_engine(database_url, pool_size=5)
    yield engine
    await engine.dispose()


@dataclasses.dataclass
class Target:
    """Where relayed records land and how to read all of them back."""

    bus: Bus
    spec: TopicSpec
    read_all: Callable[[], Awaitable[list[Envelope]]]


@contextlib.asynccontextmanager
async def _kafka_target(bootstrap: str) -> AsyncIterator[Target]:
    spec = dataclasses.replace(USERS_EVENTS, name=f"{USERS_EVENTS.name}.outbox-{uuid.uuid4().hex[:8]}")
    config = KafkaConfig(bootstrap=bootstrap, client_id="outbox-it")
    await ensure_topics(config, [spec])
    bus = KafkaBus(config)
    try:
        await bus.start()
        yield Target(bus, spec, lambda: _read_kafka(bootstrap, spec))
    finally:
        await bus.stop()
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            await admin.delete_topics([spec.name, spec.dlq])
        finally:
            await admin.close()


@contextlib.asynccontextmanager
async def _inprocess_target() -> AsyncIterator[Target]:
    """The all-in-one mode's bus; its broker keeps every record while no consumer group subscribes."""
    spec = dataclasses.replace(USERS_EVENTS, name=f"{USERS_EVENTS.name}.outbox-{uuid.uuid4().hex[:8]}")
    broker = InProcessBroker()
    bus = InProcessBus(broker, topics={spec.name: spec})

    async def read_all() -> list[Envelope]:
        return [decode(record, spec) for record in broker.records(spec.name)]

    try:
        yield Target(bus, spec, read_all)
    finally:
        await bus.stop()


@pytest.fixture
async def kafka(kafka_bootstrap: str) -> AsyncIterator[Target]:
    async with _kafka_target(kafka_bootstrap) as target:
        yield target


@pytest.fixture(params=["kafka", "inprocess"])
async def either_bus(request: pytest.FixtureRequest, kafka_bootstrap: str) -> AsyncIterator[Target]:
    """The Kafka bus of the split mode, then the in-process bus of the all-in-one mode."""
    target = _kafka_target(kafka_bootstrap) if request.param == "kafka" else _inprocess_target()
    async with target as chosen:
        yield chosen


async def _read_kafka(bootstrap: str, spec: TopicSpec) -> list[Envelope]:
    """Every record of the topic, partition by partition in offset order, decoded with the contracts."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, isolation_level="read_committed")
    await consumer.start()
    try:
        partitions = [TopicPartition(spec.name, p) for p in range(spec.partitions)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        envelopes: list[Envelope] = []
        for tp in partitions:
            while await consumer.position(tp) < ends[tp]:
                fetched = await consumer.getmany(tp, timeout_ms=2_000)
                for consumed in fetched.get(tp, []):
                    record = Record(
                        topic=consumed.topic,
                        key=consumed.key or b"",
                        value=consumed.value or b"",
                        headers=headers_from(consumed.headers or ()),
                    )
                    envelopes.append(decode(record, spec))
        return envelopes
    finally:
        await consumer.stop()


class TappedBus:
    """A bus that passes records on and notes when; it can fail them for a while or hang after one."""

    def __init__(self, inner: Bus, *, outage_after: int | None = None, outage_seconds: float = 0.0) -> None:
        self.inner = inner
        self.published: list[tuple[float, Record]] = []
        self.failed_attempts = 0
        self.hang_after: int | None = None
        self.hanging = asyncio.Event()
        self.published_one = asyncio.Event()
        self._outage_after = outage_after
        self._outage_seconds = outage_seconds
        self._down_until = 0.0

    async def start(self) -> None:
        await self.inner.start()

    async def stop(self) -> None:
        await self.inner.stop()

    async def publish(self, spec: TopicSpec, data: Contract, **options: Any) -> Envelope:
        return await self.inner.publish(spec, data, **options)

    async def publish_all(self, messages: Sequence[Outgoing], *, source: str) -> list[Envelope]:
        return await self.inner.publish_all(messages, source=source)

    async def subscribe(self, spec: TopicSpec, *, group: str, handler: Handler, **options: Any) -> Subscription:
        return await self.inner.subscribe(spec, group=group, handler=handler, **options)

    async def publish_record(self, record: Record) -> None:
        if time.monotonic() < self._down_until:
            self.failed_attempts += 1
            raise ConnectionError("broker unreachable (simulated outage)")
        await self.inner.publish_record(record)
        self.published.append((time.perf_counter(), record))
        self.published_one.set()
        if len(self.published) == self._outage_after:
            self._down_until = time.monotonic() + self._outage_seconds
        if self.hang_after is not None and len(self.published) >= self.hang_after:
            self.hanging.set()
            await asyncio.Event().wait()  # the process "dies" here, after the publish, before the mark

    def ids(self) -> list[uuid.UUID]:
        return [uuid.UUID(record.header("id") or "") for _, record in self.published]


def _relay(engine: AsyncEngine, bus: Bus, **options: Any) -> OutboxRelay:
    settings: dict[str, Any] = {"name": "auth", "poll_interval": 0.1, "retry": FAST_RETRY, **options}
    return OutboxRelay(engine, bus, **settings)


def _event(user_id: uuid.UUID | None = None, n: int = 0) -> Contract:
    if n == 0:
        return example(UserRegistered, user_id=user_id or uuid.uuid4())
    return example(UserUpdated, user_id=user_id or uuid.uuid4(), display_name=f"Name {n}")


async def _commit(engine: AsyncEngine, spec: TopicSpec, *events: Contract) -> list[Envelope]:
    """Enqueue ``events`` in one committed transaction."""
    envelopes = [Envelope.wrap(e, source="auth", key=spec.key_of(e), correlation_id="it") for e in events]
    async with engine.begin() as connection:
        for envelope in envelopes:
            await enqueue(connection, envelope, topic=spec.name)
    return envelopes


async def _unpublished(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        query = select(func.count()).select_from(OUTBOX).where(OUTBOX.c.published_at.is_(None))
        return int((await connection.execute(query)).scalar_one())


async def _eventually(check: Callable[[], Awaitable[bool]], *, timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(0.02)


async def _drained(engine: AsyncEngine, *, timeout: float = 20.0) -> None:
    async def empty() -> bool:
        return await _unpublished(engine) == 0

    await _eventually(empty, timeout=timeout)


def _sample(relay: OutboxRelay, name: str, **labels: str) -> float:
    value = relay.metrics.registry.get_sample_value(name, {"outbox": relay.name, **labels})
    return 0.0 if value is None else value


def _per_key(envelopes: Sequence[Envelope]) -> dict[str, list[uuid.UUID]]:
    order: dict[str, list[uuid.UUID]] = defaultdict(list)
    for envelope in envelopes:
        order[envelope.key].append(envelope.id)
    return dict(order)


# --- the writer's side ---


async def test_an_event_enqueued_in_a_committed_transaction_is_delivered_and_a_rolled_back_one_never(
    engine: AsyncEngine, either_bus: Target
) -> None:
    target = either_bus
    (committed,) = await _commit(engine, target.spec, _event())

    async def change_that_fails() -> None:
        rolled_back = Envelope.wrap(_event(), source="auth", key=str(uuid.uuid4()))
        async with AsyncSession(engine) as session, session.begin():
            await enqueue(session, rolled_back, topic=target.spec.name)
            raise LookupError("the change failed, so the event must not exist")

    with pytest.raises(LookupError):
        await change_that_fails()

    relay = _relay(engine, target.bus)
    await relay.start()
    try:
        await _drained(engine)
    finally:
        await relay.stop()

    delivered = await target.read_all()
    assert delivered == [committed]
    assert _sample(relay, "chat_outbox_relayed_total", topic=target.spec.name) == 1


async def test_the_outbox_table_definition_matches_the_services_migration(engine: AsyncEngine) -> None:
    metadata = MetaData()
    outbox_table(metadata)

    def only_the_outbox(name: str | None, kind: str, parents: Any) -> bool:
        return kind != "table" or name == "outbox"  # the service's other tables are not ours to check

    def differences(connection: Connection) -> Any:
        context = MigrationContext.configure(connection, opts={"include_name": only_the_outbox})
        return compare_metadata(context, metadata)

    async with engine.connect() as connection:
        assert await connection.run_sync(differences) == []


# --- order ---


async def test_events_of_one_key_arrive_in_commit_order(engine: AsyncEngine, kafka: Target) -> None:
    users = [uuid.uuid4() for _ in range(5)]
    relay = _relay(engine, kafka.bus, batch_size=16)
    await relay.start()
    committed: list[Envelope] = []
    try:
        # Committed one by one while the relay runs, so batches and commits interleave.
        for n in range(200):
            committed += await _commit(engine, kafka.spec, _event(users[n % 5], n))
            relay.wake()
        await _drained(engine)
    finally:
        await relay.stop()

    delivered = await kafka.read_all()
    assert sorted(e.id for e in delivered) == sorted(e.id for e in committed)
    assert _per_key(delivered) == _per_key(committed)


async def test_a_backlog_committed_while_no_relay_ran_is_delivered_once_a_relay_is_back(
    engine: AsyncEngine, kafka: Target
) -> None:
    killed = _relay(engine, kafka.bus)
    await killed.start()
    await _eventually(lambda: _true(killed.active))
    await killed.abort()

    users = [uuid.uuid4() for _ in range(10)]
    committed: list[Envelope] = []
    for n in range(10):
        committed += await _commit(engine, kafka.spec, *(_event(user, n) for user in users))
    await asyncio.sleep(0.3)
    assert await _unpublished(engine) == 100

    restarted = _relay(engine, kafka.bus)
    await restarted.start()
    try:
        await _drained(engine)
    finally:
        await restarted.stop()
    delivered = await kafka.read_all()
    assert len(delivered) == len(committed)  # exactly once: nothing had been published before
    assert _per_key(delivered) == _per_key(committed)


async def _true(value: bool) -> bool:
    return value


# --- failures ---


async def test_a_crash_between_publish_and_mark_republishes_the_same_envelope_id(
    engine: AsyncEngine, kafka: Target
) -> None:
    dying_bus = TappedBus(kafka.bus)
    dying_bus.hang_after = 1
    dying = _relay(engine, dying_bus)
    await dying.start()
    (envelope,) = await _commit(engine, kafka.spec, _event())
    dying.wake()
    async with asyncio.timeout(20):
        await dying_bus.hanging.wait()
    await dying.abort()
    assert await _unpublished(engine) == 1  # published, never marked

    successor = _relay(engine, kafka.bus)
    await successor.start()
    try:
        await _drained(engine)
    finally:
        await successor.stop()

    delivered = await kafka.read_all()
    assert [e.id for e in delivered] == [envelope.id, envelope.id]
    assert delivered[0] == delivered[1] == envelope
    assert {e.id for e in delivered} == {envelope.id}  # a consumer deduping by id sees it once


async def test_a_broker_outage_delays_events_but_neither_loses_nor_reorders_them(
    engine: AsyncEngine, kafka: Target
) -> None:
    flaky = TappedBus(kafka.bus, outage_after=20, outage_seconds=1.0)
    relay = _relay(engine, flaky, batch_size=25, max_in_flight=4)
    users = [uuid.uuid4() for _ in range(8)]
    committed: list[Envelope] = []
    for n in range(15):
        committed += await _commit(engine, kafka.spec, *(_event(user, n) for user in users))
    lag_seen = 0.0
    await relay.start()
    try:
        async with asyncio.timeout(20):
            while await _unpublished(engine):
                lag_seen = max(lag_seen, _sample(relay, "chat_outbox_lag_seconds"))
                await asyncio.sleep(0.05)
    finally:
        await relay.stop()

    assert flaky.failed_attempts > 0
    assert _sample(relay, "chat_outbox_publish_failures_total", topic=kafka.spec.name) > 0
    assert lag_seen >= 0.5
    delivered = await kafka.read_all()
    assert len(delivered) == len(committed) == len(set(flaky.ids()))
    assert _per_key(delivered) == _per_key(committed)


# --- one relay at a time ---


async def test_two_relays_on_one_database_publish_one_at_a_time_and_the_standby_takes_over(
    engine: AsyncEngine, second_engine: AsyncEngine, kafka: Target
) -> None:
    first_bus, second_bus = TappedBus(kafka.bus), TappedBus(kafka.bus)
    first, second = _relay(engine, first_bus), _relay(second_engine, second_bus)
    await first.start()
    await _eventually(lambda: _true(first.active))
    await second.start()
    try:
        before = await _commit(engine, kafka.spec, *(_event() for _ in range(20)))
        first.wake()
        second.wake()
        await _drained(engine)
        assert not second.active
        assert set(first_bus.ids()) == {e.id for e in before}
        assert second_bus.published == []

        await first.stop()
        await _eventually(lambda: _true(second.active), timeout=5)
        after = await _commit(engine, kafka.spec, *(_event() for _ in range(20)))
        second.wake()
        await _drained(engine)
    finally:
        await first.stop()
        await second.stop()

    assert set(second_bus.ids()) == {e.id for e in after}
    assert len(first_bus.published) == 20
    delivered = await kafka.read_all()
    assert sorted(e.id for e in delivered) == sorted(e.id for e in before + after)


async def test_the_standby_takes_over_when_the_active_relays_database_session_dies(
    engine: AsyncEngine, second_engine: AsyncEngine, database_url: str, kafka: Target
) -> None:
    first_bus, second_bus = TappedBus(kafka.bus), TappedBus(kafka.bus)
    # The first relay waits out a long backoff after losing its session, so the standby is the one to win.
    slow_retry = RetryPolicy(initial_backoff=2.0, max_backoff=2.0)
    first = _relay(engine, first_bus, retry=slow_retry)
    second = _relay(second_engine, second_bus)
    await first.start()
    await _eventually(lambda: _true(first.active))
    await second.start()
    try:
        # What a dead host, a failover or an administrator's pg_terminate_backend looks like to the relay.
        with psycopg.connect(database_url, autocommit=True) as admin:
            (pid,) = admin.execute(
                "SELECT l.pid FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
                "WHERE l.locktype = 'advisory' AND l.granted AND d.datname = current_database()"
            ).fetchone() or (None,)
            assert pid is not None
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        await _eventually(lambda: _true(second.active and not first.active), timeout=5)
        committed = await _commit(engine, kafka.spec, _event())
        second.wake()
        await _drained(engine)
        assert second_bus.ids() == [committed[0].id]
        assert first_bus.published == []
        assert _sample(first, "chat_outbox_relay_errors_total") >= 1
    finally:
        await first.stop()
        await second.stop()


# --- latency ---


async def test_wake_relays_a_committed_event_within_milliseconds_not_the_poll_interval(
    engine: AsyncEngine, kafka: Target
) -> None:
    tapped = TappedBus(kafka.bus)
    relay = _relay(engine, tapped, poll_interval=SLOW_POLL)
    await relay.start()
    await _eventually(lambda: _true(relay.active))
    latencies: list[float] = []
    try:
        for _ in range(20):
            tapped.published_one.clear()
            await _commit(engine, kafka.spec, _event())
            committed_at = time.perf_counter()
            relay.wake()
            async with asyncio.timeout(2):
                await tapped.published_one.wait()
            latencies.append(tapped.published[-1][0] - committed_at)
    finally:
        await relay.stop()
    assert statistics.median(latencies) < 0.25, latencies
    assert max(latencies) < 1.0, latencies


async def test_wake_on_a_standby_reaches_the_active_relay_through_a_postgres_notification(
    engine: AsyncEngine, second_engine: AsyncEngine, kafka: Target
) -> None:
    tapped = TappedBus(kafka.bus)
    active = _relay(engine, tapped, poll_interval=SLOW_POLL)
    standby = _relay(second_engine, kafka.bus, poll_interval=SLOW_POLL)
    await active.start()
    await _eventually(lambda: _true(active.active))
    await standby.start()
    try:
        await _commit(second_engine, kafka.spec, _event())
        committed_at = time.perf_counter()
        standby.wake()
        async with asyncio.timeout(2):
            await tapped.published_one.wait()
        assert tapped.published[-1][0] - committed_at < 1.0
        assert not standby.active
    finally:
        await standby.stop()
        await active.stop()


async def test_a_process_without_a_relay_reaches_the_active_one_with_notify_relay(
    engine: AsyncEngine, second_engine: AsyncEngine, either_bus: Target
) -> None:
    """An operator command (`chat disable-account`) commits outbox rows in a process of its own, with no relay."""
    tapped = TappedBus(either_bus.bus)
    relay = _relay(engine, tapped, poll_interval=NEVER_POLLS)
    await relay.start()
    try:
        await _eventually(lambda: _true(relay.active))
        await _idle_after_first_round(relay)
        (committed,) = await _commit(second_engine, either_bus.spec, _event())
        await notify_relay(second_engine, "operator command")
        await _drained(engine)
        assert tapped.ids() == [committed.id]
    finally:
        await relay.stop()


async def test_a_commit_is_relayed_when_its_writer_wakes_the_relay_even_if_the_relay_never_polls(
    engine: AsyncEngine, either_bus: Target
) -> None:
    tapped = TappedBus(either_bus.bus)
    relay = _relay(engine, tapped, poll_interval=NEVER_POLLS)
    await relay.start()
    try:
        await _eventually(lambda: _true(relay.active))
        await _idle_after_first_round(relay)
        (committed,) = await _commit(engine, either_bus.spec, _event())
        relay.wake()
        await _drained(engine)
        assert tapped.ids() == [committed.id]
    finally:
        await relay.stop()


async def test_a_commit_whose_wake_was_lost_is_relayed_by_the_fallback_poll(
    engine: AsyncEngine, either_bus: Target
) -> None:
    tapped = TappedBus(either_bus.bus)
    relay = _relay(engine, tapped, poll_interval=0.2)
    await relay.start()
    try:
        await _eventually(lambda: _true(relay.active))
        await _idle_after_first_round(relay)
        # A writer that died between its commit and its wake(): nothing tells the relay.
        (committed,) = await _commit(engine, either_bus.spec, _event())
        await _drained(engine)
        assert tapped.ids() == [committed.id]
    finally:
        await relay.stop()


async def _idle_after_first_round(relay: OutboxRelay) -> None:
    """Until the active relay has finished its first look at the table, so only a wake or a poll brings it back."""
    await _eventually(lambda: _true(relay.rounds >= 1))


# --- retention ---


async def test_published_rows_older_than_the_retention_are_deleted_and_unpublished_ones_never_are(
    engine: AsyncEngine, kafka: Target
) -> None:
    relay = _relay(engine, kafka.bus, retention=timedelta(hours=1), purge_interval=0.2)
    old, recent = await _commit(engine, kafka.spec, _event(), _event())
    assert await relay.relay_once() == 2
    (stuck,) = await _commit(engine, kafka.spec, _event())
    async with engine.begin() as connection:
        await connection.execute(
            text("UPDATE outbox SET published_at = now() - interval '2 hours' WHERE event_id = :id"),
            {"id": old.id},
        )
        # Old but never published (its relay has been down for a month): it must survive any purge.
        await connection.execute(
            text("UPDATE outbox SET created_at = now() - interval '30 days' WHERE event_id = :id"),
            {"id": stuck.id},
        )

    async def remaining() -> set[uuid.UUID]:
        async with engine.connect() as connection:
            return set((await connection.execute(select(OUTBOX.c.event_id))).scalars())

    assert await relay.purge() == 1
    assert await remaining() == {recent.id, stuck.id}

    # The running relay purges on its own, every purge_interval.
    async with engine.begin() as connection:
        await connection.execute(
            text("UPDATE outbox SET published_at = now() - interval '2 hours' WHERE published_at IS NOT NULL")
        )
    await relay.start()
    try:
        await _eventually(lambda: _only(remaining, {stuck.id}), timeout=5)
    finally:
        await relay.stop()
    assert _sample(relay, "chat_outbox_purged_total") >= 2


async def _only(remaining: Callable[[], Awaitable[set[uuid.UUID]]], expected: set[uuid.UUID]) -> bool:
    return await remaining() == expected
