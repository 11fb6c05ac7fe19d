"""End to end in split mode: every service its own process on Kafka, two gateways, clients only on the gateways.

Users sign up through gateway A's proxy, chat across gateways A and B, a stranger hears nothing, a resend is not
delivered twice, and a client that comes back on the other gateway recovers exactly what it missed.
"""

from __future__ import annotations

import asyncio

from .block_scenario import block_scenario
from .product import PASSWORD, Client, connect, until
from .scenario import chat_scenario
from .split import Split, split

__all__ = ["split"]  # the fixture, imported for pytest


async def test_the_chat_scenario_across_two_gateways_then_typing_presence_and_a_logout(split: Split) -> None:
    """The same scenario as the all-in-one mode (``scenario.chat_scenario``), ada on gateway A and bob on B."""
    print(f"split start-up: {split.startup['total']:.2f}s")
    outcome = await chat_scenario([split.at(0), split.at(1)])
    room_id, ada, bob = outcome.room_id, outcome.users["ada"], outcome.users["bob"]

    a = await connect(split.at(0), ada["access_token"])
    b = await connect(split.at(1), bob["access_token"])
    e = await connect(split.at(1), outcome.users["eve"]["access_token"])
    try:
        for client in (a, b):
            assert (await client.sio.call("room:subscribe", {"room_id": room_id}, timeout=15))["ok"] is True

        # Typing and presence cross gateways on chat.ephemeral.
        def typing(client: Client) -> list[bool]:
            return [p["typing"] for ev, p in client.received if ev == "typing"]

        def bob_presence(client: Client) -> list[str]:
            return client.presence(bob["user_id"])

        await a.sio.call("typing:start", {"room_id": room_id}, timeout=15)
        await until(lambda: typing(b) == [True])
        await until(lambda: typing(b) == [True, False], timeout=10)  # expired after 1.5 s without a renewal
        await b.sio.call("presence:set", {"status": "away"}, timeout=15)
        await until(lambda: bob_presence(a)[-1:] == ["away"])
        await b.sio.call("presence:set", {"status": "online"}, timeout=15)
        await until(lambda: bob_presence(a)[-1:] == ["online"])
        shown = len(bob_presence(a))
        await b.sio.disconnect()
        await until(lambda: bob_presence(a)[shown:] == ["offline"], timeout=10)  # gateway B, after the grace
        assert e.received == [], "a non-member sees neither typing nor presence"

        # Ending one session closes that session's socket (on whichever gateway) and no other.
        second = await split.http_for(1).post("/api/auth/login", json={"identifier": "ada", "password": PASSWORD})
        assert second.status_code == 200, second.text
        other_device = await connect(split.at(1), second.json()["access_token"])
        try:
            ended = await split.http_for(0).post(
                "/api/auth/logout", headers={"Authorization": f"Bearer {ada['access_token']}"}
            )
            assert ended.status_code == 204, ended.text
            await until(lambda: not a.sio.connected, timeout=5)
            assert [p for ev, p in a.received if ev == "session:ended"] == [{"reason": "logout"}]
            await asyncio.sleep(0.5)
            assert other_device.sio.connected, "the other session's socket stays"
        finally:
            await other_device.sio.disconnect()
    finally:
        for client in (a, b, e):
            if client.sio.connected:
                await client.sio.disconnect()


async def test_a_block_closes_the_direct_room_across_two_gateways(split: Split) -> None:
    """The same scenario as the all-in-one mode (``block_scenario.block_scenario``), amy on gateway A, ben on B."""
    await block_scenario([split.at(0), split.at(1)])


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
