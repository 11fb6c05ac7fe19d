"""A hand-driven Socket.IO client over either transport: it sends packet text exactly as given (deep nesting,
broken JSON, oversize frames, which no real client library would produce) and records every packet, ack, HTTP
status and websocket close code the gateway answers with."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

import aiohttp
import httpx

from .harness import Gateway, until

Transport = Literal["websocket", "polling"]
TRANSPORTS: tuple[Transport, ...] = ("websocket", "polling")
SEPARATOR = "\x1e"  # between Engine.IO packets in one long-polling body
_ACK = re.compile(r"^3(\d+)(.*)$", re.DOTALL)
_EVENT = re.compile(r"^2(\d*)(.*)$", re.DOTALL)


@dataclass
class RawSocket:
    transport: Transport
    base: str
    eio_sid: str = ""
    acks: dict[int, list[Any]] = field(default_factory=dict)
    events: list[tuple[str, Any]] = field(default_factory=list)
    packets: list[str] = field(default_factory=list)
    """Every Engine.IO packet received after the handshake, in order."""
    closed: bool = False
    close_code: int | None = None
    close_reason: str | None = None
    poll_statuses: list[int] = field(default_factory=list)
    last_post: httpx.Response | None = None
    _http: httpx.AsyncClient | None = None
    _session: aiohttp.ClientSession | None = None
    _ws: aiohttp.ClientWebSocketResponse | None = None
    _reader: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, base: str, token: str, transport: Transport) -> RawSocket:
        """Engine.IO handshake, then the Socket.IO connect with ``token``; returns once the gateway accepted it."""
        raw = cls(transport=transport, base=base)
        if transport == "websocket":
            raw._session = aiohttp.ClientSession()
            raw._ws = await raw._session.ws_connect(
                f"{base.replace('http://', 'ws://')}/socket.io/?EIO=4&transport=websocket", max_msg_size=0
            )
            opened = await raw._ws.receive_str()
        else:
            raw._http = httpx.AsyncClient(base_url=base, timeout=30)
            opened = (await raw._http.get("/socket.io/", params={"EIO": "4", "transport": "polling"})).text
        assert opened.startswith("0"), opened
        raw.eio_sid = json.loads(opened[1:])["sid"]
        raw._reader = asyncio.create_task(raw._read())
        await raw.send("40" + json.dumps({"token": token}))
        await until(lambda: any(p.startswith("40") for p in raw.packets) or raw.closed)
        assert any(p.startswith("40{") for p in raw.packets), raw.packets
        return raw

    async def send(self, *frames: str) -> int:
        """Engine.IO packets as on the wire (``42[…]`` is an event), one websocket message each or all in one
        long-polling POST; returns the POST's status (200 on websocket)."""
        if self._ws is not None:
            for frame in frames:
                await self._ws.send_str(frame)
            return 200
        assert self._http is not None
        posted = await self._http.post(
            "/socket.io/",
            params={"EIO": "4", "transport": "polling", "sid": self.eio_sid},
            content=SEPARATOR.join(frames).encode(),
            headers={"Content-Type": "text/plain;charset=UTF-8"},
        )
        self.last_post = posted
        return posted.status_code

    async def send_binary(self, data: bytes) -> int:
        """An Engine.IO binary message: a binary websocket message, or ``b`` and base64 in a long-polling POST."""
        if self._ws is not None:
            await self._ws.send_bytes(data)
            return 200
        return await self.send("b" + base64.b64encode(data).decode())

    async def ack(self, id: int, timeout: float = 10) -> Any:
        """The data of the first ack with ``id`` (waits for it)."""
        await until(lambda: id in self.acks or self.closed, timeout)
        assert id in self.acks, f"no ack {id}; received {self.packets}"
        return self.acks[id][0]

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
        if self._ws is not None:
            await self._ws.close()
        if self._session is not None:
            await self._session.close()
        if self._http is not None:
            await self._http.aclose()

    async def _read(self) -> None:
        try:
            while not self.closed:
                for packet in await self._receive():
                    self._handle(packet)
        except asyncio.CancelledError:
            raise
        finally:
            self.closed = True

    async def _receive(self) -> list[str]:
        if self._ws is not None:
            message = await self._ws.receive()
            if message.type == aiohttp.WSMsgType.TEXT:
                return [message.data]
            self.close_code, self.close_reason = self._ws.close_code, message.extra
            self.closed = True
            return []
        assert self._http is not None
        polled = await self._http.get(
            "/socket.io/", params={"EIO": "4", "transport": "polling", "sid": self.eio_sid}, timeout=60
        )
        self.poll_statuses.append(polled.status_code)
        if polled.status_code != 200:
            self.closed = True
            return []
        return polled.text.split(SEPARATOR)

    def _handle(self, packet: str) -> None:
        self.packets.append(packet)
        if packet == "2":  # Engine.IO ping
            asyncio.get_running_loop().create_task(self._pong())
        elif packet == "1" and self._ws is None:  # Engine.IO close (a websocket's close frame follows, with its code)
            self.closed = True
        elif packet.startswith("4"):
            body = packet[1:]
            if acked := _ACK.match(body):
                self.acks.setdefault(int(acked.group(1)), []).append(json.loads(acked.group(2))[0])
            elif emitted := _EVENT.match(body):
                name, *args = json.loads(emitted.group(2))
                self.events.append((name, args[0] if args else None))

    async def _pong(self) -> None:
        if self._ws is not None:
            await self._ws.send_str("3")
        elif self._http is not None:
            await self._http.post(
                "/socket.io/", params={"EIO": "4", "transport": "polling", "sid": self.eio_sid}, content=b"3"
            )


async def still_served(raw: RawSocket, id: int = 99) -> None:
    """A well-formed event that is always answered ``ok`` (leaving a room it never joined): the socket works."""
    await raw.send(f'42{id}["room:unsubscribe",{{"room_id":"{uuid.uuid4()}"}}]')
    assert (await raw.ack(id))["ok"] is True


async def until_gone(gateway: Gateway, user_id: uuid.UUID, raw: RawSocket) -> None:
    """Until the gateway holds neither the user's connection nor the socket's Engine.IO session."""
    await until(
        lambda: user_id not in gateway.hub.connections.by_user and raw.eio_sid not in gateway.hub.sio.eio.sockets
    )
