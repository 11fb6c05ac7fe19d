"""The gateway's live behaviour with real Socket.IO clients over loopback: typing, presence across instances,
token refresh and expiry on a live socket, slow clients, and membership learnt from the rooms service."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import socketio

from chat_contracts import messages_events as mev
from chat_contracts import rooms as rev
from chat_contracts.topics import MESSAGES_EVENTS, ROOMS_EVENTS, USERS_EVENTS
from chat_contracts.users import UserSessionsRevoked
from chat_gateway.adapters import fanout
from chat_gateway.service.delivery import new_message
from chat_gateway.service.ports import Membership
from chat_runtime.bus.inprocess import InProcessBus

from .harness import Client, Cluster, Gateway, message_created, until

ADA, BOB, EVE = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
ROOM = uuid.uuid4()


async def subscribed(client: Client, room: uuid.UUID = ROOM) -> dict[str, object]:
    answer = await client.call("room:subscribe", {"room_id": str(room)}, timeout=10)
    assert answer["ok"] is True, answer
    return dict(answer)


def typing_of(client: Client, user: uuid.UUID) -> list[bool]:
    return [e["typing"] for e in client.events("typing") if e["user_id"] == str(user)]


def presence_of(client: Client, user: uuid.UUID) -> list[str]:
    return [e["status"] for e in client.presence(user)]


async def test_typing_reaches_other_members_only_is_throttled_and_expires(cluster: Cluster) -> None:
    gateway = await cluster.start("gw-a")
    await cluster.join(ROOM, ADA, BOB)
    ada, bob, eve = [await cluster.connect(gateway, u) for u in (ADA, BOB, EVE)]
    await subscribed(ada)
    await subscribed(bob)

    answer = await ada.call("typing:start", {"room_id": str(ROOM)})
    assert answer == {"ok": True, "room_id": str(ROOM), "ttl_seconds": 1.0}
    await ada.call("typing:start", {"room_id": str(ROOM)})  # a renewal inside the throttle
    await until(lambda: typing_of(bob, ADA) == [True])
    await until(lambda: typing_of(bob, ADA) == [True, False])  # no renewal: it expires by itself
    assert typing_of(ada, ADA) == [], "the typist's own sockets are not told"

    await ada.call("typing:start", {"room_id": str(ROOM)})
    await until(lambda: typing_of(bob, ADA) == [True, False, True])
    await ada.call("typing:stop", {"room_id": str(ROOM)})
    await until(lambda: typing_of(bob, ADA) == [True, False, True, False])

    await bob.call("typing:start", {"room_id": str(ROOM)})
    await until(lambda: typing_of(ada, BOB) == [True])
    await bob.sio.disconnect()
    await until(lambda: typing_of(ada, BOB) == [True, False])  # a closed socket stops its typing

    refused = await eve.call("typing:start", {"room_id": str(ROOM)})
    assert refused["error"]["code"] == "not_member"
    assert eve.events("typing") == [], "a non-member hears nothing"
    assert eve.presence() == [], "a non-member hears nothing"


async def test_presence_is_shown_on_subscribe_survives_a_quick_reconnect_and_goes_offline_after_grace(
    cluster: Cluster,
) -> None:
    gateway = await cluster.start("gw-a", presence_grace_seconds=1.0)
    await cluster.join(ROOM, ADA, BOB)
    bob = await cluster.connect(gateway, BOB)
    ada = await cluster.connect(gateway, ADA)
    await until(lambda: gateway.hub.presence.board.status(BOB).status == "online")
    answer = await subscribed(ada)
    assert {p["user_id"]: p["status"] for p in answer["presence"]} == {str(BOB): "online", str(ADA): "online"}  # type: ignore[attr-defined]

    assert (await bob.call("presence:set", {"status": "away"})) == {"ok": True, "status": "away", "seen_as": "away"}
    await until(lambda: presence_of(ada, BOB) == ["away"])
    second = await cluster.connect(gateway, BOB)  # another device, online
    await until(lambda: presence_of(ada, BOB) == ["away", "online"])

    await bob.sio.disconnect()
    await second.sio.disconnect()
    await asyncio.sleep(0.3)
    again = await cluster.connect(gateway, BOB)  # back within the grace period: no flap
    await asyncio.sleep(1.5)
    assert presence_of(ada, BOB) == ["away", "online"]

    await again.sio.disconnect()
    await until(lambda: presence_of(ada, BOB)[-1:] == ["offline"])
    offline = ada.presence(BOB)[-1]
    assert offline["last_seen"] is not None
    bad = await ada.call("presence:set", {"status": "invisible"})
    assert bad["error"]["code"] == "validation_failed"


async def test_presence_across_instances_and_a_silent_instance_is_forgotten(cluster: Cluster) -> None:
    a = await cluster.start("gw-a")
    b = await cluster.start("gw-b")
    await cluster.join(ROOM, ADA, BOB)
    ada = await cluster.connect(a, ADA)
    await subscribed(ada)
    bob_on_b = await cluster.connect(b, BOB)
    await until(lambda: presence_of(ada, BOB) == ["online"])
    bob_on_a = await cluster.connect(a, BOB)
    await bob_on_b.sio.disconnect()
    await asyncio.sleep(1.2)  # past b's grace period: b reports offline, a still sees bob
    assert presence_of(ada, BOB) == ["online"], "online on any instance is online"

    await bob_on_a.sio.disconnect()
    await until(lambda: presence_of(ada, BOB) == ["online", "offline"])

    c = await cluster.start("gw-c")
    # c reads the rooms topic from its end (docs/decisions/0014): it hears only the joins published from now on.
    await cluster.join(ROOM, ADA, BOB)
    await cluster.connect(c, BOB)
    await until(lambda: presence_of(ada, BOB) == ["online", "offline", "online"])
    await until(lambda: a.hub.presence.board.instances.get("gw-c") is not None)
    await c.stop()  # a crash, as far as the others can tell: no offline report, the heartbeats stop
    await until(lambda: presence_of(ada, BOB) == ["online", "offline", "online", "offline"])


async def test_a_live_socket_is_warned_refreshes_its_token_and_ends_when_it_does_not(cluster: Cluster) -> None:
    gateway = await cluster.start("gw-a", token_warning_seconds=2.5)
    await cluster.join(ROOM, ADA)
    short = timedelta(seconds=4)
    ada = await cluster.connect(gateway, ADA, token=cluster.token(ADA, ttl=short))
    await until(lambda: ada.events("auth:expiring"))
    warning = ada.events("auth:expiring")[0]
    assert 0 < warning["seconds_left"] <= 2.5

    someone_else = await ada.call("auth:refresh", {"token": cluster.token(BOB)})
    assert someone_else["error"]["code"] == "forbidden"
    forged = await ada.call("auth:refresh", {"token": "x" * 40})
    assert forged["error"]["code"] == "token_malformed"
    fresh = await ada.call("auth:refresh", {"token": cluster.token(ADA)})
    assert fresh["ok"] is True
    assert datetime.fromisoformat(fresh["expires_at"]) > datetime.now(UTC) + timedelta(minutes=10)
    await asyncio.sleep(3)
    assert ada.sio.connected, "the refreshed socket lives on"
    assert ada.events("session:ended") == []
    await subscribed(ada)

    expired = socketio.AsyncClient(reconnection=False)
    refusals: list[dict[str, Any]] = []
    expired.on("connect_error", refusals.append)
    token = cluster.token(EVE, ttl=timedelta(seconds=-5))
    with pytest.raises(socketio.exceptions.ConnectionError):
        await expired.connect(gateway.base, auth={"token": token}, transports=["websocket"], wait_timeout=10)
    assert refusals[0]["data"]["code"] == "token_expired", "an expired token is refused at connect, with a code"
    bob = await cluster.connect(gateway, BOB, token=cluster.token(BOB, ttl=short))
    await until(lambda: not bob.sio.connected, timeout=8)
    assert bob.events("session:ended") == [{"reason": "token_expired"}]


async def refusal(gateway: Gateway, token: str, *, within: float = 5) -> dict[str, Any]:
    """The ``connect_error`` data once a handshake with ``token`` is refused, which must happen ``within`` seconds."""
    async with asyncio.timeout(within):
        while True:
            client = socketio.AsyncClient(reconnection=False)
            refusals: list[dict[str, Any]] = []
            client.on("connect_error", refusals.append)
            try:
                await client.connect(gateway.base, auth={"token": token}, transports=["websocket"], wait_timeout=10)
            except socketio.exceptions.ConnectionError:
                return dict(refusals[0]["data"])
            await client.disconnect()


async def test_a_token_of_an_ended_session_is_refused_at_the_handshake_and_on_refresh(cluster: Cluster) -> None:
    gateway = await cluster.start("gw-a")
    laptop, phone = uuid.uuid4(), uuid.uuid4()
    ended = cluster.token(ADA, session=laptop)
    still_fine = await cluster.connect(gateway, ADA, token=cluster.token(ADA, session=phone))
    hours_old = await cluster.connect(gateway, ADA, token=ended)

    revoked = UserSessionsRevoked(user_id=ADA, session_ids=(laptop,), reason="logout", occurred_at=datetime.now(UTC))
    await InProcessBus(cluster.broker).publish(USERS_EVENTS, revoked, source="auth")
    await until(lambda: not hours_old.sio.connected)

    assert (await refusal(gateway, ended))["code"] == "session_revoked"
    answer = await still_fine.call("auth:refresh", {"token": ended})
    assert answer["error"]["code"] == "session_revoked"
    assert still_fine.sio.connected, "the other session's socket stays"
    assert (await cluster.connect(gateway, ADA, token=cluster.token(ADA, session=phone))).sio.connected


async def test_a_slow_client_misses_typing_first_and_is_ended_rather_than_buffered(cluster: Cluster) -> None:
    gateway = await cluster.start("gw-a", buffer_soft_limit_bytes=10_000, buffer_hard_limit_bytes=100_000)
    await cluster.join(ROOM, ADA, BOB, EVE)
    ada, bob, eve = [await cluster.connect(gateway, u) for u in (ADA, BOB, EVE)]
    for client in (ada, bob, eve):
        await subscribed(client)
    hub = gateway.hub
    bob_sid = next(sid for sid, c in hub.connections.by_sid.items() if c.user.sub == BOB)
    bob_eio = hub.sio.manager.eio_sid_from_sid(bob_sid, "/")
    backlog = {"value": 50_000}
    bob_socket = fanout.socket_of(hub.sio.eio, bob_eio)
    assert bob_socket is not None
    bob_socket.backlog = lambda: backlog["value"]  # type: ignore[method-assign]  # its client reads no more

    await ada.call("typing:start", {"room_id": str(ROOM)})
    await until(lambda: typing_of(eve, ADA) == [True])
    bus = InProcessBus(cluster.broker)

    async def message(seq: int) -> None:
        await bus.publish(MESSAGES_EVENTS, created(seq), source="messages")

    await message(1)
    await until(lambda: len(eve.events("message:new")) == 1)
    await until(lambda: len(bob.events("message:new")) == 1)
    assert typing_of(bob, ADA) == [], "over the soft limit: typing is dropped, messages are not"

    backlog["value"] = 100_000
    await message(2)
    await until(lambda: not bob.sio.connected)
    assert bob.events("session:ended") == [{"reason": "slow_consumer"}]
    assert [m["seq"] for m in bob.events("message:new")] == [1], "never a silent gap: the socket ends instead"
    await until(lambda: [m["seq"] for m in eve.events("message:new")] == [1, 2])
    assert [m["seq"] for m in ada.events("message:new")] == [1, 2]


async def test_a_membership_the_projection_has_not_seen_is_asked_of_the_rooms_service(cluster: Cluster) -> None:
    gateway = await cluster.start("gw-a")
    room = uuid.uuid4()
    eve = await cluster.connect(gateway, EVE)
    refused = await eve.call("room:subscribe", {"room_id": str(room)})
    assert refused["error"]["code"] == "not_member"
    assert cluster.rooms.asked == 1

    cluster.rooms.answers[(room, EVE)] = Membership(role="member", room_version=7)
    answer = await eve.call("room:subscribe", {"room_id": str(room)})
    assert answer["ok"] is True, answer
    bus = InProcessBus(cluster.broker)
    now = datetime.now(UTC)
    # Late events from before the rooms service's answer (left at 5, joined again at 7) change nothing.
    await bus.publish(
        ROOMS_EVENTS, rev.MemberLeft(room_id=room, room_version=5, user_id=EVE, occurred_at=now), source="rooms"
    )
    await until(lambda: gateway.hub.memberships.versions.get(room) == 5)
    assert gateway.hub.memberships.role(room, EVE) == "member"
    assert eve.events("room:removed") == []
    # A newer removal does apply.
    kicked = rev.MemberKicked(room_id=room, room_version=8, user_id=EVE, by=ADA, occurred_at=now)
    await bus.publish(ROOMS_EVENTS, kicked, source="rooms")
    await until(lambda: eve.events("room:removed") == [{"room_id": str(room)}])
    assert cluster.rooms.asked == 2


async def test_an_event_with_its_own_budget_cannot_starve_the_others(cluster: Cluster) -> None:
    gateway = await cluster.start("gw-a")
    await cluster.join(ROOM, ADA)
    ada = await cluster.connect(gateway, ADA)
    answers = [await ada.call("typing:start", {"room_id": str(ROOM)}) for _ in range(8)]
    assert [a["ok"] for a in answers[:6]] == [True] * 6
    refused = answers[6]["error"]
    assert refused["code"] == "rate_limited"
    assert 0 < refused["retry_after"] <= 1
    assert (await subscribed(ada))["ok"] is True, "other events still have their budget"


async def test_the_budget_for_all_events_is_shared_by_a_users_sockets(cluster: Cluster) -> None:
    gateway = await cluster.start("gw-a", events_burst=5, events_per_second=0.5)
    await cluster.join(ROOM, ADA)
    phone, laptop = await cluster.connect(gateway, ADA), await cluster.connect(gateway, ADA)
    codes = []
    for client in (phone, laptop, phone, laptop, phone, laptop):
        answer = await client.call("room:unsubscribe", {"room_id": str(ROOM)})
        codes.append("ok" if answer["ok"] else answer["error"]["code"])
    assert codes == ["ok"] * 5 + ["rate_limited"], "two sockets do not double a user's budget"


async def test_events_named_like_lifecycle_handlers_are_refused_and_change_nothing(cluster: Cluster) -> None:
    gateway = await cluster.start("gw-a")
    await cluster.join(ROOM, ADA)
    ada = await cluster.connect(gateway, ADA)
    token = cluster.token(EVE)
    for event, args in [
        ("connect", ({"HTTP_ORIGIN": "x"}, {"token": token})),  # would re-run authentication as someone else
        ("disconnect", ("io client disconnect",)),  # would drop this socket's state while it stays open
        ("*", ({"room_id": str(ROOM)},)),
    ]:
        answer = await ada.sio.call(event, args if len(args) > 1 else args[0], timeout=5)
        assert answer["error"]["code"] == "unknown_event", (event, answer)
    assert ada.sio.connected
    assert (await subscribed(ada))["ok"] is True, "the socket is still ada's"
    assert {c.user.sub for c in gateway.hub.connections.by_sid.values()} == {ADA}


async def test_members_hear_of_room_changes_and_a_user_of_being_added_or_invited(cluster: Cluster) -> None:
    gateway = await cluster.start("gw-a")
    await cluster.join(ROOM, ADA)
    ada, bob, eve = [await cluster.connect(gateway, u) for u in (ADA, BOB, EVE)]
    await subscribed(ada)
    await cluster.join(ROOM, BOB)
    await until(lambda: bob.events("room:added") == [{"room_id": str(ROOM), "role": "member", "by": None}])
    await until(lambda: [e["type"] for e in ada.events("room:event")] == ["room.member_joined"])
    assert ada.events("room:event")[0]["user_id"] == str(BOB)

    bus = InProcessBus(cluster.broker)
    cluster.version += 1
    invited = rev.MemberInvited(
        room_id=ROOM, room_version=cluster.version, user_id=EVE, by=ADA, occurred_at=datetime.now(UTC)
    )
    await bus.publish(ROOMS_EVENTS, invited, source="rooms")
    await until(lambda: eve.events("room:invited") == [{"room_id": str(ROOM), "by": str(ADA)}])
    await until(lambda: len(ada.events("room:event")) == 2)
    assert eve.events("room:event") == [], "the invitee is not a member: no room events"

    cluster.version += 1
    old = rev.MemberInvited(
        room_id=ROOM,
        room_version=cluster.version,
        user_id=EVE,
        by=ADA,
        occurred_at=datetime.now(UTC) - timedelta(hours=1),
    )
    await bus.publish(ROOMS_EVENTS, old, source="rooms")  # a replay of old history is applied, not announced
    await until(lambda: gateway.hub.memberships.versions.get(ROOM) == cluster.version)
    await asyncio.sleep(0.2)
    assert len(eve.events("room:invited")) == 1
    assert len(ada.events("room:event")) == 2


def created(seq: int, sender: uuid.UUID = ADA) -> mev.MessageCreated:
    return message_created(ROOM, seq, sender)


async def test_a_message_re_announced_to_answer_a_resend_is_not_shown_again_even_by_a_fresh_gateway(
    cluster: Cluster,
) -> None:
    """A resent client_msg_id makes the messages service announce the stored message again. A gateway that has
    just restarted knows nothing of what it fanned out before: it must still not send a socket a seq it has
    already sent it, whether by replay or live."""
    gateway = await cluster.start("gw-a")
    await cluster.join(ROOM, ADA, BOB)
    cluster.history.rooms[ROOM] = [new_message(created(seq)) for seq in (1, 2, 3)]
    bob = await cluster.connect(gateway, BOB)
    fresh = await cluster.connect(gateway, ADA)
    answer = await bob.call("room:subscribe", {"room_id": str(ROOM), "last_seq": 1})
    assert (answer["ok"], answer["recovered"], answer["seq"]) == (True, True, 3), answer
    await subscribed(fresh)  # no last_seq: live only
    bus = InProcessBus(cluster.broker)

    await bus.publish(MESSAGES_EVENTS, created(3), source="messages")  # the resend of seq 3, answered again
    await bus.publish(MESSAGES_EVENTS, created(4), source="messages")
    await until(lambda: [m["seq"] for m in fresh.events("message:new")] == [3, 4])
    await until(lambda: [m["seq"] for m in bob.events("message:new")] == [2, 3, 4])
    await bus.publish(MESSAGES_EVENTS, created(4), source="messages")  # and again, after both have it
    await bus.publish(MESSAGES_EVENTS, created(5), source="messages")
    await until(lambda: [m["seq"] for m in bob.events("message:new")] == [2, 3, 4, 5])
    await until(lambda: [m["seq"] for m in fresh.events("message:new")] == [3, 4, 5])
