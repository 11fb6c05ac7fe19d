"""A direct room closed by a block (docs/decisions/0009): neither person's typing, presence or receipts reach the
other there, until the block is lifted. Real Socket.IO clients over loopback; events published as the rooms and
messages services and another gateway instance would."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from chat_contracts import ephemeral as eph
from chat_contracts import messages_events as mev
from chat_contracts import rooms as rev
from chat_contracts.topics import EPHEMERAL, MESSAGES_EVENTS, ROOMS_EVENTS
from chat_gateway.service.ports import Membership
from chat_runtime.bus.inprocess import InProcessBus

from .harness import Client, Cluster, Gateway, until

ADA, BOB = uuid.uuid4(), uuid.uuid4()
DM = uuid.uuid4()


async def room_event(cluster: Cluster, gateway: Gateway, event: type[rev.RoomBlocked | rev.RoomUnblocked]) -> None:
    """Publish ``event`` for the direct room as the rooms service would, and wait until the gateway applied it."""
    cluster.version += 1
    data = event(room_id=DM, room_version=cluster.version, occurred_at=datetime.now(UTC))
    await InProcessBus(cluster.broker).publish(ROOMS_EVENTS, data, source="rooms")
    await until(lambda: gateway.hub.memberships.versions.get(DM) == cluster.version)


def typing(user: uuid.UUID, *, on: bool) -> eph.TypingChanged:
    return eph.TypingChanged(
        room_id=DM, user_id=user, typing=on, expires_at=datetime.now(UTC) + timedelta(seconds=30 if on else 0)
    )


def seen(client: Client, event: str, user: uuid.UUID) -> list[dict[str, object]]:
    if event == "presence":
        return client.presence(user)
    return [e for e in client.events(event) if e.get("user_id") == str(user)]


async def test_a_closed_direct_room_shows_neither_person_to_the_other_until_it_reopens(cluster: Cluster) -> None:
    gateway = await cluster.start("gw-a", typing_ttl_seconds=30.0)
    await cluster.join(DM, ADA, BOB)
    ada, bob = await cluster.connect(gateway, ADA), await cluster.connect(gateway, BOB)
    board = gateway.hub.presence.board
    await until(lambda: board.status(ADA).status == board.status(BOB).status == "online")  # reported by the tick
    for client in (ada, bob):
        assert (await client.call("room:subscribe", {"room_id": str(DM)}))["ok"] is True
    await bob.call("typing:start", {"room_id": str(DM)})
    await until(lambda: [e["typing"] for e in seen(ada, "typing", BOB)] == [True])

    await room_event(cluster, gateway, rev.RoomBlocked)
    await until(lambda: [e["typing"] for e in seen(ada, "typing", BOB)] == [True, False])  # stopped by the block
    for client in (bob, ada):  # the blocked person and the blocker alike
        refused = await client.call("typing:start", {"room_id": str(DM)})
        assert refused["error"]["code"] == "user_blocked"
        again = await client.call("room:subscribe", {"room_id": str(DM)})
        assert again["presence"] == [], "nobody's presence in a closed room"

    bus = InProcessBus(cluster.broker)
    # What another instance, not yet aware of the block, might still send; then markers of both people.
    await bus.publish(EPHEMERAL, typing(BOB, on=True), source="gateway")
    presence = eph.PresenceChanged(
        room_id=DM, user_id=BOB, status="away", last_seen=datetime.now(UTC), instance_id="gw-elsewhere"
    )
    await bus.publish(EPHEMERAL, presence, source="gateway")
    await bus.publish(EPHEMERAL, typing(BOB, on=False), source="gateway")  # same room, same partition: comes last
    await bus.publish(MESSAGES_EVENTS, mev.ReadMarkerMoved(room_id=DM, user_id=BOB, up_to_seq=3), source="messages")
    await bus.publish(MESSAGES_EVENTS, mev.ReadMarkerMoved(room_id=DM, user_id=ADA, up_to_seq=3), source="messages")
    await until(lambda: len(seen(ada, "typing", BOB)) == 3 and seen(ada, "room:read", ADA) != [])
    assert [e["typing"] for e in seen(ada, "typing", BOB)] == [True, False, False], "no typing from bob"
    assert seen(ada, "presence", BOB) == [], "no presence from bob"
    assert seen(ada, "room:read", BOB) == [], "no read receipt from bob"
    await until(lambda: seen(bob, "room:read", BOB) != [])
    assert seen(bob, "room:read", ADA) == [], "and none from ada to bob"

    await room_event(cluster, gateway, rev.RoomUnblocked)
    assert (await bob.call("typing:start", {"room_id": str(DM)}))["ok"] is True
    await until(lambda: [e["typing"] for e in seen(ada, "typing", BOB)] == [True, False, False, True])
    reopened = await ada.call("room:subscribe", {"room_id": str(DM)})
    assert {p["user_id"] for p in reopened["presence"]} == {str(ADA), str(BOB)}
    await bus.publish(MESSAGES_EVENTS, mev.ReadMarkerMoved(room_id=DM, user_id=BOB, up_to_seq=4), source="messages")
    await until(lambda: seen(ada, "room:read", BOB) != [])


async def test_a_gateway_that_asks_the_rooms_service_learns_the_block_with_the_membership(cluster: Cluster) -> None:
    gateway = await cluster.start("gw-fresh")
    cluster.rooms.answers[(DM, BOB)] = Membership(role="member", room_version=4, blocked=True)
    bob = await cluster.connect(gateway, BOB)
    refused = await bob.call("typing:start", {"room_id": str(DM)})
    assert refused["error"]["code"] == "user_blocked"
    assert cluster.rooms.asked == 1
    # An older "unblocked" arriving late changes nothing; a newer one reopens the room.
    bus = InProcessBus(cluster.broker)
    late = rev.RoomUnblocked(room_id=DM, room_version=3, occurred_at=datetime.now(UTC))
    await bus.publish(ROOMS_EVENTS, late, source="rooms")
    await until(lambda: gateway.hub.memberships.versions.get(DM) == 3)
    assert (await bob.call("typing:start", {"room_id": str(DM)}))["error"]["code"] == "user_blocked"
    cluster.version = 4
    await room_event(cluster, gateway, rev.RoomUnblocked)
    assert (await bob.call("typing:start", {"room_id": str(DM)}))["ok"] is True
