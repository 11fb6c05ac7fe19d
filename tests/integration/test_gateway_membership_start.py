"""A gateway's bounded start in split mode (docs/decisions/0014): restarted after many room events, gateway B reads
none of them from Kafka, is ready, lets a member of a room from before its start subscribe and receive, and stops
delivering to them once they are kicked after its start.
"""

from __future__ import annotations

import asyncio
import re

import httpx

from .product import connect, until
from .split import Split, split

__all__ = ["split"]

ROOM_CHURN = 12
"""Times a member leaves and joins again before gateway B restarts: two room events each."""


async def rooms_events_consumed(base: str) -> float:
    """Records of chat.rooms.events the process's consumers handled, from its /metrics (None: no such consumer)."""
    async with httpx.AsyncClient(timeout=5) as http:
        text = (await http.get(f"{base}/metrics")).text
    found = re.findall(r"^chat_bus_consumed_total\{([^}]*)\} (\S+)$", text, re.MULTILINE)
    counts = [float(value) for labels, value in found if 'topic="chat.rooms.events"' in labels]
    assert counts, "gateway B has a consumer of chat.rooms.events"
    return sum(counts)


async def test_a_restarted_gateway_reads_no_earlier_room_event_yet_knows_and_enforces_memberships(
    split: Split,
) -> None:
    ada, bob, cyd = [await split.sign_up(name) for name in ("ada", "bob", "cyd")]
    as_ada = {"Authorization": f"Bearer {ada['access_token']}"}
    as_cyd = {"Authorization": f"Bearer {cyd['access_token']}"}
    http = split.http_for(0)
    created = await http.post("/api/rooms", json={"kind": "public", "name": "before"}, headers=as_ada)
    assert created.status_code == 201, created.text
    room_id = created.json()["id"]
    for user in (bob, cyd):
        joined = await http.post(
            f"/api/rooms/{room_id}/join", headers={"Authorization": f"Bearer {user['access_token']}"}
        )
        assert joined.status_code == 200, joined.text
    for _ in range(ROOM_CHURN):
        assert (await http.post(f"/api/rooms/{room_id}/leave", headers=as_cyd)).status_code in (200, 204)
        assert (await http.post(f"/api/rooms/{room_id}/join", headers=as_cyd)).status_code == 200

    await split.restart("gateway-b")  # waits for /readyz
    b_base = split.gateways[1]
    assert await rooms_events_consumed(b_base) == 0, "nothing from before the start was read"

    a = await connect(split.at(0), ada["access_token"])
    b = await connect(split.at(1), bob["access_token"])
    try:
        for client in (a, b):
            answer = await client.sio.call("room:subscribe", {"room_id": room_id}, timeout=15)
            assert answer["ok"] is True, answer
        sent = await a.sio.call("message:send", {"room_id": room_id, "client_msg_id": "m-1", "body": "hi"}, timeout=15)
        assert sent["ok"] is True, sent
        await until(lambda: b.messages(room_id) == [1])

        kicked = await http.post(f"/api/rooms/{room_id}/members/{bob['user_id']}/kick", headers=as_ada)
        assert kicked.status_code in (200, 204), kicked.text
        await until(lambda: ("room:removed", {"room_id": room_id}) in b.received)
        assert await rooms_events_consumed(b_base) >= 1, "what happens after the start is read"
        sent = await a.sio.call("message:send", {"room_id": room_id, "client_msg_id": "m-2", "body": "bye"}, timeout=15)
        assert sent["ok"] is True, sent
        await until(lambda: a.messages(room_id) == [1, 2])
        await asyncio.sleep(0.5)
        assert b.messages(room_id) == [1], "a kicked member receives nothing more"
        again = await b.sio.call("room:subscribe", {"room_id": room_id}, timeout=15)
        assert again["ok"] is False
        assert again["error"]["code"] == "not_member"
    finally:
        for client in (a, b):
            await client.sio.disconnect()
