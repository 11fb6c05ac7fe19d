"""The rooms scenarios on real PostgreSQL; races that must end in one room or one membership; events on Kafka."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from chat_contracts import rooms as ev
from chat_contracts.envelope import Envelope, Record, decode
from chat_contracts.topics import ROOMS_EVENTS, SOCIAL_EVENTS
from chat_contracts.users import UserRegistered
from chat_rooms.adapters.postgres import MIGRATIONS
from chat_rooms.adapters.postgres.store import PostgresRoomsStore
from chat_rooms.bootstrap import RoomsModule, build_context
from chat_rooms.domain.errors import RoomsError
from chat_rooms.domain.rules import dm_key
from chat_rooms.entrypoints.bus import BusEntrypoints
from chat_rooms.service import contacts, direct
from chat_rooms.service import rooms as use_cases
from chat_rooms.service.context import Actor
from chat_rooms.settings import RoomsSettings
from chat_rooms.testing.contacts_scenarios import ContactsScenarios
from chat_rooms.testing.fakes import FakeClock
from chat_rooms.testing.harness import RoomsHarness, TokenMint, serve
from chat_rooms.testing.scenarios import RoomsScenarios
from chat_rooms.testing.users_scenarios import UsersScenarios
from chat_runtime import postgres
from chat_runtime.bus.kafka import KafkaBus
from chat_runtime.bus.kafka_setup import KafkaConfig, ensure_topics
from chat_runtime.outbox import OUTBOX, OutboxRelay, decode_headers
from chat_runtime.settings import load_settings
from chat_runtime.testing.tokens import TokenMint as RuntimeTokenMint

FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


async def _events(engine: AsyncEngine) -> list[Envelope]:
    async with engine.connect() as connection:
        rows = (await connection.execute(select(OUTBOX).order_by(OUTBOX.c.position))).all()
    specs = {ROOMS_EVENTS.name: ROOMS_EVENTS, SOCIAL_EVENTS.name: SOCIAL_EVENTS}
    return [
        decode(
            Record(topic=r.topic, key=r.record_key.encode(), value=r.record_value, headers=decode_headers(r.headers)),
            specs[r.topic],
        )
        for r in rows
    ]


@pytest.fixture
async def engine(pg_database: str) -> AsyncIterator[AsyncEngine]:
    await asyncio.to_thread(postgres.upgrade, pg_database, MIGRATIONS)
    engine = postgres.async_engine(pg_database, pool_size=12)
    yield engine
    await engine.dispose()


def _module(tmp_path: Path, url: str, engine: AsyncEngine, clock: FakeClock) -> tuple[RoomsModule, RuntimeTokenMint]:
    settings = load_settings(RoomsSettings, data_dir=tmp_path, database_url=url, migrate_on_start=False)
    mint = TokenMint(settings, clock)
    ctx = build_context(settings, store=PostgresRoomsStore(engine), jwks=mint.jwks, clock=clock, hasher=FAST_HASHER)
    return RoomsModule(settings=settings, context=ctx), mint


class TestRoomsOnPostgres(RoomsScenarios, ContactsScenarios, UsersScenarios):
    @pytest.fixture
    async def rooms(self, tmp_path: Path, pg_database: str, engine: AsyncEngine) -> AsyncIterator[RoomsHarness]:
        module, mint = _module(tmp_path, pg_database, engine, FakeClock())

        async def events() -> list[Envelope]:
            return await _events(engine)

        async with serve(module, mint, events=events) as harness:
            yield harness


async def _users(module: RoomsModule, *names: str) -> list[Actor]:
    actors = []
    for name in names:
        user_id = uuid.uuid4()
        data = UserRegistered(
            user_id=user_id, username=name, display_name=name, email_verified=True, occurred_at=module.context.clock()
        )
        await BusEntrypoints(module.context).on_user_event(Envelope.wrap(data, source="auth", key=str(user_id)))
        actors.append(Actor(user_id=user_id, username=name, email_verified=True))
    return actors


async def test_many_simultaneous_requests_for_one_pair_create_one_direct_room(
    tmp_path: Path, pg_database: str, engine: AsyncEngine
) -> None:
    module, _ = _module(tmp_path, pg_database, engine, FakeClock())
    ada, bob = await _users(module, "ada", "bob")
    calls = [
        direct.open_direct(module.context, ada if i % 2 else bob, other_id=(bob if i % 2 else ada).user_id)
        for i in range(12)
    ]
    results = await asyncio.gather(*calls)
    assert len({view.room.id for view, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    async with engine.connect() as connection:
        rooms = await connection.scalar(text("SELECT count(*) FROM rooms WHERE kind = 'direct'"))
        memberships = await connection.scalar(text("SELECT count(*) FROM memberships"))
    assert (rooms, memberships) == (1, 2)


async def test_a_direct_room_opened_while_a_block_is_made_ends_closed_or_is_not_made(
    tmp_path: Path, pg_database: str, engine: AsyncEngine
) -> None:
    module, _ = _module(tmp_path, pg_database, engine, FakeClock())
    for attempt in range(8):
        ada, bob = await _users(module, f"ada{attempt}", f"bob{attempt}")
        opened, blocked = await asyncio.gather(
            direct.open_direct(module.context, ada, other_id=bob.user_id),
            contacts.block(module.context, bob, other_id=ada.user_id),
            return_exceptions=True,
        )
        assert blocked is None, blocked
        async with engine.connect() as connection:
            closed = await connection.scalar(
                text("SELECT blocked FROM rooms WHERE dm_key = :key"), {"key": dm_key(ada.user_id, bob.user_id)}
            )
        if isinstance(opened, RoomsError):
            assert (opened.code, closed) == ("blocked", None)
        else:
            assert closed is True, "a room that exists while a block stands is closed"


async def test_many_simultaneous_joins_to_a_password_room_make_one_membership(
    tmp_path: Path, pg_database: str, engine: AsyncEngine
) -> None:
    module, _ = _module(tmp_path, pg_database, engine, FakeClock())
    owner, joiner = await _users(module, "owner", "joiner")
    view = await use_cases.create_room(module.context, owner, kind="password", name="vault", password="open sesame")
    results = await asyncio.gather(
        *(use_cases.join(module.context, joiner, view.room.id, password="open sesame") for _ in range(12)),
        return_exceptions=True,
    )
    assert all(not isinstance(r, BaseException) for r in results), results
    async with engine.connect() as connection:
        count = await connection.scalar(
            text("SELECT count(*) FROM memberships WHERE room_id = :r AND user_id = :u"),
            {"r": view.room.id, "u": joiner.user_id},
        )
        member_count = await connection.scalar(
            text("SELECT member_count FROM rooms WHERE id = :r"), {"r": view.room.id}
        )
    assert (count, member_count) == (1, 2)
    joins = [
        e for e in await _events(engine) if isinstance(e.data, ev.MemberJoined) and e.data.user_id == joiner.user_id
    ]
    assert len(joins) == 1


async def test_room_events_reach_kafka_in_order_once_the_relay_is_back(
    tmp_path: Path, pg_database: str, engine: AsyncEngine, kafka_bootstrap: str
) -> None:
    module, _ = _module(tmp_path, pg_database, engine, FakeClock())
    owner, guest = await _users(module, "owner", "guest")
    spec = dataclasses.replace(ROOMS_EVENTS, name=f"chat.rooms.events.it-{uuid.uuid4().hex[:8]}")
    config = KafkaConfig(bootstrap=kafka_bootstrap, client_id="rooms-it", heartbeat_interval_ms=500)
    await ensure_topics(config, [spec])

    # The relay is down (killed) while the changes commit.
    view = await use_cases.create_room(module.context, owner, kind="public", name="lobby")
    await use_cases.join(module.context, guest, view.room.id)
    await use_cases.archive(module.context, owner, view.room.id)

    received: list[Envelope] = []
    done = asyncio.Event()

    async def on_event(envelope: Envelope) -> None:
        received.append(envelope)
        if len(received) >= 4:
            done.set()

    consumer = KafkaBus(config)
    await consumer.subscribe(spec, group="rooms-it", handler=on_event)
    producer = KafkaBus(config)
    renaming = _Renaming(producer, {ROOMS_EVENTS.name: spec.name})
    relay = OutboxRelay(engine, renaming, name="rooms-it")
    try:
        await producer.start()
        await relay.start()  # the relay comes back
        await asyncio.wait_for(done.wait(), 30)
    finally:
        await relay.stop()
        await producer.stop()
        await consumer.stop()
    assert [e.type for e in received] == [
        "room.created",
        "room.member_joined",
        "room.member_joined",
        "room.archived",
    ]
    versions: list[Any] = [e.data.room_version for e in received]  # type: ignore[attr-defined]
    assert versions == sorted(versions) == list(range(1, 5))
    async with engine.connect() as connection:
        unpublished = await connection.scalar(
            select(func.count()).select_from(OUTBOX).where(OUTBOX.c.published_at.is_(None))
        )
    assert unpublished == 0


class _Renaming:
    def __init__(self, inner: KafkaBus, names: dict[str, str]) -> None:
        self._inner = inner
        self._names = names

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def publish_record(self, record: Record) -> None:
        await self._inner.publish_record(dataclasses.replace(record, topic=self._names.get(record.topic, record.topic)))
