"""Presence when an instance is new or restarted (docs/decisions/0007): a member it learns of only from the rooms
service is still shown to the room, a subscribe answer is never older than the changes sent before it, a newcomer
introduces itself only once it can hear the answers, and ``presence:set`` says what the others see."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from chat_contracts import rooms as rev
from chat_contracts.topics import EPHEMERAL, ROOMS_EVENTS
from chat_gateway.domain.membership import Memberships
from chat_gateway.domain.presence import Status
from chat_gateway.service.ports import Membership
from chat_gateway.service.presence import Presence
from chat_gateway.settings import GatewaySettings
from chat_gateway.testing.fakes import MemoryHistory
from chat_runtime.bus.inprocess import InProcessBroker, InProcessBus
from chat_runtime.settings import load_settings

from .harness import Client, Cluster, until

ADA, BOB = uuid.uuid4(), uuid.uuid4()
ROOM = uuid.uuid4()


def shown(client: Client, answer: dict[str, Any]) -> dict[str, str]:
    """The room's presence as a client shows it: the subscribe answer's list, then every change after it."""
    statuses = {p["user_id"]: p["status"] for p in answer["presence"]}
    after = [i for i, (event, data) in enumerate(client.received) if event == "subscribed"]
    for event, data in client.received[after[-1] + 1 if after else 0 :]:
        changes = [data] if event == "presence" else data["changes"] if event == "presence:changes" else []
        statuses.update({c["user_id"]: c["status"] for c in changes})
    return statuses


async def subscribe(client: Client) -> dict[str, Any]:
    answer = dict(await client.call("room:subscribe", {"room_id": str(ROOM)}))
    assert answer["ok"] is True, answer
    client.received.append(("subscribed", answer))  # where the answer fell among the events
    return answer


async def test_a_member_learnt_only_from_the_rooms_service_is_shown_online_to_the_room(cluster: Cluster) -> None:
    # As after an all-in-one restart: no join event to replay, memberships are learnt when people subscribe.
    gateway = await cluster.start("gw-a")
    for user in (ADA, BOB):
        cluster.rooms.answers[(ROOM, user)] = Membership(role="member", room_version=3)
    bob = await cluster.connect(gateway, BOB)
    ada = await cluster.connect(gateway, ADA)
    await subscribe(bob)
    answer = await subscribe(ada)
    await until(lambda: shown(ada, answer).get(str(BOB)) == "online")


class GatedHistory(MemoryHistory):
    """History whose ``last_seq`` answers only once ``release`` is set: a subscribe held in flight."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()

    async def last_seq(self, room_id: uuid.UUID, *, token: str) -> int:
        await self.release.wait()
        return await super().last_seq(room_id, token=token)


async def test_a_subscribe_answer_lists_presence_as_of_when_it_is_sent(tmp_path: Path) -> None:
    cluster = Cluster(data_dir=tmp_path, history=GatedHistory())
    try:
        gateway = await cluster.start("gw-a")
        await cluster.join(ROOM, ADA, BOB)
        ada = await cluster.connect(gateway, ADA)
        subscribing = asyncio.create_task(ada.call("room:subscribe", {"room_id": str(ROOM)}))
        await until(lambda: any(ROOM in c.rooms for c in gateway.hub.connections.by_sid.values()))
        await cluster.connect(gateway, BOB)
        await until(lambda: [p["status"] for p in ada.presence(BOB)] == ["online"])  # sent before the answer
        assert isinstance(cluster.history, GatedHistory)
        cluster.history.release.set()
        answer = await subscribing
        assert {p["user_id"]: p["status"] for p in answer["presence"]}.get(str(BOB)) == "online", (
            "an answer that came after the change must not show the older picture"
        )
    finally:
        await cluster.close()


class Sockets:
    def __init__(self) -> None:
        self.online: set[uuid.UUID] = set()

    def local_status(self, user_id: uuid.UUID) -> Status:
        return "online" if user_id in self.online else "offline"

    async def broadcast(self, event: str, payload: dict[str, Any], room_id: uuid.UUID, **_: Any) -> None:
        return None


def relay(tmp_path: Path, broker: InProcessBroker, instance: str) -> tuple[Presence, InProcessBus, Sockets]:
    memberships = Memberships()
    for user in (ADA, BOB):
        memberships.learn(ROOM, user, "member", 1)
    settings = load_settings(GatewaySettings, data_dir=tmp_path, instance_id=instance, heartbeat_seconds=0.2)
    bus, sockets = InProcessBus(broker), Sockets()
    return Presence(settings=settings, bus=bus, memberships=memberships, sockets=sockets), bus, sockets


async def test_a_new_instance_introduces_itself_only_once_it_hears_the_answers(tmp_path: Path) -> None:
    broker = InProcessBroker()
    here, here_bus, here_sockets = relay(tmp_path, broker, "gw-a")
    await here_bus.subscribe(EPHEMERAL, group="a", handler=here.on_event, start="latest", broadcast=True)
    here.listening()
    here_sockets.online.add(BOB)
    await here.local_changed(BOB)
    await here.tick(time.monotonic())

    # A new instance ticks as soon as it starts, before its consumer of chat.ephemeral is subscribed.
    new, new_bus, _ = relay(tmp_path, broker, "gw-b")
    await new.tick(time.monotonic())
    await asyncio.sleep(0.1)
    await here.tick(time.monotonic())  # what gw-a says to a newcomer, if it heard one, goes out now
    await new_bus.subscribe(EPHEMERAL, group="b", handler=new.on_event, start="latest", broadcast=True)
    new.listening()

    async def ticking() -> None:
        while True:
            await here.tick(time.monotonic())
            await new.tick(time.monotonic())
            await asyncio.sleep(0.05)

    ticker = asyncio.create_task(ticking())
    try:
        await until(lambda: new.board.status(BOB).status == "online", timeout=5)
    finally:
        ticker.cancel()
        await here_bus.stop()
        await new_bus.stop()


async def test_presence_set_says_what_the_others_see_when_another_device_is_online(cluster: Cluster) -> None:
    a = await cluster.start("gw-a")
    b = await cluster.start("gw-b")
    await cluster.join(ROOM, ADA, BOB)
    laptop = await cluster.connect(a, BOB)
    phone = await cluster.connect(b, BOB)
    await until(lambda: b.hub.presence.board.status(BOB, excluding="gw-b").status == "online")
    assert await phone.call("presence:set", {"status": "away"}) == {"ok": True, "status": "away", "seen_as": "online"}

    tablet = await cluster.connect(b, BOB)  # on the same instance as the phone: its status there is online
    assert await phone.call("presence:set", {"status": "away"}) == {
        "ok": True,
        "status": "online",
        "seen_as": "online",
    }
    await tablet.sio.disconnect()
    await laptop.sio.disconnect()
    await until(lambda: b.hub.presence.board.status(BOB, excluding="gw-b").status == "offline")
    assert await phone.call("presence:set", {"status": "away"}) == {"ok": True, "status": "away", "seen_as": "away"}


async def test_a_member_connecting_is_shown_online_in_rooms_their_client_does_not_subscribe_to(
    cluster: Cluster,
) -> None:
    # After an all-in-one restart nothing is replayed: the instance asks for the rooms of whoever connects.
    gateway = await cluster.start("gw-a")
    cluster.rooms.listed[BOB] = {ROOM: Membership(role="member", room_version=3)}
    cluster.rooms.answers[(ROOM, ADA)] = Membership(role="member", room_version=3)
    ada = await cluster.connect(gateway, ADA)
    answer = await subscribe(ada)
    await cluster.connect(gateway, BOB)  # a terminal client with another room open: it never subscribes here
    await until(lambda: shown(ada, answer).get(str(BOB)) == "online")
    assert gateway.hub.memberships.role(ROOM, BOB) == "member"


async def test_a_room_list_older_than_the_rooms_events_does_not_bring_back_who_left(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    gateway = await cluster.start("gw-a")
    await cluster.join(ROOM, ADA, BOB)
    cluster.rooms.listed[BOB] = {ROOM: Membership(role="member", room_version=2)}
    read, answer = asyncio.Event(), asyncio.Event()
    listed = cluster.rooms.rooms_of

    async def read_before_he_left(*, token: str) -> dict[uuid.UUID, Membership]:
        found = await listed(token=token)
        read.set()
        await answer.wait()  # the answer is on its way back while he leaves
        return found

    monkeypatch.setattr(cluster.rooms, "rooms_of", read_before_he_left)
    await cluster.connect(gateway, BOB)
    await read.wait()
    left = rev.MemberLeft(room_id=ROOM, room_version=3, user_id=BOB, occurred_at=datetime.now(UTC))
    await InProcessBus(cluster.broker).publish(ROOMS_EVENTS, left, source="rooms")
    await until(lambda: gateway.hub.memberships.role(ROOM, BOB) is None)
    answer.set()
    await until(lambda: BOB in gateway.hub.access.rooms_asked and not gateway.hub.background)  # the list is in
    assert gateway.hub.memberships.role(ROOM, BOB) is None
