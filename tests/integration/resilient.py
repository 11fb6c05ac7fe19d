"""A Socket.IO client as a careful real one behaves: it shows each message once in seq order, reconnects to
whichever gateway answers after any disconnect, resubscribes with its last seq (reloading over HTTP when told to),
and resends with the same client_msg_id until acked. The reliability tests count what it saw."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import socketio


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
    subscribed_at: float = 0.0
    """When the latest subscribe was answered (``time.perf_counter()``)."""
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    held: list[int] | None = None
    """From a subscribe until its answer is handled (a reload read over HTTP included): the room's messages that
    came meanwhile, shown after it."""
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
        if data["room_id"] != self.room_id:
            return
        if self.held is not None:
            self.held.append(int(data["seq"]))
        else:
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
            # The answer is handled after whatever came before it on the socket: hold the room's messages until
            # then (the next subscribe replays them if this one fails).
            self.held = []
            try:
                await self.sio.connect(base, auth={"token": self.token}, transports=["websocket"], wait_timeout=5)
                answer = await self.sio.call(
                    "room:subscribe", {"room_id": self.room_id, "last_seq": self.last}, timeout=10
                )
            except (socketio.exceptions.ConnectionError, socketio.exceptions.TimeoutError, OSError):
                self.held = None
                await _dispose(self.sio)
                await asyncio.sleep(0.2)
                continue
            if not answer.get("ok"):
                self.held = None
                await asyncio.sleep(0.2)
                continue
            self.subscribed_at = time.perf_counter()
            try:
                if answer["recovered"] is False:
                    await self._reload(base, up_to=int(answer["seq"]))
            finally:
                held, self.held = self.held, None
                for seq in held:
                    self.show(seq)
            self.ready.set()
            return

    def _fresh(self) -> socketio.AsyncClient:
        client = socketio.AsyncClient(reconnection=False)

        async def on_disconnect(*args: Any) -> None:
            self._lost(client)

        client.on("message:new", self._on_message)
        client.on("disconnect", on_disconnect)
        return client

    async def _reload(self, base: str, *, up_to: int) -> None:
        """Too much missed for recovery: page the history over HTTP up to the seq the answer gave, as a real client
        reloads (what came live after it is held meanwhile)."""
        self.reloads += 1
        for seq in await stored_seqs(base, self.token, self.room_id, after=self.last):
            if seq <= up_to:
                self.show(seq)

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


async def stored_seqs(base: str, token: str, room_id: str, *, after: int = 0) -> list[int]:
    """Every seq stored in the room after ``after``, oldest first, paged over HTTP as a client reloads."""
    seqs: list[int] = []
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        while True:
            page = await http.get(
                f"/api/messages/rooms/{room_id}/messages",
                params={"after_seq": seqs[-1] if seqs else after, "order": "oldest", "limit": 100},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert page.status_code == 200, page.text
            items = [int(m["seq"]) for m in page.json()["items"]]
            seqs += items
            if len(items) < 100:
                return seqs


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
