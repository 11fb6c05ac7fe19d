"""End to end in split mode: every service its own process on Kafka, two gateways, clients only on the gateways.

Users sign up through gateway A's proxy, chat across gateways A and B, a stranger hears nothing, a resend is not
delivered twice, and a client that comes back on the other gateway recovers exactly what it missed.
"""

from __future__ import annotations

import asyncio
from typing import Any

from .product import PASSWORD, Client, connect, until
from .split import Split, split

__all__ = ["split"]  # the fixture, imported for pytest


async def _subscribed(client: Client, room_id: str, **extra: Any) -> dict[str, Any]:
    """Subscribe; each gateway learns memberships from chat.rooms.events, so wait out ``not_member`` a while."""
    answer: dict[str, Any] = {}
    for _ in range(150):
        answer = dict(await client.sio.call("room:subscribe", {"room_id": room_id, **extra}, timeout=15))
        if answer["ok"] or answer["error"]["code"] != "not_member":
            return answer
        await asyncio.sleep(0.1)
    return answer


async def _send(client: Client, room_id: str, client_msg_id: str, body: str) -> dict[str, Any]:
    answer = await client.sio.call(
        "message:send", {"room_id": room_id, "client_msg_id": client_msg_id, "body": body}, timeout=20
    )
    assert answer["ok"] is True, answer
    return dict(answer)


async def test_users_on_two_gateways_chat_a_stranger_hears_nothing_and_a_client_recovers_on_the_other_gateway(
    split: Split,
) -> None:
    print(f"split start-up: {split.startup['total']:.2f}s")
    ada, bob, eve = [await split.sign_up(name) for name in ("ada", "bob", "eve")]
    gateway_a, gateway_b = split.http_for(0), split.http_for(1)
    created = await gateway_a.post(
        "/api/rooms",
        json={"kind": "public", "name": "lobby"},
        headers={"Authorization": f"Bearer {ada['access_token']}"},
    )
    assert created.status_code == 201, created.text
    room_id = created.json()["id"]
    joined = await gateway_b.post(
        f"/api/rooms/{room_id}/join", headers={"Authorization": f"Bearer {bob['access_token']}"}
    )
    assert joined.status_code == 200, joined.text

    a = await connect(split.at(0), ada["access_token"])
    b = await connect(split.at(1), bob["access_token"])
    e = await connect(split.at(1), eve["access_token"])
    back: Client | None = None
    try:
        assert (await _subscribed(a, room_id))["ok"] is True
        assert (await _subscribed(b, room_id))["ok"] is True
        stranger = await e.sio.call("room:subscribe", {"room_id": room_id}, timeout=15)
        assert stranger["error"]["code"] == "not_member"

        # Typing and presence cross gateways on chat.ephemeral.
        def typing(client: Client) -> list[bool]:
            return [p["typing"] for ev, p in client.received if ev == "typing"]

        def bob_presence(client: Client) -> list[str]:
            return [p["status"] for ev, p in client.received if ev == "presence" and p["user_id"] == bob["user_id"]]

        await a.sio.call("typing:start", {"room_id": room_id}, timeout=15)
        await until(lambda: typing(b) == [True])
        await until(lambda: typing(b) == [True, False], timeout=10)  # expired after 1.5 s without a renewal
        await b.sio.call("presence:set", {"status": "away"}, timeout=15)
        await until(lambda: bob_presence(a)[-1:] == ["away"])
        await b.sio.call("presence:set", {"status": "online"}, timeout=15)
        await until(lambda: bob_presence(a)[-1:] == ["online"])
        assert e.received == [], "a non-member sees neither typing nor presence"

        first = await _send(a, room_id, "a-1", "hi bob, from gateway A")
        assert first["seq"] == 1
        await until(lambda: b.messages(room_id) == [1])
        reply = await _send(b, room_id, "b-1", "hi ada, from gateway B")
        assert reply["seq"] == 2
        await until(lambda: a.messages(room_id) == [1, 2])

        again = await _send(a, room_id, "a-1", "hi bob, from gateway A")
        assert (again["seq"], again["message_id"]) == (1, first["message_id"]), "a resend gets the same message"
        await asyncio.sleep(0.5)
        assert b.messages(room_id) == [1, 2], "the resend is not delivered twice"
        assert a.messages(room_id) == [1, 2]
        assert e.received == [], "a non-member on the same gateway as bob receives nothing"

        shown = len(bob_presence(a))
        await b.sio.disconnect()
        await until(lambda: bob_presence(a)[shown:] == ["offline"], timeout=10)  # gateway B, after the grace
        for n in range(3, 53):
            assert (await _send(a, room_id, f"a-{n}", f"#{n}"))["seq"] == n
        back = await connect(split.at(0), bob["access_token"])  # bob comes back on the other gateway
        recovered = await _subscribed(back, room_id, last_seq=2)
        assert (recovered["ok"], recovered["recovered"], recovered["replayed"]) == (True, True, 50), recovered
        await until(lambda: len(back.messages(room_id)) == 50)
        assert back.messages(room_id) == list(range(3, 53)), "exactly the missed messages, in order"
        assert e.received == []

        # Ending one session closes that session's socket (on whichever gateway) and no other.
        second = await gateway_b.post("/api/auth/login", json={"identifier": "ada", "password": PASSWORD})
        assert second.status_code == 200, second.text
        other_device = await connect(split.at(1), second.json()["access_token"])
        try:
            ended = await gateway_a.post("/api/auth/logout", headers={"Authorization": f"Bearer {ada['access_token']}"})
            assert ended.status_code == 204, ended.text
            await until(lambda: not a.sio.connected, timeout=5)
            assert [p for ev, p in a.received if ev == "session:ended"] == [{"reason": "logout"}]
            await asyncio.sleep(0.5)
            assert other_device.sio.connected, "the other session's socket stays"
        finally:
            await other_device.sio.disconnect()
    finally:
        for client in (a, b, e, back):
            if client is not None and client.sio.connected:
                await client.sio.disconnect()


async def test_the_gateways_proxy_the_services_and_answer_502_when_one_is_down(split: Split) -> None:
    ada = await split.sign_up("ada")
    headers = {"Authorization": f"Bearer {ada['access_token']}", "X-Correlation-ID": "split-proxy-1"}
    gateway_b = split.http_for(1)

    me = await gateway_b.get("/api/auth/me", headers=headers)
    assert me.status_code == 200, me.text
    assert me.json()["username"] == "ada"
    assert me.headers["x-correlation-id"] == "split-proxy-1"
    assert (await gateway_b.get("/api/rooms/about")).json()["service"] == "rooms"
    assert (await gateway_b.get("/api/gateway/")).json()["service"] == "gateway"
    traversal = await gateway_b.get("/api/auth/%2e%2e/rooms/about")
    assert traversal.status_code == 400, traversal.text

    await split.stop("rooms")
    assert not split.children["rooms"].killed, "rooms stops on SIGTERM within the grace period"
    down = await gateway_b.get("/api/rooms/about", headers=headers)
    assert down.status_code == 502
    assert down.headers["content-type"] == "application/problem+json"
    assert down.json()["code"] == "upstream_unavailable"
    assert down.headers["x-correlation-id"] == "split-proxy-1"
    assert (await gateway_b.get("/api/auth/me", headers=headers)).status_code == 200, "the other services still answer"
