"""The block scenario every deployment mode must pass (docs/decisions/0009), through the public entry points only:
two people chat in their direct room; once one blocks the other, neither can write there (a coded refusal, for
messages and typing alike), the blocker receives nothing live, earlier messages stay readable, and neither can
bring the other into a group conversation, a room or their contacts; lifting the block reopens the same room."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .product import Client, Product, connect, until


def _headers(user: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {user['access_token']}"}


def _room_events(client: Client, room_id: str) -> list[str]:
    return [p["type"] for e, p in client.received if e == "room:event" and p["room_id"] == room_id]


async def _send(client: Client, room_id: str, client_msg_id: str, body: str) -> dict[str, Any]:
    answer = await client.sio.call(
        "message:send", {"room_id": room_id, "client_msg_id": client_msg_id, "body": body}, timeout=20
    )
    return dict(answer)


async def block_scenario(entries: Sequence[Product]) -> None:
    """``entries``: the deployment's entry points; amy (who blocks) uses the first, ben (blocked) the last."""
    first, last = entries[0], entries[-1]
    amy, ben, cal = [await first.sign_up(name) for name in ("amy", "ben", "cal")]
    opened = await first.http.post("/api/rooms/direct", json={"user_id": ben["user_id"]}, headers=_headers(amy))
    assert opened.status_code == 201, opened.text
    dm = opened.json()["id"]
    a = await connect(first, amy["access_token"])
    b = await connect(last, ben["access_token"])
    try:
        for client in (a, b):
            answer = await client.sio.call("room:subscribe", {"room_id": dm}, timeout=15)
            assert answer["ok"] is True, answer
        before = await _send(b, dm, "b-1", "hi amy")
        assert (before["ok"], before["seq"]) == (True, 1), before
        await until(lambda: a.messages(dm) == [1])

        blocked = await first.http.post("/api/rooms/blocks", json={"user_id": ben["user_id"]}, headers=_headers(amy))
        assert blocked.status_code == 204, blocked.text
        await until(lambda: "room.blocked" in _room_events(b, dm))
        refused = [
            await _send(b, dm, "b-2", "why?"),
            await b.sio.call("typing:start", {"room_id": dm}, timeout=15),
            await _send(a, dm, "a-1", "go away"),
        ]
        assert [r["error"]["code"] for r in refused] == ["user_blocked"] * 3, refused
        history = await first.http.get(
            f"/api/messages/rooms/{dm}/messages", params={"after_seq": 0, "order": "oldest"}, headers=_headers(amy)
        )
        assert [(m["seq"], m["body"]) for m in history.json()["items"]] == [(1, "hi amy")], "history stays readable"
        room = await first.http.get(f"/api/rooms/{dm}", headers=_headers(amy))
        assert (room.json()["blocked"], room.json()["my_role"]) == (True, "member"), "the room stays"

        # Neither side can bring the other in anywhere: group conversation, invitation, contact request.
        for me, other in ((amy, ben), (ben, amy)):
            group = {"kind": "group_dm", "members": [other["user_id"], cal["user_id"]]}
            own = await first.http.post("/api/rooms", json={"kind": "private", "name": "own"}, headers=_headers(me))
            attempts = [
                await first.http.post("/api/rooms", json=group, headers=_headers(me)),
                await first.http.post(
                    f"/api/rooms/{own.json()['id']}/invitations",
                    json={"user_id": other["user_id"]},
                    headers=_headers(me),
                ),
                await first.http.post("/api/rooms/contacts", json={"user_id": other["user_id"]}, headers=_headers(me)),
            ]
            assert [(r.status_code, r.json()["code"]) for r in attempts] == [(403, "blocked")] * 3

        lifted = await first.http.delete(f"/api/rooms/blocks/{ben['user_id']}", headers=_headers(amy))
        assert lifted.status_code == 204, lifted.text
        await until(lambda: "room.unblocked" in _room_events(b, dm))
        after = await _send(b, dm, "b-2", "hello again")
        assert (after["ok"], after["seq"]) == (True, 2), after
        await until(lambda: a.messages(dm) == [1, 2])
        # Seq 2 is the next message after seq 1: nothing reached amy while the block stood, live or stored.
        assert [p["typing"] for e, p in a.received if e == "typing"] == []
    finally:
        for client in (a, b):
            if client.sio.connected:
                await client.sio.disconnect()
