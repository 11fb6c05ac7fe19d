"""End to end through the whole product in one process (the all-in-one composition served by uvicorn) on real
PostgreSQL and the Mongo-wire server, with real SMTP and real Socket.IO clients: register, verify, create a room,
two users chat, a stranger hears nothing, a client reconnects and recovers exactly what it missed."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
import socketio

from chat_gateway.service.protocol import CLIENT_EVENTS

from .block_scenario import block_scenario
from .product import Client, Product, connect, product
from .product import until as _until
from .scenario import chat_scenario

__all__ = ["product"]  # the fixture, imported for pytest


async def test_the_chat_scenario_in_the_all_in_one_mode(product: Product) -> None:
    """The scenario of ``scenario.chat_scenario``; test_split_mode runs the same one with every service apart."""
    await chat_scenario([product])


async def test_a_block_closes_the_direct_room_in_the_all_in_one_mode(product: Product) -> None:
    """The scenario of ``block_scenario.block_scenario``; test_split_mode runs the same one across two gateways."""
    await block_scenario([product])


async def test_a_socket_without_a_valid_token_is_refused_with_a_code(product: Product) -> None:
    for auth in ({}, {"token": "not.a.token"}):
        client = socketio.AsyncClient(reconnection=False)
        refused: list[Any] = []
        client.on("connect_error", lambda data, bucket=refused: bucket.append(data))
        with pytest.raises(socketio.exceptions.ConnectionError):
            await client.connect(product.base, auth=auth, transports=["websocket"], wait_timeout=10)
        assert refused, auth
        assert isinstance(refused[0], dict), refused
        assert refused[0]["data"]["code"] in {"unauthenticated", "token_malformed"}, refused


async def test_bad_frames_get_coded_acks_and_an_oversized_frame_closes_only_that_socket(product: Product) -> None:
    ada, bob = [await product.sign_up(n) for n in ("ada", "bob")]
    a, b = [await connect(product, t["access_token"]) for t in (ada, bob)]
    try:
        garbage: list[Any] = [
            None,
            [],
            "text",
            5,
            {},
            {"room_id": "not-a-uuid"},
            {"room_id": str(uuid.uuid4()), "x": 1},
        ]
        for event in CLIENT_EVENTS:
            for payload in garbage:
                answer = await a.sio.call(event, payload, timeout=15)
                assert answer["ok"] is False, (event, payload)
                assert answer["error"]["code"] == "validation_failed", (event, payload, answer)
            two_payloads = await a.sio.call(event, ({"room_id": str(uuid.uuid4())}, {"more": 1}), timeout=15)
            assert two_payloads["error"]["code"] == "validation_failed", (event, two_payloads)

        unknown = await a.sio.call("room:explode", {"room_id": str(uuid.uuid4())}, timeout=15)
        assert unknown["error"]["code"] == "unknown_event", unknown

        closed = asyncio.Event()
        b.sio.on("disconnect", lambda *_: closed.set())
        await b.sio.emit("message:send", {"room_id": str(uuid.uuid4()), "client_msg_id": "big", "body": "x" * 70_000})
        async with asyncio.timeout(15):
            await closed.wait()
        assert not b.sio.connected, "a frame over 64 KiB closes that socket"

        still = await a.sio.call("room:explode", {}, timeout=15)
        assert still["error"]["code"] == "unknown_event", "the other sockets are unaffected"
        again = await connect(product, bob["access_token"])
        try:
            fine = await again.sio.call("room:subscribe", {"room_id": str(uuid.uuid4())}, timeout=15)
            assert fine["error"]["code"] == "not_member", "the user can reconnect and carry on"
        finally:
            await again.sio.disconnect()
    finally:
        for client in (a, b):
            if client.sio.connected:
                await client.sio.disconnect()


async def test_a_room_list_subscribes_in_one_call_and_recovers_each_room(product: Product) -> None:
    ada = await product.sign_up("ada")
    headers = {"Authorization": f"Bearer {ada['access_token']}"}
    rooms = [
        (await product.http.post("/api/rooms", json={"kind": kind, "name": name}, headers=headers)).json()["id"]
        for kind, name in (("public", "lobby"), ("private", "backroom"))
    ]
    a = await connect(product, ada["access_token"])
    phone: Client | None = None
    try:
        for room_id in rooms:  # the gateway learns memberships from room events: wait for it
            for _ in range(100):
                answer = await a.sio.call("room:subscribe", {"room_id": room_id}, timeout=15)
                if answer["ok"]:
                    break
                await asyncio.sleep(0.1)
            assert answer["ok"] is True, answer
        for room_id, count in zip(rooms, (3, 2), strict=True):
            for n in range(count):
                body = {"room_id": room_id, "client_msg_id": f"{room_id[:8]}-{n}", "body": f"#{n}"}
                assert (await a.sio.call("message:send", body, timeout=15))["ok"] is True

        phone = await connect(product, ada["access_token"])
        stranger_room = str(uuid.uuid4())
        request = {
            "rooms": [
                {"room_id": rooms[0], "last_seq": 1},
                {"room_id": rooms[1], "last_seq": 0},
                {"room_id": stranger_room},
            ]
        }
        answer = await phone.sio.call("room:subscribe_many", request, timeout=30)
        assert answer["ok"] is True, answer
        first, second, third = answer["results"]
        assert (first["room_id"], first["recovered"], first["replayed"], first["seq"]) == (rooms[0], True, 2, 3)
        assert (second["room_id"], second["recovered"], second["replayed"], second["seq"]) == (rooms[1], True, 2, 2)
        assert (third["room_id"], third["ok"], third["error"]["code"]) == (stranger_room, False, "not_member")
        await _until(lambda: len(phone.messages(rooms[0])) == 2 and len(phone.messages(rooms[1])) == 2)
        assert (phone.messages(rooms[0]), phone.messages(rooms[1])) == ([2, 3], [1, 2])

        live = await a.sio.call("message:send", {"room_id": rooms[1], "client_msg_id": "live", "body": "x"}, timeout=15)
        await _until(lambda: phone.messages(rooms[1])[-1:] == [live["seq"]])

        one = {"room_id": rooms[0]}
        too_many = [{"room_id": str(uuid.uuid4())} for _ in range(101)]
        malformed: list[dict[str, Any]] = [{"rooms": []}, {"rooms": [one, one]}, {"rooms": too_many}, {}]
        for bad in malformed:
            refused = await phone.sio.call("room:subscribe_many", bad, timeout=15)
            assert refused["error"]["code"] == "validation_failed", (bad, refused)
    finally:
        for client in (a, phone):
            if client is not None and client.sio.connected:
                await client.sio.disconnect()


async def test_typing_presence_and_a_refreshed_token_on_a_live_socket(product: Product) -> None:
    ada, bob = [await product.sign_up(n) for n in ("ada", "bob")]
    room = (
        await product.http.post(
            "/api/rooms",
            json={"kind": "public", "name": "pair"},
            headers={"Authorization": f"Bearer {ada['access_token']}"},
        )
    ).json()
    room_id = room["id"]
    joined = await product.http.post(
        f"/api/rooms/{room_id}/join", headers={"Authorization": f"Bearer {bob['access_token']}"}
    )
    assert joined.status_code == 200, joined.text
    a = await connect(product, ada["access_token"])
    b = await connect(product, bob["access_token"])
    try:
        # Straight after the HTTP call: the gateway may not have read the join yet and asks the rooms service.
        for client in (a, b):
            answer = await client.sio.call("room:subscribe", {"room_id": room_id}, timeout=15)
            assert answer["ok"] is True, answer

        def typing(client: Client) -> list[bool]:
            return [p["typing"] for e, p in client.received if e == "typing"]

        def presence(client: Client) -> list[str]:
            return client.presence(bob["user_id"])

        await a.sio.call("typing:start", {"room_id": room_id}, timeout=15)
        await _until(lambda: typing(b) == [True])
        await _until(lambda: typing(b) == [True, False], timeout=10)  # 1.5 s without renewal
        assert typing(a) == []

        await b.sio.call("presence:set", {"status": "away"}, timeout=15)
        await _until(lambda: presence(a)[-1:] == ["away"])

        refreshed = await product.http.post("/api/auth/token/refresh", json={"refresh_token": bob["refresh_token"]})
        assert refreshed.status_code == 200, refreshed.text
        answer = await b.sio.call("auth:refresh", {"token": refreshed.json()["access_token"]}, timeout=15)
        assert answer["ok"] is True, answer
        wrong = await b.sio.call("auth:refresh", {"token": ada["access_token"]}, timeout=15)
        assert wrong["error"]["code"] == "forbidden"

        await b.sio.disconnect()
        await _until(lambda: presence(a)[-1:] == ["offline"], timeout=10)  # after the 1.5 s grace
    finally:
        for client in (a, b):
            if client.sio.connected:
                await client.sio.disconnect()
