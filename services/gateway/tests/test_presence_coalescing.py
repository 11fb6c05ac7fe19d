"""Presence is coalesced per room: members whose status changes in one tick are published as one record and shown
as one event, so a room whose members all reconnect at once is not an n² wave of records and deliveries."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from chat_contracts import ephemeral as eph
from chat_contracts.envelope import decode
from chat_contracts.topics import EPHEMERAL
from chat_gateway.domain.membership import Memberships
from chat_gateway.domain.presence import Status
from chat_gateway.service.presence import Presence
from chat_gateway.settings import GatewaySettings
from chat_runtime.bus.inprocess import InProcessBroker, InProcessBus
from chat_runtime.settings import load_settings

ROOM, OTHER_ROOM = uuid.uuid4(), uuid.uuid4()


class Sockets:
    """The hub as the relay sees it: every member online here; broadcasts are recorded."""

    def __init__(self) -> None:
        self.online: set[uuid.UUID] = set()
        self.sent: list[tuple[str, dict[str, Any], uuid.UUID, uuid.UUID | None]] = []

    def local_status(self, user_id: uuid.UUID) -> Status:
        return "online" if user_id in self.online else "offline"

    async def broadcast(
        self,
        event: str,
        payload: dict[str, Any],
        room_id: uuid.UUID,
        *,
        droppable: bool,
        skip_user: uuid.UUID | None = None,
    ) -> None:
        self.sent.append((event, payload, room_id, skip_user))


def relay(tmp_path: Path, bus: InProcessBus, memberships: Memberships, instance: str) -> tuple[Presence, Sockets]:
    settings = load_settings(GatewaySettings, data_dir=tmp_path, instance_id=instance)
    sockets = Sockets()
    return Presence(settings=settings, bus=bus, memberships=memberships, sockets=sockets), sockets


def members(count: int) -> tuple[Memberships, list[uuid.UUID]]:
    memberships = Memberships()
    users = [uuid.uuid4() for _ in range(count)]
    for user in users:
        memberships.learn(ROOM, user, "member", 1)
    memberships.learn(OTHER_ROOM, users[0], "member", 1)
    return memberships, users


async def test_members_coming_online_in_one_tick_are_one_record_per_room_and_one_event(tmp_path: Path) -> None:
    broker = InProcessBroker()
    memberships, users = members(40)
    here, here_sockets = relay(tmp_path, InProcessBus(broker), memberships, "gw-a")
    for user in users:
        here_sockets.online.add(user)
        await here.local_changed(user)
    await here.flush_presence()

    records = [r for r in broker.records(EPHEMERAL.name) if r.header("type") == "presence.changes"]
    assert len(records) == 2, "one record for each room, not one per member and room"

    there, there_sockets = relay(tmp_path, InProcessBus(broker), memberships, "gw-b")
    for record in broker.records(EPHEMERAL.name):
        await there.on_event(decode(record, EPHEMERAL))
    shown = [(event, payload) for event, payload, room, _ in there_sockets.sent if room == ROOM]
    assert [event for event, _ in shown] == ["presence:changes"], "one event for the whole room"
    assert sorted(c["user_id"] for c in shown[0][1]["changes"]) == sorted(str(u) for u in users)
    assert {c["status"] for c in shown[0][1]["changes"]} == {"online"}
    alone = [(event, payload, skip) for event, payload, room, skip in there_sockets.sent if room == OTHER_ROOM]
    assert [(event, payload["user_id"], payload["status"], skip) for event, payload, skip in alone] == [
        ("presence", str(users[0]), "online", users[0])
    ], "one member's change is the plain presence event, not sent to that member's own sockets"


async def test_only_the_latest_status_of_a_tick_is_reported_and_nothing_is_shown_twice(tmp_path: Path) -> None:
    broker = InProcessBroker()
    memberships, users = members(3)
    here, sockets = relay(tmp_path, InProcessBus(broker), memberships, "gw-a")
    ada = users[0]
    sockets.online.add(ada)
    await here.local_changed(ada)
    sockets.online.discard(ada)
    await here._announce(ada, "away")
    await here.flush_presence()
    await here.flush_presence()  # nothing new: nothing published
    changes = [decode(r, EPHEMERAL).data for r in broker.records(EPHEMERAL.name)]
    reported = [c.user_id for d in changes if isinstance(d, eph.PresenceChanges) for c in d.changes]
    assert reported.count(ada) == 2, "one report per room of hers, with the latest status"
    assert {c.status for d in changes if isinstance(d, eph.PresenceChanges) for c in d.changes} == {"away"}
