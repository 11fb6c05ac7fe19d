"""Following a Kafka topic by time, without a consumer group, on a real broker: the past since the requested time
comes before "caught up", older records are not read, new ones follow, and every follower reads everything."""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from chat_contracts.envelope import Envelope, encode
from chat_contracts.topics import USERS_EVENTS
from chat_contracts.users import UserSessionsRevoked
from chat_runtime.bus.follow import follower_for
from chat_runtime.bus.kafka import KafkaBus
from chat_runtime.bus.kafka_setup import KafkaConfig, ensure_topics

ADA = uuid.UUID("6f1c2b8e-3d4a-4f5b-8c6d-7e8f9a0b1c2d")


@pytest.fixture
async def bus(kafka_bootstrap: str) -> AsyncIterator[KafkaBus]:
    prefix = f"follow-{secrets.token_hex(4)}."
    config = KafkaConfig(bootstrap=kafka_bootstrap, client_id="follow-test", topic_prefix=prefix, poll_timeout_ms=100)
    await ensure_topics(config, [USERS_EVENTS])
    bus = KafkaBus(config)
    await bus.start()
    try:
        yield bus
    finally:
        await bus.stop()
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
        await admin.start()
        try:
            await admin.delete_topics([config.physical(USERS_EVENTS.name), config.physical(USERS_EVENTS.dlq)])
        finally:
            await admin.close()


def ending(session: uuid.UUID, *, user: uuid.UUID = ADA) -> UserSessionsRevoked:
    return UserSessionsRevoked(user_id=user, session_ids=(session,), reason="logout", occurred_at=datetime.now(UTC))


async def produce_at(bus: KafkaBus, written: datetime, *values: tuple[uuid.UUID, bytes]) -> None:
    """Write raw records stamped ``written`` (as a producer whose clock said so), keyed by user."""
    producer = AIOKafkaProducer(bootstrap_servers=bus.config.bootstrap, acks="all")
    await producer.start()
    try:
        for user, value in values:
            await producer.send_and_wait(
                bus.config.physical(USERS_EVENTS.name),
                value=value,
                key=str(user).encode(),
                timestamp_ms=int(written.timestamp() * 1000),
            )
    finally:
        await producer.stop()


def value_of(data: UserSessionsRevoked) -> bytes:
    return encode(Envelope.wrap(data, source="auth", key=str(data.user_id)), topic=USERS_EVENTS.name).value


class Following:
    def __init__(self) -> None:
        self.seen: list[uuid.UUID] = []
        self.at_catch_up: list[uuid.UUID] | None = None
        self.caught_up = asyncio.Event()

    async def handler(self, envelope: Envelope) -> None:
        data = envelope.data
        assert isinstance(data, UserSessionsRevoked)
        assert data.session_ids
        self.seen.extend(data.session_ids)

    def on_caught_up(self) -> None:
        self.at_catch_up = list(self.seen)
        self.caught_up.set()


async def until(condition: Callable[[], bool], timeout: float = 15) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.05)


async def test_the_past_since_the_requested_time_is_read_before_caught_up_then_new_records_follow(
    bus: KafkaBus,
) -> None:
    now = datetime.now(UTC)
    too_old, recent = uuid.uuid4(), uuid.uuid4()
    users = [uuid.uuid4() for _ in range(12)]  # spread over the partitions, some of which stay empty
    await produce_at(bus, now - timedelta(hours=2), (ADA, value_of(ending(too_old))))
    await produce_at(
        bus,
        now - timedelta(minutes=10),
        (ADA, b"{not an envelope"),
        *((user, value_of(ending(recent if user == users[0] else uuid.uuid4(), user=user))) for user in users),
    )

    following = Following()
    began = time.perf_counter()
    task = asyncio.create_task(
        follower_for(bus).follow(
            USERS_EVENTS,
            since=now - timedelta(hours=1),
            handler=following.handler,
            caught_up=following.on_caught_up,
        )
    )
    try:
        async with asyncio.timeout(30):
            await following.caught_up.wait()
        assert following.at_catch_up is not None
        assert recent in following.at_catch_up
        assert len(following.at_catch_up) == len(users), "every recent record once, the broken one skipped"
        assert too_old not in following.seen

        live = uuid.uuid4()
        await bus.publish(USERS_EVENTS, ending(live), source="auth")
        await until(lambda: live in following.seen)
        print(f"caught up and followed in {time.perf_counter() - began:.2f}s")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_every_follower_reads_everything_and_one_that_starts_later_reads_the_past_again(bus: KafkaBus) -> None:
    first_ending = uuid.uuid4()
    await bus.publish(USERS_EVENTS, ending(first_ending), source="auth")
    since = datetime.now(UTC) - timedelta(hours=1)

    first = Following()
    first_task = asyncio.create_task(
        follower_for(bus).follow(USERS_EVENTS, since=since, handler=first.handler, caught_up=first.on_caught_up)
    )
    second = Following()
    second_task = None
    try:
        async with asyncio.timeout(30):
            await first.caught_up.wait()
        assert first.at_catch_up == [first_ending]

        second_ending = uuid.uuid4()
        await bus.publish(USERS_EVENTS, ending(second_ending), source="auth")
        await until(lambda: second_ending in first.seen)

        second_task = asyncio.create_task(
            follower_for(bus).follow(USERS_EVENTS, since=since, handler=second.handler, caught_up=second.on_caught_up)
        )
        async with asyncio.timeout(30):
            await second.caught_up.wait()
        assert sorted(second.at_catch_up or []) == sorted([first_ending, second_ending])
    finally:
        for task in (first_task, second_task):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)


async def test_an_empty_topic_is_caught_up_at_once(bus: KafkaBus) -> None:
    following = Following()
    task = asyncio.create_task(
        follower_for(bus).follow(
            USERS_EVENTS, since=datetime.now(UTC), handler=following.handler, caught_up=following.on_caught_up
        )
    )
    try:
        async with asyncio.timeout(30):
            await following.caught_up.wait()
        assert following.at_catch_up == []
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
