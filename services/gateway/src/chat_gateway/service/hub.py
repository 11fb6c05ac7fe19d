"""The gateway put together: the sockets this instance holds and the parts that serve them, each with one job.

- ``entrypoints/socketio``: the handshake, the guard and the table of client events;
- ``service/access``: whether a user may use a room (the projected memberships, or the rooms service);
- ``service/recovery``: subscribing, and replaying what a socket missed without a gap or a double;
- ``service/commands``: client events that are commands to the messages service, and their acks;
- ``service/delivery``: what reaches the sockets from the bus (fanned out by ``adapters/fanout``);
- ``service/presence``: typing and presence across instances.

The events, payloads, acks and error codes are in docs/protocol.md.
"""

from __future__ import annotations

from chat_gateway.adapters.socketio_packets import GuardedServer
from chat_gateway.domain.membership import Memberships
from chat_gateway.entrypoints.socketio import SocketEvents
from chat_gateway.service.access import Access
from chat_gateway.service.background import Background
from chat_gateway.service.commands import Requests
from chat_gateway.service.connections import Connections
from chat_gateway.service.delivery import Delivery
from chat_gateway.service.metrics import GatewayMetrics
from chat_gateway.service.ports import History, Rooms
from chat_gateway.service.presence import Presence
from chat_gateway.service.recovery import Recovery
from chat_gateway.settings import GatewaySettings
from chat_runtime.bus.port import Bus
from chat_runtime.tokens import TokenVerifier


class Hub:
    def __init__(
        self,
        *,
        settings: GatewaySettings,
        bus: Bus,
        verifier: TokenVerifier,
        history: History,
        rooms: Rooms,
        metrics: GatewayMetrics,
    ) -> None:
        self.settings = settings
        self.history = history
        self.rooms = rooms
        self.memberships = Memberships()
        self.connections = Connections(settings, metrics)
        self.background = Background()
        self.sio = GuardedServer(
            refuse=lambda sid, code, message: self.events.on_refused_event(sid, code, message),
            end=lambda sid, reason: self.delivery.end(sid, reason),
            compression_min_bytes=settings.ws_compression_min_bytes,
            async_mode="asgi",
            cors_allowed_origins=settings.allowed_origins if settings.mode == "prod" else "*",
            max_http_buffer_size=settings.max_message_bytes,
            logger=False,
            engineio_logger=False,
        )
        self.requests = Requests(bus, timeout_seconds=settings.ack_timeout_seconds)
        self.delivery = Delivery(
            sio=self.sio,
            settings=settings,
            connections=self.connections,
            memberships=self.memberships,
            requests=self.requests,
            background=self.background,
            metrics=metrics,
        )
        self.presence = Presence(
            settings=settings,
            bus=bus,
            memberships=self.memberships,
            sockets=self.delivery,
        )
        self.delivery.presence = self.presence
        self.access = Access(memberships=self.memberships, rooms=rooms, presence=self.presence)
        self.events = SocketEvents(
            sio=self.sio,
            settings=settings,
            verifier=verifier,
            connections=self.connections,
            memberships=self.memberships,
            access=self.access,
            presence=self.presence,
            recovery=Recovery(sio=self.sio, history=history, settings=settings),
            requests=self.requests,
            delivery=self.delivery,
            background=self.background,
            metrics=metrics,
        )
        self.events.register()

    async def start(self) -> None:
        await self.presence.start()

    async def stop(self) -> None:
        await self.presence.stop()
        self.background.cancel()
        await self.rooms.aclose()
        await self.history.aclose()

    async def end(self, sid: str, reason: str) -> None:
        """Tell the socket why (``session:ended``) and close it."""
        await self.delivery.end(sid, reason)
