"""Reliability, reduced size: a gateway restarts three times while clients chat and some drop and reconnect at
random. Every client ends showing exactly the room's history (compared with a fresh fetch), in seq order, with no
message shown twice and no gap — reconnecting to whichever gateway answers and resubscribing with its last seq.
``CHAT_CHAOS_MESSAGES`` scales the number of messages per sender (default 25; `make chaos` runs more).
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import socketio

from .product import until
from .split import Split, split

__all__ = ["split"]


@dataclass
class Resilient:
    """A client that shows each message once, in seq order, and recovers after every disconnect."""

    name: str
    token: str
    room_id: str
    gateways: list[str]
    rng: random.Random
    sio: socketio.AsyncClient = field(default_factory=lambda: socketio.AsyncClient(reconnection=False))
    shown: list[int] = field(default_factory=list)
    duplicates: int = 0
    gaps: int = 0
    reconnects: int = 0
    reloads: int = 0
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    closing: bool = False
    reconnecting: asyncio.Task[None] | None = None

    @property
    def last(self) -> int:
        return self.shown[-1] if self.shown else 0

    def show(self, seq: int) -> None:
        if seq <= self.last:
            self.duplicates += seq in self.shown
            return
        if seq != self.last + 1:
            self.gaps += 1
        self.shown.append(seq)

    async def start(self) -> None:
        await self._connect()

    async def _on_message(self, data: dict[str, Any]) -> None:
        if data["room_id"] == self.room_id:
            self.show(int(data["seq"]))

    def _lost(self, client: socketio.AsyncClient) -> None:
        if client is self.sio and not self.closing:  # an old client's late disconnect changes nothing
            self.ready.clear()
            self.reconnecting = asyncio.get_running_loop().create_task(self._connect())

    async def _connect(self) -> None:
        while not self.closing:
            base = self.rng.choice(self.gateways)
            old, self.sio = self.sio, self._fresh()
            await _dispose(old)
            try:
                await self.sio.connect(base, auth={"token": self.token}, transports=["websocket"], wait_timeout=5)
                answer = await self.sio.call(
                    "room:subscribe", {"room_id": self.room_id, "last_seq": self.last}, timeout=10
                )
            except (socketio.exceptions.ConnectionError, socketio.exceptions.TimeoutError, OSError):
                await _dispose(self.sio)
                await asyncio.sleep(0.2)
                continue
            if not answer.get("ok"):
                await asyncio.sleep(0.2)
                continue
            if answer["recovered"] is False:
                await self._reload(base)
            self.ready.set()
            return

    def _fresh(self) -> socketio.AsyncClient:
        client = socketio.AsyncClient(reconnection=False)

        async def on_disconnect(*args: Any) -> None:
            self._lost(client)

        client.on("message:new", self._on_message)
        client.on("disconnect", on_disconnect)
        return client

    async def _reload(self, base: str) -> None:
        """Too much missed for recovery: page the history over HTTP, as a real client reloads."""
        self.reloads += 1
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            while True:
                page = await http.get(
                    f"/api/messages/rooms/{self.room_id}/messages",
                    params={"after_seq": self.last, "order": "oldest", "limit": 100},
                    headers={"Authorization": f"Bearer {self.token}"},
                )
                items = page.json()["items"]
                for item in items:
                    self.show(int(item["seq"]))
                if len(items) < 100:
                    return

    async def drop(self) -> None:
        """Lose the connection as a flaky network would (the disconnect handler reconnects)."""
        self.reconnects += 1
        await self.sio.eio.disconnect(abort=True)

    async def send(self, client_msg_id: str, body: str) -> int:
        """Send until acked, always with the same client_msg_id."""
        while True:
            await self.ready.wait()
            try:
                answer = await self.sio.call(
                    "message:send",
                    {"room_id": self.room_id, "client_msg_id": client_msg_id, "body": body},
                    timeout=10,
                )
            except (socketio.exceptions.TimeoutError, socketio.exceptions.BadNamespaceError):
                await asyncio.sleep(0.1)
                continue
            if answer.get("ok"):
                return int(answer["seq"])
            if answer["error"]["code"] in ("timeout", "unavailable", "rate_limited", "not_member"):
                await asyncio.sleep(float(answer["error"].get("retry_after") or 0.2))
                continue
            raise AssertionError(f"{self.name}: refused {answer}")

    async def close(self) -> None:
        self.closing = True
        if self.reconnecting is not None:
            await self.reconnecting
        await _dispose(self.sio)


async def _dispose(client: socketio.AsyncClient) -> None:
    """Close a client and its HTTP session whatever state it is in (a failed connect leaves the session open)."""
    try:
        if client.connected:
            await client.disconnect()
    except Exception:  # noqa: S110 - it is going away either way
        pass
    http = getattr(client.eio, "http", None)
    if http is not None and not http.closed:
        await http.close()


async def test_gateway_restarts_and_flaky_clients_end_with_exactly_the_history(split: Split) -> None:
    per_sender = int(os.environ.get("CHAT_CHAOS_MESSAGES", "25"))
    seed = random.SystemRandom().randrange(2**32)
    rng = random.Random(seed)
    print(f"gateway restarts: {per_sender} messages per sender, seed {seed}")
    users = [await split.sign_up(name) for name in ("ada", "bob", "cyd")]
    owner = {"Authorization": f"Bearer {users[0]['access_token']}"}
    room_id = (
        await split.http_for(0).post("/api/rooms", json={"kind": "public", "name": "storm"}, headers=owner)
    ).json()["id"]
    for user in users[1:]:
        joined = await split.http_for(1).post(
            f"/api/rooms/{room_id}/join", headers={"Authorization": f"Bearer {user['access_token']}"}
        )
        assert joined.status_code == 200

    clients = [
        Resilient(
            f"{user['user_id'][:4]}-{n}", user["access_token"], room_id, split.gateways, random.Random(rng.random())
        )
        for user in users
        for n in range(4)
    ]
    for client in clients:
        await client.start()
    senders = clients[::4]  # one socket of each user sends
    restarts: list[float] = []

    async def chat(sender: Resilient) -> list[int]:
        seqs = []
        for n in range(per_sender):
            seqs.append(await sender.send(f"{sender.name}-{n}", f"{sender.name} #{n}"))
            await asyncio.sleep(rng.uniform(0.01, 0.08))
        return seqs

    async def restart_gateway_b() -> None:
        for _ in range(3):
            await asyncio.sleep(rng.uniform(0.5, 1.5))
            restarts.append(await split.restart("gateway-b"))

    async def flaky_network() -> None:
        for _ in range(6):
            await asyncio.sleep(rng.uniform(0.3, 1.0))
            await rng.choice([c for c in clients if c not in senders]).drop()  # about 10% at a time

    began = time.perf_counter()
    sent, _, _ = await asyncio.gather(asyncio.gather(*(chat(s) for s in senders)), restart_gateway_b(), flaky_network())
    acked = sorted(seq for seqs in sent for seq in seqs)
    total = per_sender * len(senders)
    assert acked == list(range(1, total + 1)), "every acked message has its own seq, gap-free"

    async with httpx.AsyncClient(base_url=split.gateways[0], timeout=10) as http:
        page = await http.get(
            f"/api/messages/rooms/{room_id}/messages",
            params={"after_seq": 0, "order": "oldest", "limit": 100},
            headers=owner,
        )
        history = [int(m["seq"]) for m in page.json()["items"]]
        while len(history) < total:
            more = await http.get(
                f"/api/messages/rooms/{room_id}/messages",
                params={"after_seq": history[-1], "order": "oldest", "limit": 100},
                headers=owner,
            )
            history += [int(m["seq"]) for m in more.json()["items"]]
    assert history == list(range(1, total + 1))
    try:
        await until(lambda: all(c.shown == history for c in clients), timeout=30)
    finally:
        for client in clients:
            await client.close()
        print(
            f"gateway restarts: {total} messages in {time.perf_counter() - began:.1f}s; gateway B back in "
            + ", ".join(f"{r:.1f}s" for r in restarts)
            + f"; {sum(c.reconnects for c in clients)} forced drops, {sum(c.reloads for c in clients)} reloads"
        )
        for client in clients:
            print(f"  {client.name}: shown {len(client.shown)}, duplicates {client.duplicates}, gaps {client.gaps}")
    assert all(c.duplicates == 0 for c in clients), "no message shown twice"
    assert all(c.gaps == 0 for c in clients), "no message skipped then filled in"
