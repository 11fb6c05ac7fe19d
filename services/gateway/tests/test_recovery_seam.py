"""The seam of a resubscribe, read off the wire: live messages held back while history is read come after the
replayed ones and before nothing they should follow; when too much was missed, nothing of the room comes before
the answer, and what comes after it is exactly what lies past the answer's seq.

(make chaos found the second: a socket that reloaded after a gateway restart was sent live messages before the
answer that told it to reload, took the newest of them for where it stood, and never read the ones in between.)"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from chat_contracts import messages_events as mev
from chat_contracts.topics import MESSAGES_EVENTS
from chat_gateway.service.connections import Connection
from chat_gateway.service.delivery import new_message
from chat_gateway.testing.fakes import MemoryHistory
from chat_runtime.bus.inprocess import InProcessBus

from .harness import Cluster, Gateway, message_created, until
from .raw_socket import RawSocket

ADA, BOB = uuid.uuid4(), uuid.uuid4()
ROOM = uuid.uuid4()


class GatedHistory(MemoryHistory):
    """History whose reads wait while their gate is closed: a subscribe held in flight."""

    def __init__(self) -> None:
        super().__init__()
        self.reading_after = asyncio.Event()
        self.reading_last = asyncio.Event()
        self.reading_after.set()
        self.reading_last.set()

    async def after(self, room_id: uuid.UUID, after_seq: int, limit: int, *, token: str) -> list[dict[str, Any]]:
        await self.reading_after.wait()
        return await super().after(room_id, after_seq, limit, token=token)

    async def last_seq(self, room_id: uuid.UUID, *, token: str) -> int:
        await self.reading_last.wait()
        return await super().last_seq(room_id, token=token)


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    cluster = Cluster(data_dir=tmp_path, history=GatedHistory())
    yield cluster
    await cluster.close()


@pytest.fixture
async def raws() -> AsyncIterator[list[RawSocket]]:
    opened: list[RawSocket] = []
    yield opened
    for raw in opened:
        await raw.close()


def created(seq: int) -> mev.MessageCreated:
    return message_created(ROOM, seq, ADA)


def gated(cluster: Cluster) -> GatedHistory:
    assert isinstance(cluster.history, GatedHistory)
    return cluster.history


async def bob_on(
    cluster: Cluster, gateway: Gateway, raws: list[RawSocket], stored: int
) -> tuple[RawSocket, Connection]:
    await cluster.join(ROOM, ADA, BOB)
    cluster.history.rooms[ROOM] = [new_message(created(seq)) for seq in range(1, stored + 1)]
    raw = await RawSocket.open(gateway.base, cluster.token(BOB), "websocket")
    raws.append(raw)
    connections = gateway.hub.connections
    await until(lambda: any(c.user.sub == BOB for c in connections.by_sid.values()))
    return raw, next(c for c in connections.by_sid.values() if c.user.sub == BOB)


async def subscribe(raw: RawSocket, last_seq: int) -> None:
    await raw.send("421" + json.dumps(["room:subscribe", {"room_id": str(ROOM), "last_seq": last_seq}]))


def wire(raw: RawSocket) -> list[str | int]:
    """What the socket was sent, in order: ``"ack"`` for the subscribe's answer, a seq for each message."""
    seen: list[str | int] = []
    for packet in raw.packets:
        if packet.startswith("431["):
            seen.append("ack")
        elif packet.startswith('42["message:new"'):
            seen.append(int(json.loads(packet[2:])[1]["seq"]))
    return seen


async def test_a_client_told_to_reload_is_sent_nothing_of_the_room_before_the_answer(
    cluster: Cluster, raws: list[RawSocket]
) -> None:
    gateway = await cluster.start("gw-a", recovery_limit=2)
    raw, bob = await bob_on(cluster, gateway, raws, stored=5)
    bus = InProcessBus(cluster.broker)
    gated(cluster).reading_last.clear()

    await subscribe(raw, last_seq=1)  # 4 missed, over the limit: reload
    await until(lambda: ROOM in bob.replaying)
    for seq in (5, 6, 7):  # 5 is announced again (a resend answered): the reload has it
        await bus.publish(MESSAGES_EVENTS, created(seq), source="messages")
    await until(lambda: len(bob.replaying.get(ROOM, ())) == 3)
    assert wire(raw) == [], "held while the answer is being made"
    gated(cluster).reading_last.set()

    answer = await raw.ack(1)
    assert (answer["ok"], answer["recovered"], answer["seq"]) == (True, False, 5), answer
    await until(lambda: len(wire(raw)) == 3)
    await bus.publish(MESSAGES_EVENTS, created(8), source="messages")
    await until(lambda: len(wire(raw)) == 4)
    assert wire(raw) == ["ack", 6, 7, 8], "reload (1, 5] from the answer; 6 and 7 after it, live ones after them"


async def test_replayed_then_held_messages_come_in_seq_order_while_live_ones_keep_arriving(
    cluster: Cluster, raws: list[RawSocket]
) -> None:
    gateway = await cluster.start("gw-a")
    raw, bob = await bob_on(cluster, gateway, raws, stored=5)
    bus = InProcessBus(cluster.broker)
    gated(cluster).reading_after.clear()

    await subscribe(raw, last_seq=1)
    await until(lambda: ROOM in bob.replaying)
    for seq in (5, 6, 7):
        await bus.publish(MESSAGES_EVENTS, created(seq), source="messages")
    await until(lambda: len(bob.replaying.get(ROOM, ())) == 3)

    async def live() -> None:
        for seq in range(8, 30):
            await bus.publish(MESSAGES_EVENTS, created(seq), source="messages")

    gated(cluster).reading_after.set()
    await live()
    answer = await raw.ack(1)
    assert (answer["ok"], answer["recovered"], answer["replayed"]) == (True, True, 4), answer
    await until(lambda: len([s for s in wire(raw) if s != "ack"]) >= 28)
    assert [s for s in wire(raw) if s != "ack"] == list(range(2, 30)), "each once, in seq order"
