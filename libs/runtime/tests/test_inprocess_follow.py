"""Following a topic of the in-process bus: the past comes from ``history`` (the producer's outbox, which outlives
the process and the in-memory log), the present from a group of the follower's own; nothing falls in between."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from chat_contracts.envelope import Envelope, Record, encode
from chat_contracts.spec import TopicSpec
from chat_contracts.topics import USERS_EVENTS
from chat_contracts.users import UserSessionsRevoked
from chat_runtime.bus.follow import InProcessFollower, follower_for
from chat_runtime.bus.inprocess import InProcessBroker, InProcessBus

ADA = uuid.UUID("6f1c2b8e-3d4a-4f5b-8c6d-7e8f9a0b1c2d")


def ending(session: uuid.UUID) -> UserSessionsRevoked:
    return UserSessionsRevoked(
        user_id=ADA, session_ids=(session,), reason="logout", occurred_at=datetime.now(UTC) - timedelta(seconds=5)
    )


def record(data: UserSessionsRevoked) -> Record:
    return encode(Envelope.wrap(data, source="auth", key=str(data.user_id)), topic=USERS_EVENTS.name)


class Following:
    """A follow running in the background, recording what it hands over and when it caught up."""

    def __init__(self) -> None:
        self.seen: list[uuid.UUID] = []
        self.at_catch_up: list[uuid.UUID] | None = None
        self.caught_up = asyncio.Event()
        self.changed = asyncio.Event()

    async def handler(self, envelope: Envelope) -> None:
        data = envelope.data
        assert isinstance(data, UserSessionsRevoked)
        assert data.session_ids
        self.seen.extend(data.session_ids)
        self.changed.set()

    def on_caught_up(self) -> None:
        self.at_catch_up = list(self.seen)
        self.caught_up.set()

    async def until_seen(self, session: uuid.UUID) -> None:
        async with asyncio.timeout(5):
            while session not in self.seen:
                self.changed.clear()
                await self.changed.wait()


async def test_the_past_from_history_comes_before_caught_up_and_new_records_after() -> None:
    bus = InProcessBus(InProcessBroker())
    earlier_run = uuid.uuid4()
    asked: list[datetime] = []

    async def history(spec: TopicSpec, since: datetime) -> Sequence[Record]:
        asked.append(since)
        return [record(ending(earlier_run))] if spec is USERS_EVENTS else []

    following = Following()
    since = datetime.now(UTC) - timedelta(hours=1)
    task = asyncio.create_task(
        InProcessFollower(bus, history=history).follow(
            USERS_EVENTS, since=since, handler=following.handler, caught_up=following.on_caught_up
        )
    )
    try:
        await following.caught_up.wait()
        assert following.at_catch_up == [earlier_run]
        assert asked == [since]

        live = uuid.uuid4()
        await bus.publish(USERS_EVENTS, ending(live), source="auth")
        await following.until_seen(live)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_record_written_while_the_history_is_read_is_not_missed() -> None:
    bus = InProcessBus(InProcessBroker())
    meanwhile = uuid.uuid4()

    async def history(spec: TopicSpec, since: datetime) -> Sequence[Record]:
        # Committed after the history was read, published by the relay a moment later.
        await bus.publish(USERS_EVENTS, ending(meanwhile), source="auth")
        return []

    following = Following()
    task = asyncio.create_task(
        InProcessFollower(bus, history=history).follow(
            USERS_EVENTS,
            since=datetime.now(UTC) - timedelta(hours=1),
            handler=following.handler,
            caught_up=following.on_caught_up,
        )
    )
    try:
        await following.until_seen(meanwhile)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_records_that_do_not_decode_are_skipped() -> None:
    bus = InProcessBus(InProcessBroker())
    good = uuid.uuid4()
    broken = Record(topic=USERS_EVENTS.name, key=str(ADA).encode(), value=b"{not json", headers=())

    async def history(spec: TopicSpec, since: datetime) -> Sequence[Record]:
        return [broken, record(ending(good))]

    following = Following()
    task = asyncio.create_task(
        follower_for(bus, history=history).follow(
            USERS_EVENTS,
            since=datetime.now(UTC) - timedelta(hours=1),
            handler=following.handler,
            caught_up=following.on_caught_up,
        )
    )
    try:
        await following.caught_up.wait()
        assert following.at_catch_up == [good]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_following_again_after_a_failure_delivers_what_was_written_in_between() -> None:
    bus = InProcessBus(InProcessBroker())
    follower = InProcessFollower(bus)
    since = datetime.now(UTC) - timedelta(hours=1)
    first = Following()
    task = asyncio.create_task(
        follower.follow(USERS_EVENTS, since=since, handler=first.handler, caught_up=first.on_caught_up)
    )
    await first.caught_up.wait()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)

    in_between = uuid.uuid4()
    await bus.publish(USERS_EVENTS, ending(in_between), source="auth")
    again = Following()
    task = asyncio.create_task(
        follower.follow(USERS_EVENTS, since=since, handler=again.handler, caught_up=again.on_caught_up)
    )
    try:
        await again.until_seen(in_between)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
