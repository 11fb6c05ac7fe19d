"""The messages scenarios on the Mongo-wire server, and the whole service on real Kafka: every acknowledged
message stored once, seq dense per room, even when a consumer dies mid-stream and another takes over."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from pymongo import AsyncMongoClient

from chat_contracts import messages_commands as cmd
from chat_contracts import messages_events as ev
from chat_contracts.envelope import Envelope
from chat_contracts.topics import MESSAGES_COMMANDS, MESSAGES_EVENTS, TOPICS
from chat_messages.adapters.gridfs_store import GridFsAttachmentStore
from chat_messages.adapters.mongo_store import MongoMessageStore
from chat_messages.bootstrap import MessagesModule, build_context
from chat_messages.settings import MessagesSettings
from chat_messages.testing.fakes import FakeClock, RecordingPublisher
from chat_messages.testing.harness import MessagesHarness, serve
from chat_messages.testing.scenarios import MessagesScenarios
from chat_runtime.bus.kafka import KafkaBus
from chat_runtime.bus.kafka_setup import KafkaConfig, ensure_topics
from chat_runtime.bus.partitioner import partition_for
from chat_runtime.bus.port import RetryPolicy
from chat_runtime.settings import load_settings
from chat_runtime.testing.tokens import TokenMint

from .messages_process import publish_room


class TestMessagesOnMongo(MessagesScenarios):
    @pytest.fixture
    async def msgs(
        self, tmp_path: Path, mongo_client: AsyncMongoClient[dict[str, Any]], mongo_database_name: str
    ) -> AsyncIterator[MessagesHarness]:
        settings = load_settings(MessagesSettings, data_dir=tmp_path)
        clock = FakeClock()
        mint = TokenMint(issuer=settings.auth_issuer, audience=settings.auth_audience, clock=clock)
        store = MongoMessageStore(mongo_client[mongo_database_name])
        await store.ensure_indexes()
        attachments = GridFsAttachmentStore(mongo_client[mongo_database_name])
        ctx = build_context(
            settings, store=store, attachments=attachments, publisher=RecordingPublisher(), jwks=mint.jwks, clock=clock
        )
        async with serve(MessagesModule(settings=settings, context=ctx), mint) as harness:
            yield harness


async def test_commands_over_kafka_survive_a_consumer_dying_mid_stream(
    tmp_path: Path, mongo_client: AsyncMongoClient[dict[str, Any]], mongo_database_name: str, kafka_bootstrap: str
) -> None:
    """Two service instances share the command partitions; one is killed halfway; clients resend until answered."""
    config = KafkaConfig(
        bootstrap=kafka_bootstrap,
        client_id="messages-it",
        topic_prefix=f"it-{uuid.uuid4().hex[:8]}.",
        session_timeout_ms=6_000,
        heartbeat_interval_ms=500,
        poll_timeout_ms=100,
    )
    await ensure_topics(config, TOPICS.values())
    settings = load_settings(MessagesSettings, data_dir=tmp_path, send_burst=1000, send_per_second=100)
    fast = RetryPolicy(max_attempts=3, initial_backoff=0.01, max_backoff=0.2)

    async def instance() -> tuple[KafkaBus, MessagesModule]:
        bus = KafkaBus(config, retry=fast)
        await bus.start()
        store = MongoMessageStore(mongo_client[mongo_database_name])
        await store.ensure_indexes()
        ctx = build_context(
            settings,
            store=store,
            attachments=GridFsAttachmentStore(mongo_client[mongo_database_name]),
            publisher=bus,
            jwks=TokenMint(issuer=settings.auth_issuer, audience=settings.auth_audience, clock=FakeClock()).jwks,
        )
        module = MessagesModule(settings=settings, context=ctx)
        for handler in module.bus_handlers():
            await handler.subscribe(bus)
        return bus, module

    client = KafkaBus(config)
    answers: dict[str, Envelope] = {}
    answered = asyncio.Condition()

    async def on_answer(envelope: Envelope) -> None:
        request_id = getattr(envelope.data, "request_id", None)
        if isinstance(request_id, str):
            async with answered:
                answers.setdefault(request_id, envelope)
                answered.notify_all()

    await client.subscribe(MESSAGES_EVENTS, group=f"clients-{uuid.uuid4().hex[:6]}", handler=on_answer)
    first_bus, first = await instance()
    second_bus, second = await instance()
    rooms = _rooms_covering_every_partition(MESSAGES_COMMANDS.partitions)  # so both instances own some rooms
    senders = [uuid.uuid4() for _ in range(3)]
    try:
        for room in rooms:
            await publish_room(client, room, senders)
        await asyncio.sleep(3)  # let both instances apply the memberships before commands flow

        async def send_until_acked(room: uuid.UUID, sender: uuid.UUID, client_msg_id: str) -> ev.MessageCreated:
            for _attempt in range(20):
                request_id = uuid.uuid4().hex
                await client.publish(
                    MESSAGES_COMMANDS,
                    cmd.SendMessage(
                        room_id=room,
                        sender_id=sender,
                        client_msg_id=client_msg_id,
                        body=client_msg_id,
                        request_id=request_id,
                    ),
                    source="gateway",
                )
                try:
                    async with asyncio.timeout(4):
                        async with answered:
                            await answered.wait_for(lambda r=request_id: r in answers)  # type: ignore[misc]
                except TimeoutError:
                    continue  # as a client would: resend with the same client_msg_id
                data = answers[request_id].data
                if isinstance(data, ev.MessageCreated):
                    return data
                if isinstance(data, ev.MessageRejected) and data.code == "not_member":
                    await asyncio.sleep(0.5)
                    continue
                raise AssertionError(data)
            raise AssertionError(f"{client_msg_id} was never acknowledged")

        async def client_session(index: int) -> list[ev.MessageCreated]:
            acked = []
            for n in range(15):
                room = rooms[(index + n) % len(rooms)]
                acked.append(await send_until_acked(room, senders[index % len(senders)], f"c{index}-{n}"))
                if index == 0 and n == 5:
                    await first_bus.abort()
            return acked

        results = await asyncio.gather(*(client_session(i) for i in range(6)))
    finally:
        await second_bus.stop()
        await client.stop()
        await _delete_topics(config)
    acked = [m for session in results for m in session]
    assert len(acked) == 90
    assert first.owner.stored_count > 0, "the killed instance was working before it died"
    assert second.owner.stored_count > 0, "the survivor took over"
    by_room: dict[uuid.UUID, list[int]] = defaultdict(list)
    store = MongoMessageStore(mongo_client[mongo_database_name])
    for room in rooms:
        page = await store.history(room, limit=100, newest_first=False)
        by_room[room] = [m.seq for m in page]
        assert by_room[room] == list(range(1, len(page) + 1)), "seq is dense: no gap, no duplicate"
        ids = [m.client_msg_id for m in page]
        assert len(ids) == len(set(ids)), "each client_msg_id stored once"
    assert sum(len(v) for v in by_room.values()) == 90, "every acknowledged message is stored exactly once"
    assert len([room for room, seqs in by_room.items() if seqs]) == len(rooms)
    for message in acked:
        stored = await store.message_by_client_msg_id(message.room_id, message.client_msg_id)
        assert stored is not None
        assert (stored.id, stored.seq) == (message.message_id, message.seq), "the ack named the stored message"


def _rooms_covering_every_partition(partitions: int) -> list[uuid.UUID]:
    by_partition: dict[int, uuid.UUID] = {}
    while len(by_partition) < partitions:
        room = uuid.uuid4()
        by_partition.setdefault(partition_for(str(room).encode(), partitions), room)
    return [by_partition[p] for p in range(partitions)]


async def _delete_topics(config: KafkaConfig) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=config.bootstrap)
    await admin.start()
    try:
        await admin.delete_topics([config.physical(n) for spec in TOPICS.values() for n in (spec.name, spec.dlq)])
    finally:
        await admin.close()
