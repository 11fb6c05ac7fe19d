"""Gateway instances served by uvicorn on loopback, on in-process buses sharing one broker (as instances share
Kafka), with tokens from a test mint, in-memory history and rooms answers, and recording Socket.IO clients."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import socketio
import uvicorn
from prometheus_client import CollectorRegistry

from chat_contracts import messages_events as mev
from chat_contracts import rooms as rev
from chat_contracts.topics import ROOMS_EVENTS
from chat_gateway.bootstrap import bootstrap
from chat_gateway.service.hub import Hub
from chat_gateway.service.protocol import CLIENT_EVENTS, GATEWAY_EVENTS, ErrorAck
from chat_gateway.settings import GatewaySettings
from chat_gateway.testing.fakes import MemoryHistory, MemoryRooms
from chat_runtime.app import build_app
from chat_runtime.bus.inprocess import InProcessBroker, InProcessBus
from chat_runtime.serving import server_config
from chat_runtime.settings import ChatSettings, load_settings
from chat_runtime.testing.tokens import TokenMint

ISSUER = "http://gateway.test/api/auth"
AUDIENCE = "chat"


@dataclass
class Gateway:
    base: str
    hub: Hub
    server: uvicorn.Server
    serving: asyncio.Task[None]
    registry: CollectorRegistry
    """The instance's metrics, as its ``/metrics`` serves them."""

    async def stop(self) -> None:
        self.server.should_exit = True
        await self.serving


@dataclass
class Client:
    sio: socketio.AsyncClient
    received: list[tuple[str, Any]] = field(default_factory=list)

    def events(self, name: str) -> list[Any]:
        """Payloads of ``name`` received so far; each must have the documented shape (docs/asyncapi)."""
        found = [data for event, data in self.received if event == name]
        if name in GATEWAY_EVENTS:
            for data in found:
                GATEWAY_EVENTS[name][1].model_validate(data)
        return found

    def presence(self, user: uuid.UUID | None = None) -> list[dict[str, Any]]:
        """Every status change received, one member each (``presence``, and ``presence:changes`` unpacked)."""
        found: list[dict[str, Any]] = []
        for event, data in self.received:
            if event == "presence":
                found.append(data)
            elif event == "presence:changes":
                found.extend({"room_id": data["room_id"], **change} for change in data["changes"])
        self.events("presence")
        self.events("presence:changes")  # both shapes checked against the documented ones
        return [p for p in found if user is None or p["user_id"] == str(user)]

    async def call(self, event: str, data: Any, timeout: float = 10) -> Any:
        """Emit and wait for the ack, which must have the documented shape: the event's ack, or ErrorAck."""
        answer = await self.sio.call(event, data, timeout=timeout)
        if isinstance(answer, dict) and answer.get("ok") is True:
            CLIENT_EVENTS[event].ack.model_validate(answer)
        else:
            ErrorAck.model_validate(answer)
        return answer


def message_created(room: uuid.UUID, seq: int, sender: uuid.UUID) -> mev.MessageCreated:
    """The messages service's event for message ``seq`` of ``room`` (its id derived from the seq)."""
    return mev.MessageCreated(
        message_id=uuid.UUID(int=seq),
        room_id=room,
        seq=seq,
        sender_id=sender,
        client_msg_id=f"c-{seq}",
        body=f"#{seq}",
        created_at=datetime.now(UTC),
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def until(condition: Callable[[], object], timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


@dataclass
class Cluster:
    """Gateway instances on one broker, and what they need."""

    data_dir: Path
    broker: InProcessBroker = field(default_factory=InProcessBroker)
    mint: TokenMint = field(default_factory=lambda: TokenMint(issuer=ISSUER, audience=AUDIENCE, clock=_now))
    history: MemoryHistory = field(default_factory=MemoryHistory)
    rooms: MemoryRooms = field(default_factory=MemoryRooms)
    gateways: list[Gateway] = field(default_factory=list)
    clients: list[Client] = field(default_factory=list)
    version: int = 0

    async def start(self, instance: str, *, ws_compression: bool = False, **settings: Any) -> Gateway:
        port = free_port()
        options: dict[str, Any] = {
            "data_dir": self.data_dir,
            "instance_id": instance,
            "auth_issuer": ISSUER,
            "auth_audience": AUDIENCE,
            "typing_ttl_seconds": 1.0,
            "typing_throttle_seconds": 0.3,
            "presence_grace_seconds": 0.6,
            "heartbeat_seconds": 0.2,
            "events_burst": 1000,
            "token_leeway_seconds": 0,
        }
        options.update(settings)
        bus = InProcessBus(self.broker)
        registry = CollectorRegistry()
        module = bootstrap(
            load_settings(GatewaySettings, **options),
            bus=bus,
            jwks=self.mint.jwks,
            history=self.history,
            rooms=self.rooms,
            registry=registry,
        )
        app = module.wrap(build_app([module], bus=bus, registry=registry))
        served = ChatSettings(data_dir=self.data_dir, ws_compression=ws_compression)
        server = uvicorn.Server(server_config(app, host="127.0.0.1", port=port, settings=served))
        serving = asyncio.create_task(server.serve())
        await until(lambda: server.started or serving.done(), timeout=20)
        gateway = Gateway(
            base=f"http://127.0.0.1:{port}", hub=module.hub, server=server, serving=serving, registry=registry
        )
        self.gateways.append(gateway)
        return gateway

    def token(
        self, user: uuid.UUID, *, ttl: timedelta = timedelta(minutes=15), session: uuid.UUID | None = None
    ) -> str:
        return self.mint.access_token(user, f"u{user.hex[:8]}", ttl=ttl, session_id=session)

    async def connect(self, gateway: Gateway, user: uuid.UUID, *, token: str | None = None) -> Client:
        client = Client(socketio.AsyncClient(reconnection=False))

        async def record(event: str, data: Any = None) -> None:
            client.received.append((event, data))

        client.sio.on("*", record)
        await client.sio.connect(
            gateway.base, auth={"token": token or self.token(user)}, transports=["websocket"], wait_timeout=10
        )
        self.clients.append(client)
        return client

    async def join(self, room: uuid.UUID, *users: uuid.UUID) -> None:
        """Publish joins on the rooms topic and wait until every gateway knows them."""
        bus = InProcessBus(self.broker)
        for user in users:
            self.version += 1
            joined = rev.MemberJoined(
                room_id=room, room_version=self.version, user_id=user, role="member", occurred_at=_now()
            )
            await bus.publish(ROOMS_EVENTS, joined, source="rooms")
        await until(lambda: all(g.hub.memberships.role(room, u) for g in self.gateways for u in users))

    async def close(self) -> None:
        for client in self.clients:
            if client.sio.connected:
                await client.sio.disconnect()
        # Last started, first stopped: each uvicorn server puts back the signal handlers it found, so stopping them
        # in another order would leave a stopped server's handlers installed for the rest of the test process.
        for gateway in reversed(self.gateways):
            if not gateway.serving.done():
                await gateway.stop()


def _now() -> datetime:
    return datetime.now(UTC)
