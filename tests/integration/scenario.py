"""The end-to-end chat scenario every deployment mode must pass, through its public entry points only:
register and verify by email code, create a room, a second user joins, both chat (acks carry seq, a resend is
the same message and is not delivered twice), a stranger hears nothing, and a client that was away reconnects
(on the other entry point when there are two) and recovers exactly what it missed, or is told to reload when it
missed more than the recovery limit (50 in these deployments)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .product import Client, Product, connect, until

RECOVERY_LIMIT = 50


@dataclass
class Outcome:
    room_id: str
    users: dict[str, dict[str, Any]]


async def send(client: Client, room_id: str, client_msg_id: str, body: str) -> dict[str, Any]:
    answer = await client.sio.call(
        "message:send", {"room_id": room_id, "client_msg_id": client_msg_id, "body": body}, timeout=20
    )
    assert answer["ok"] is True, answer
    return dict(answer)


async def chat_scenario(entries: Sequence[Product]) -> Outcome:
    """``entries``: the deployment's entry points (one, or two gateways); ada uses the first, bob the last."""
    first, last = entries[0], entries[-1]
    ada, bob, eve = [await first.sign_up(name) for name in ("ada", "bob", "eve")]
    created = await first.http.post(
        "/api/rooms",
        json={"kind": "public", "name": "lobby"},
        headers={"Authorization": f"Bearer {ada['access_token']}"},
    )
    assert created.status_code == 201, created.text
    room_id = created.json()["id"]
    joined = await last.http.post(
        f"/api/rooms/{room_id}/join", headers={"Authorization": f"Bearer {bob['access_token']}"}
    )
    assert joined.status_code == 200, joined.text

    a = await connect(first, ada["access_token"])
    b = await connect(last, bob["access_token"])
    e = await connect(last, eve["access_token"])
    back: Client | None = None
    try:
        # Straight after the join: a gateway that has not read it from the bus yet asks the rooms service.
        for client in (a, b):
            answer = await client.sio.call("room:subscribe", {"room_id": room_id}, timeout=15)
            assert answer["ok"] is True, answer
        stranger = await e.sio.call("room:subscribe", {"room_id": room_id}, timeout=15)
        assert stranger["error"]["code"] == "not_member"

        hello = await send(a, room_id, "a-1", "hi bob")
        assert hello["seq"] == 1
        await until(lambda: b.messages(room_id) == [1])
        reply = await send(b, room_id, "b-1", "hi ada")
        assert reply["seq"] == 2
        await until(lambda: a.messages(room_id) == [1, 2])
        again = await send(a, room_id, "a-1", "hi bob")
        assert (again["seq"], again["message_id"]) == (1, hello["message_id"]), "a resend gets the same message"
        await asyncio.sleep(0.5)
        assert b.messages(room_id) == [1, 2], "the resend is not delivered twice"
        assert a.messages(room_id) == [1, 2]
        assert e.received == [], "a non-member receives nothing"
        page = await last.http.get(
            f"/api/messages/rooms/{room_id}/messages",
            params={"after_seq": 0, "order": "oldest", "limit": 10},
            headers={"Authorization": f"Bearer {bob['access_token']}"},
        )
        assert page.status_code == 200, page.text
        live_items = [payload for event, payload in b.received if event == "message:new"]
        assert live_items == page.json()["items"], "a live message:new is exactly the history page's item"

        await b.sio.disconnect()
        for n in range(3, 3 + RECOVERY_LIMIT):
            assert (await send(a, room_id, f"a-{n}", f"#{n}"))["seq"] == n
        back = await connect(first, bob["access_token"])  # bob comes back (on the other gateway, if any)
        recovered = await back.sio.call("room:subscribe", {"room_id": room_id, "last_seq": 2}, timeout=30)
        assert (recovered["ok"], recovered["recovered"], recovered["replayed"]) == (True, True, 50), recovered
        await until(lambda: len(back.messages(room_id)) == RECOVERY_LIMIT)
        assert back.messages(room_id) == list(range(3, 3 + RECOVERY_LIMIT)), "exactly the missed messages, in order"
        live = await send(a, room_id, "a-live", "live again")
        await until(lambda: back.messages(room_id)[-1:] == [live["seq"]])
        too_far = await back.sio.call("room:subscribe", {"room_id": room_id, "last_seq": 0}, timeout=30)
        assert too_far["recovered"] is False, "more missed than the limit: reload history"
        assert too_far["seq"] == live["seq"]
        assert e.received == []
    finally:
        opened: list[Client | None] = [a, b, e, back]
        for one in opened:
            if one is not None and one.sio.connected:
                await one.sio.disconnect()
    return Outcome(room_id=room_id, users={"ada": ada, "bob": bob, "eve": eve})
