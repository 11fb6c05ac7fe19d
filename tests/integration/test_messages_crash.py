"""Kill -9 the messages service process again and again while clients send: afterwards every acknowledged
message exists exactly once and every room's seq has no gap (architecture invariants 1-3)."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from pymongo import AsyncMongoClient

from chat_contracts import messages_commands as cmd
from chat_contracts import messages_events as ev
from chat_contracts.envelope import Envelope
from chat_contracts.topics import MESSAGES_COMMANDS, MESSAGES_EVENTS, TOPICS
from chat_messages.adapters.mongo_store import MongoMessageStore
from chat_runtime.bus.kafka import KafkaBus
from chat_runtime.bus.kafka_setup import KafkaConfig, ensure_topics

from .messages_process import ServiceProcess, publish_room

# Reduced size for `make test`; `make chaos` sets the full size (5 kills, 50 clients, 20 rooms, 10,000).
KILLS = int(os.environ.get("CHAT_CRASH_KILLS", "3"))
CLIENTS = int(os.environ.get("CHAT_CRASH_CLIENTS", "6"))
MESSAGES_PER_CLIENT = int(os.environ.get("CHAT_CRASH_MESSAGES_PER_CLIENT", "12"))
ROOMS = int(os.environ.get("CHAT_CRASH_ROOMS", "4"))
IN_FLIGHT = 4
"""Sends each client has in flight at once."""
PAUSE_SECONDS = 0.1
"""Between one client's rounds of sends."""


async def test_killing_the_service_repeatedly_loses_and_duplicates_nothing(
    tmp_path: Path,
    kafka_bootstrap: str,
    mongo_url: str,
    mongo_database_name: str,
    mongo_client: AsyncMongoClient[dict[str, Any]],
) -> None:
    prefix = f"crash-{uuid.uuid4().hex[:8]}."
    config = KafkaConfig(
        bootstrap=kafka_bootstrap,
        client_id="crash-test",
        topic_prefix=prefix,
        heartbeat_interval_ms=500,
        poll_timeout_ms=100,
    )
    await ensure_topics(config, TOPICS.values())
    env = {
        **os.environ,
        "CHAT_BUS": "kafka",
        "CHAT_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "CHAT_KAFKA_TOPIC_PREFIX": prefix,
        "CHAT_KAFKA_SESSION_TIMEOUT_MS": "6000",
        # The same name for every restart, as a pod's name survives its container's restarts: the new process
        # takes the killed one's place in the group at once (static membership).
        "CHAT_KAFKA_GROUP_INSTANCE_ID": f"messages-{prefix.strip('.')}",
        "CHAT_DATA_DIR": str(tmp_path),
        "CHAT_LOG_LEVEL": "warning",
        "CHAT_MESSAGES_MONGO_URL": mongo_url,
        "CHAT_MESSAGES_MONGO_DATABASE": mongo_database_name,
        "CHAT_MESSAGES_SEND_BURST": "1000",
        "CHAT_MESSAGES_SEND_PER_SECOND": "100",
    }
    service = ServiceProcess(env, tmp_path / "service.log")
    client = KafkaBus(config)
    answers: dict[str, Envelope] = {}
    answered = asyncio.Condition()
    stats: Counter[str] = Counter()
    first_answer: dict[datetime, float] = {}
    """Seconds from a process's start to the first answer it published, by its start time."""

    async def on_answer(envelope: Envelope) -> None:
        started = service.spawned_at
        if envelope.occurred_at >= started and started not in first_answer:
            first_answer[started] = (datetime.now(UTC) - started).total_seconds()
        request_id = getattr(envelope.data, "request_id", None)
        if isinstance(request_id, str):
            async with answered:
                if request_id in answers:
                    stats["duplicate answers"] += 1
                answers.setdefault(request_id, envelope)
                answered.notify_all()

    rooms = [uuid.uuid4() for _ in range(ROOMS)]
    senders = [uuid.uuid4() for _ in range(3)]
    try:
        await client.subscribe(MESSAGES_EVENTS, group=f"clients-{uuid.uuid4().hex[:6]}", handler=on_answer)
        for room in rooms:
            await publish_room(client, room, senders)
        await service.start()

        async def send_until_acked(room: uuid.UUID, sender: uuid.UUID, client_msg_id: str) -> ev.MessageCreated:
            for attempt in range(60):
                if attempt:
                    stats["resends"] += 1
                request_id = uuid.uuid4().hex
                await client.publish(
                    MESSAGES_COMMANDS,
                    cmd.SendMessage(
                        room_id=room,
                        sender_id=sender,
                        client_msg_id=client_msg_id,
                        body=client_msg_id,
                        request_id=request_id,
                        # As the gateway does: the room's version when it saw the sender join (create + joins).
                        room_version=len(senders) + 1,
                    ),
                    source="gateway",
                )
                try:
                    async with asyncio.timeout(3), answered:
                        await answered.wait_for(lambda r=request_id: r in answers)  # type: ignore[misc]
                except TimeoutError:
                    continue
                data = answers[request_id].data
                if isinstance(data, ev.MessageCreated):
                    return data
                stats[f"rejected {getattr(data, 'code', '?')}"] += 1
                await asyncio.sleep(0.5)
            raise AssertionError(f"{client_msg_id} was never acknowledged")

        async def session(index: int) -> list[ev.MessageCreated]:
            # A few sends in flight at once per client, so the service takes them in batches (decisions/0011):
            # a kill lands in the middle of a batch's insert or before its answers are published. Clients keep
            # sending until the last restart is acking, so every kill meets load.
            acked: list[ev.MessageCreated] = []
            first = 0
            while first < MESSAGES_PER_CLIENT or not kills.done():
                acked += await asyncio.gather(
                    *(
                        send_until_acked(rooms[(index + n) % ROOMS], senders[index % 3], f"c{index}-{n}")
                        for n in range(first, first + IN_FLIGHT)
                    )
                )
                first += IN_FLIGHT
                await asyncio.sleep(PAUSE_SECONDS)
            return acked

        async def killer() -> None:
            for _ in range(KILLS):
                await asyncio.sleep(2.5)
                service.kill()
                stats["kills"] += 1
                await service.start()
                restarts.append((service.spawned_at, service.listening_after, service.ready_after))

        restarts: list[tuple[datetime, float, float]] = []
        kills = asyncio.create_task(killer())
        sessions = await asyncio.gather(*(session(i) for i in range(CLIENTS)))
        await kills
    finally:
        service.stop()
        await client.stop()
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
        await admin.start()
        try:
            await admin.delete_topics([prefix + n for spec in TOPICS.values() for n in (spec.name, spec.dlq)])
        finally:
            await admin.close()

    acked = [m for s in sessions for m in s]
    store = MongoMessageStore(mongo_client[mongo_database_name])
    total = 0
    for room in rooms:
        page = await store.history(room, limit=100_000, newest_first=False)
        total += len(page)
        assert [m.seq for m in page] == list(range(1, len(page) + 1)), f"gap or duplicate seq in {room}"
        assert len({m.client_msg_id for m in page}) == len(page), "a client_msg_id stored twice"
    assert len(acked) == total >= CLIENTS * MESSAGES_PER_CLIENT, "every acknowledged message, exactly once"
    for message in acked:
        stored = await store.message_by_client_msg_id(message.room_id, message.client_msg_id)
        assert stored is not None
        assert (stored.id, stored.seq) == (message.message_id, message.seq)
    assert stats["kills"] == KILLS
    print(f"\ncrash test: {dict(stats)}; {total} messages acknowledged and stored once")
    for kill, (started, listening_after, ready_after) in enumerate(restarts, start=1):
        acking = first_answer.get(started)
        print(
            f"kill {kill}: acking again {acking:.2f} s after start"
            if acking is not None
            else f"kill {kill}: no answer",
            f"(listening after {listening_after:.2f} s, ready after {ready_after:.2f} s)",
        )
