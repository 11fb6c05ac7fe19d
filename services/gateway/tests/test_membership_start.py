"""A bounded start (docs/decisions/0014): a gateway reads chat.rooms.events from the topic's end, never replays it,
and learns the memberships from before its start from the rooms service, the newer of that answer and the events
winning for each member."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from prometheus_client import CollectorRegistry

from chat_contracts import messages_events as mev
from chat_contracts import rooms as rev
from chat_contracts.base import Contract
from chat_contracts.topics import MESSAGES_EVENTS, ROOMS_EVENTS
from chat_gateway.bootstrap import bootstrap
from chat_gateway.domain.membership import Memberships
from chat_gateway.service.ports import Membership
from chat_gateway.settings import GatewaySettings
from chat_gateway.testing.fakes import MemoryRooms
from chat_runtime.app import build_app
from chat_runtime.bus.inprocess import InProcessBroker, InProcessBus
from chat_runtime.bus.metrics import BusMetrics
from chat_runtime.bus.port import NotCaughtUp
from chat_runtime.settings import load_settings

from .harness import Client, Cluster, message_created, until

ADA, BOB, EVE = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
ROOM = uuid.uuid4()
EARLIER_EVENTS = 200


def consumed(registry: CollectorRegistry, topic: str) -> float:
    """Records of ``topic`` the instance's consumers handled, as its ``/metrics`` counts them."""
    total = 0.0
    for metric in registry.collect():
        for sample in metric.samples:
            if sample.name == "chat_bus_consumed_total" and sample.labels.get("topic") == topic:
                total += sample.value
    return total


async def publish(cluster: Cluster, data: Contract) -> None:
    topic = MESSAGES_EVENTS if isinstance(data, mev.MessageCreated) else ROOMS_EVENTS
    await InProcessBus(cluster.broker).publish(topic, data, source="test")


def created(seq: int) -> mev.MessageCreated:
    return message_created(ROOM, seq, ADA)


def joined(user: uuid.UUID, version: int) -> rev.MemberJoined:
    return rev.MemberJoined(room_id=ROOM, room_version=version, user_id=user, role="member", occurred_at=_now())


def kicked(user: uuid.UUID, version: int) -> rev.MemberKicked:
    return rev.MemberKicked(room_id=ROOM, room_version=version, user_id=user, by=ADA, occurred_at=_now())


async def subscribe(client: Client) -> dict[str, Any]:
    answer = dict(await client.call("room:subscribe", {"room_id": str(ROOM)}))
    assert answer["ok"] is True, answer
    return answer


async def test_a_gateway_started_after_many_room_events_reads_none_of_them_and_is_ready_at_once(
    tmp_path: Path,
) -> None:
    broker = InProcessBroker()
    rooms = InProcessBus(broker)
    for version in range(1, EARLIER_EVENTS + 1):
        await rooms.publish(ROOMS_EVENTS, joined(uuid.uuid4(), version), source="rooms")
    registry = CollectorRegistry()
    bus = InProcessBus(broker, metrics=BusMetrics(registry))
    module = bootstrap(load_settings(GatewaySettings, data_dir=tmp_path), bus=bus, registry=registry)
    with pytest.raises(NotCaughtUp, match="not subscribed"):
        await module.check_consumers()
    app = build_app([module], bus=bus, registry=registry)
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://t") as http,
    ):
        answer = await http.get("/readyz")
        assert answer.status_code == 200, answer.json()
        assert consumed(registry, ROOMS_EVENTS.name) == 0
        assert module.hub.memberships.members == {}

        await rooms.publish(ROOMS_EVENTS, joined(EVE, EARLIER_EVENTS + 1), source="rooms")
        await until(lambda: consumed(registry, ROOMS_EVENTS.name) == 1)  # what was published after the start
        assert module.hub.memberships.role(ROOM, EVE) == "member"


async def test_a_member_of_a_room_from_before_the_start_can_subscribe_and_receives_messages(cluster: Cluster) -> None:
    for user, version in ((ADA, 1), (BOB, 2)):
        await publish(cluster, joined(user, version))
        cluster.rooms.answers[(ROOM, user)] = Membership(role="member", room_version=2)
    gateway = await cluster.start("gw-a")
    ada, bob = await cluster.connect(gateway, ADA), await cluster.connect(gateway, BOB)
    for client in (ada, bob):
        await subscribe(client)
    await publish(cluster, created(1))
    await until(lambda: all([m["seq"] for m in c.events("message:new")] == [1] for c in (ada, bob)))
    assert gateway.hub.memberships.versions == {}, "no room event was read: the rooms service answered"


async def test_a_member_from_before_the_start_kicked_after_it_stops_receiving(cluster: Cluster) -> None:
    for user in (ADA, BOB):
        cluster.rooms.answers[(ROOM, user)] = Membership(role="member", room_version=2)
    gateway = await cluster.start("gw-a")
    ada, bob = await cluster.connect(gateway, ADA), await cluster.connect(gateway, BOB)
    for client in (ada, bob):
        await subscribe(client)
    await publish(cluster, kicked(BOB, 3))
    del cluster.rooms.answers[(ROOM, BOB)]
    await until(lambda: bob.events("room:removed") == [{"room_id": str(ROOM)}])
    await publish(cluster, created(1))
    await until(lambda: [m["seq"] for m in ada.events("message:new")] == [1])
    await asyncio.sleep(0.1)
    assert bob.events("message:new") == []
    refused = await bob.call("room:subscribe", {"room_id": str(ROOM)})
    assert refused["error"]["code"] == "not_member"


class HeldRooms(MemoryRooms):
    """Rooms answers read at once and handed back only when ``release`` is set: an answer in flight."""

    def __init__(self) -> None:
        super().__init__()
        self.read = asyncio.Event()
        self.release = asyncio.Event()

    async def membership(self, room_id: uuid.UUID, *, token: str) -> Membership | None:
        found = await super().membership(room_id, token=token)
        self.read.set()
        await self.release.wait()
        return found


async def test_a_kick_read_while_the_rooms_service_answer_is_in_flight_wins_over_the_older_answer(
    tmp_path: Path,
) -> None:
    rooms = HeldRooms()
    cluster = Cluster(data_dir=tmp_path, rooms=rooms)
    try:
        rooms.answers[(ROOM, BOB)] = Membership(role="member", room_version=2)
        gateway = await cluster.start("gw-a")
        bob = await cluster.connect(gateway, BOB)
        subscribing = asyncio.create_task(bob.call("room:subscribe", {"room_id": str(ROOM)}))
        await rooms.read.wait()
        await publish(cluster, kicked(BOB, 3))  # committed after the answer was read, heard before it is back
        await until(lambda: gateway.hub.memberships.versions.get(ROOM) == 3)
        rooms.release.set()
        answer = await subscribing
        assert answer["ok"] is False
        assert answer["error"]["code"] == "not_member", answer
        assert gateway.hub.memberships.role(ROOM, BOB) is None
        assert gateway.hub.memberships.asking == {}
        assert gateway.hub.memberships.heard == {}
    finally:
        await cluster.close()


async def test_a_join_read_while_a_not_member_answer_is_in_flight_lets_the_member_in(tmp_path: Path) -> None:
    rooms = HeldRooms()
    cluster = Cluster(data_dir=tmp_path, rooms=rooms)
    try:
        gateway = await cluster.start("gw-a")
        bob = await cluster.connect(gateway, BOB)
        subscribing = asyncio.create_task(bob.call("room:subscribe", {"room_id": str(ROOM)}))
        await rooms.read.wait()
        await publish(cluster, joined(BOB, 4))
        await until(lambda: gateway.hub.memberships.role(ROOM, BOB) == "member")
        rooms.release.set()
        assert (await subscribing)["ok"] is True
    finally:
        await cluster.close()


async def test_a_member_on_another_gateway_is_listed_present_though_this_one_never_learnt_their_membership(
    cluster: Cluster,
) -> None:
    for user in (ADA, BOB):
        cluster.rooms.answers[(ROOM, user)] = Membership(role="member", room_version=2)
    cluster.rooms.listed[BOB] = {ROOM: Membership(role="member", room_version=2)}
    a, b = await cluster.start("gw-a"), await cluster.start("gw-b")
    await cluster.connect(b, BOB)  # B learns his rooms and reports him online in them
    await until(lambda: a.hub.presence.board.status(BOB).status == "online")
    assert a.hub.memberships.role(ROOM, BOB) is None
    ada = await cluster.connect(a, ADA)
    answer = await subscribe(ada)
    assert {p["user_id"]: p["status"] for p in answer["presence"]}.get(str(BOB)) == "online"

    await b.stop()  # gateway B goes silent: A shows its users offline in their rooms
    await until(lambda: [p["status"] for p in ada.presence(BOB)][-1:] == ["offline"], timeout=15)


def _now() -> datetime:
    return datetime.now(UTC)


def test_a_room_deleted_while_a_question_is_in_flight_wins_over_the_answer() -> None:
    memberships = Memberships()
    with memberships.question(BOB):
        memberships.apply(rev.RoomDeleted(room_id=ROOM, room_version=5, by=ADA, occurred_at=_now()))
        assert memberships.learn(ROOM, BOB, "member", 4) is None
    assert memberships.role(ROOM, BOB) is None
    assert memberships.heard == {}


def test_an_answer_newer_than_what_was_heard_in_flight_stands_and_older_events_change_nothing() -> None:
    memberships = Memberships()
    with memberships.question(BOB):
        memberships.apply(kicked(BOB, 3))
        assert memberships.learn(ROOM, BOB, "member", 4) == "member"  # kicked at 3, joined again by 4
    memberships.apply(kicked(BOB, 4))  # a late copy at the answer's version
    assert memberships.role(ROOM, BOB) == "member"
    memberships.apply(kicked(BOB, 5))
    assert memberships.role(ROOM, BOB) is None


def test_a_role_change_makes_a_member_of_someone_this_instance_had_not_heard_of() -> None:
    memberships = Memberships()
    changed = rev.MemberRoleChanged(
        room_id=ROOM, room_version=9, user_id=BOB, old_role="member", new_role="admin", by=ADA, occurred_at=_now()
    )
    memberships.apply(changed)
    assert memberships.role(ROOM, BOB) == "admin"
    assert memberships.rooms_of(BOB) == {ROOM}
