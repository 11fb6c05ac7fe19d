"""Two messages service processes share the rooms; one is killed with kill -9 under load. Either it stays dead, and
the survivor takes over its partitions once the broker ends its session; or it stays dead and the survivor's peer
watch removes it from the group long before its session would end (a session timeout longer than the whole load,
so only the watch can hand its rooms over); or it is started again under the same static member name, as a pod's
restarted container is, and takes its own partitions back without a rebalance. Every time, every acknowledged
message exists exactly once and every room's seq is dense; the test prints the longest time each room went
without an ack."""

from __future__ import annotations

import asyncio
import itertools
import os
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment
from pymongo import AsyncMongoClient

from chat_contracts import messages_commands as cmd
from chat_contracts import messages_events as ev
from chat_contracts.envelope import Envelope
from chat_contracts.topics import MESSAGES_COMMANDS, MESSAGES_EVENTS, TOPICS
from chat_messages.adapters.mongo_store import MongoMessageStore
from chat_runtime.bus.kafka import KafkaBus
from chat_runtime.bus.kafka_setup import KafkaConfig, ensure_topics
from chat_runtime.bus.partitioner import partition_for

from .messages_process import ServiceProcess, publish_room
from .product import free_port

ROOMS = int(os.environ.get("CHAT_FAILOVER_ROOMS", "12"))
CLIENTS = int(os.environ.get("CHAT_FAILOVER_CLIENTS", "12"))
"""Each client sends to room ``its number % ROOMS``: at least as many clients as rooms."""
SESSION_TIMEOUT_MS = 6000
WATCHED_SESSION_TIMEOUT_MS = 60_000
"""With the peer watch: longer than the load lasts after the kill, so a room of the killed instance that acks
again was handed over by the watch, not by the broker's session timeout."""
PEER_EVICTION_MS = 2000
BEFORE_KILL_SECONDS = 3.0
AFTER_KILL_SECONDS = SESSION_TIMEOUT_MS / 1000 + 6.0
"""Load goes on this long after the kill: the session timeout (or the eviction time), the rebalance, and acks
from the survivor."""
ANSWER_WAIT_SECONDS = 1.0
"""How long a client waits for an answer before sending again with the same client_msg_id."""


@pytest.mark.parametrize(
    ("restarted", "watched"),
    [(False, False), (False, True), (True, False)],
    ids=["stays-dead", "stays-dead-peers-watched", "restarted"],
)
async def test_killing_one_of_two_instances_loses_nothing(
    restarted: bool,
    watched: bool,
    tmp_path: Path,
    kafka_bootstrap: str,
    mongo_url: str,
    mongo_database_name: str,
    mongo_client: AsyncMongoClient[dict[str, Any]],
) -> None:
    prefix = f"failover-{uuid.uuid4().hex[:8]}."
    config = KafkaConfig(bootstrap=kafka_bootstrap, client_id="failover-test", topic_prefix=prefix, poll_timeout_ms=100)
    await ensure_topics(config, TOPICS.values())
    session_timeout_ms = WATCHED_SESSION_TIMEOUT_MS if watched else SESSION_TIMEOUT_MS
    env = {
        **os.environ,
        "CHAT_BUS": "kafka",
        "CHAT_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "CHAT_KAFKA_TOPIC_PREFIX": prefix,
        "CHAT_KAFKA_SESSION_TIMEOUT_MS": str(session_timeout_ms),
        "CHAT_KAFKA_PEER_EVICTION_MS": str(PEER_EVICTION_MS),
        "CHAT_DATA_DIR": str(tmp_path),
        "CHAT_LOG_LEVEL": "warning",
        "CHAT_MESSAGES_MONGO_URL": mongo_url,
        "CHAT_MESSAGES_MONGO_DATABASE": mongo_database_name,
        "CHAT_MESSAGES_SEND_BURST": "1000",
        "CHAT_MESSAGES_SEND_PER_SECOND": "100",
    }
    instances = [
        ServiceProcess(
            {**env, "CHAT_KAFKA_GROUP_INSTANCE_ID": f"messages-{n}", "CHAT_MESSAGES_INSTANCE_ID": f"messages-{n}"},
            tmp_path / f"messages-{n}.log",
        )
        for n in range(2)
    ]
    if watched:
        for instance in instances:
            instance.env["CHAT_KAFKA_PEER_ADDRESS"] = f"127.0.0.1:{free_port()}"
    client = KafkaBus(config)
    answers: dict[str, Envelope] = {}
    answered = asyncio.Condition()
    acks: dict[uuid.UUID, list[float]] = {}
    """When each room's acks arrived (monotonic seconds)."""
    stats: Counter[str] = Counter()

    async def on_answer(envelope: Envelope) -> None:
        request_id = getattr(envelope.data, "request_id", None)
        if isinstance(request_id, str):
            async with answered:
                answers.setdefault(request_id, envelope)
                answered.notify_all()

    rooms = [uuid.uuid4() for _ in range(ROOMS)]
    sender = uuid.uuid4()
    stop_sending = asyncio.Event()
    held_again: dict[str, set[int]] = {}
    try:
        await client.subscribe(MESSAGES_EVENTS, group=f"clients-{uuid.uuid4().hex[:6]}", handler=on_answer)
        for room in rooms:
            await publish_room(client, room, [sender])
        await asyncio.gather(*(instance.start() for instance in instances))

        async def send_until_acked(room: uuid.UUID, client_msg_id: str) -> ev.MessageCreated:
            for attempt in range(120):
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
                        room_version=2,
                    ),
                    source="gateway",
                )
                try:
                    async with asyncio.timeout(ANSWER_WAIT_SECONDS), answered:
                        await answered.wait_for(lambda r=request_id: r in answers)  # type: ignore[misc]
                except TimeoutError:
                    continue
                data = answers[request_id].data
                if isinstance(data, ev.MessageCreated):
                    acks.setdefault(room, []).append(time.monotonic())
                    return data
                stats[f"rejected {getattr(data, 'code', '?')}"] += 1
                await asyncio.sleep(0.2)
            raise AssertionError(f"{client_msg_id} was never acknowledged")

        async def session(index: int) -> list[ev.MessageCreated]:
            # Each client sends to one room, one message at a time: a room whose owner died holds up only its own
            # clients, so the gaps show which rooms stopped and for how long.
            acked: list[ev.MessageCreated] = []
            n = 0
            while not stop_sending.is_set():
                acked.append(await send_until_acked(rooms[index % ROOMS], f"c{index}-{n}"))
                n += 1
                await asyncio.sleep(0.05)
            return acked

        sessions = [asyncio.create_task(session(i)) for i in range(CLIENTS)]
        await asyncio.sleep(BEFORE_KILL_SECONDS)
        held = await _settled_command_partitions(kafka_bootstrap, f"{prefix}messages")
        victims = {room for room in rooms if _partition_of(room) in held.get("messages-1", set())}
        instances[1].kill()
        killed_at = time.monotonic()
        if restarted:
            await instances[1].start()
            held_again = await _settled_command_partitions(kafka_bootstrap, f"{prefix}messages")
        await asyncio.sleep(max(0.0, killed_at + AFTER_KILL_SECONDS - time.monotonic()))
        stop_sending.set()
        acked = [message for result in await asyncio.gather(*sessions) for message in result]
    finally:
        stop_sending.set()
        for instance in instances:
            instance.stop()
        await client.stop()
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
        await admin.start()
        try:
            await admin.delete_topics([prefix + n for spec in TOPICS.values() for n in (spec.name, spec.dlq)])
        finally:
            await admin.close()

    store = MongoMessageStore(mongo_client[mongo_database_name])
    total = 0
    for room in rooms:
        page = await store.history(room, limit=100_000, newest_first=False)
        total += len(page)
        assert [m.seq for m in page] == list(range(1, len(page) + 1)), f"gap or duplicate seq in {room}"
        assert len({m.client_msg_id for m in page}) == len(page), "a client_msg_id stored twice"
    assert len(acked) == total, "every acknowledged message, exactly once"
    for message in acked:
        stored = await store.message_by_client_msg_id(message.room_id, message.client_msg_id)
        assert stored is not None
        assert (stored.id, stored.seq) == (message.message_id, message.seq)

    gaps = {room: _longest_gap_around(acks.get(room, []), killed_at) for room in rooms}
    print(
        f"\nfailover ({'restarted under its name' if restarted else 'stays dead'}): 2 instances, one killed "
        f"holding {len(held.get('messages-1', ()))} of "
        f"{MESSAGES_COMMANDS.partitions} command partitions; {total} messages acknowledged and stored once, "
        f"{dict(stats)}; session timeout {session_timeout_ms / 1000:.1f} s"
        + (f", peers removed after {PEER_EVICTION_MS / 1000:.1f} s without an answer" if watched else "")
    )
    for whose, group in (("the killed instance's", victims), ("the survivor's", set(rooms) - victims)):
        print(
            f"longest ack gap per room after the kill, {len(group)} of {whose} rooms: "
            + (", ".join(f"{gaps[room]:.2f} s" for room in sorted(group, key=gaps.__getitem__)) or "none")
        )
    if restarted:
        print(f"the restarted instance was ready {instances[1].ready_after:.2f} s after its start")
    assert held.get("messages-1"), "the killed instance held command partitions to hand over"
    if restarted:
        assert held_again == held, "a restarted static member takes back its own partitions, no one else's"
    assert all(acks.get(room) for room in rooms), "every room acked again after the kill"
    if watched:
        assert all(any(t > killed_at for t in acks[room]) for room in victims), (
            "the killed instance's rooms acked again long before its session could time out"
        )
        assert "bus.peer_removed" in instances[0].log.read_text(), "the survivor removed the dead peer"


def _partition_of(room: uuid.UUID) -> int:
    return partition_for(str(room).encode(), MESSAGES_COMMANDS.partitions)


async def _settled_command_partitions(bootstrap: str, group: str) -> dict[str, set[int]]:
    """Which instance holds which partitions of the commands topic, once the group is stable with both instances'
    three consumers (a static member's id starts with its instance name)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        async with asyncio.timeout(60):
            while True:
                (described,) = await admin.describe_consumer_groups([group])
                _, _, state, _, _, members = described.groups[0]
                if state == "Stable" and len(members) == 6:
                    break
                await asyncio.sleep(0.2)
    finally:
        await admin.close()
    held: dict[str, set[int]] = {}
    for member_id, _, _, _, assignment in members:
        instance = str(member_id).split(".", 1)[0]
        for topic, partitions in ConsumerProtocolMemberAssignment.decode(assignment).assignment:
            if topic.endswith(MESSAGES_COMMANDS.name):
                held.setdefault(instance, set()).update(partitions)
    return held


def _longest_gap_around(times: list[float], killed_at: float) -> float:
    """The longest wait between consecutive acks of a room that spans or follows the kill."""
    later = [t for t in times if t >= killed_at]
    before = [t for t in times if t < killed_at]
    marks = ([before[-1]] if before else [killed_at]) + later
    return max((b - a for a, b in itertools.pairwise(marks)), default=0.0)
