"""Composition root of the gateway: every adapter comes in as an argument."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import socketio
from fastapi import APIRouter

from chat_contracts.topics import MESSAGES_EVENTS, ROOMS_EVENTS, USERS_EVENTS
from chat_gateway.adapters.history import History, HttpHistory
from chat_gateway.entrypoints.http import build_router
from chat_gateway.service.hub import Hub
from chat_gateway.settings import GatewaySettings
from chat_runtime.bus.port import Bus
from chat_runtime.health import ReadinessCheck
from chat_runtime.module import BusHandler
from chat_runtime.tokens import HttpJwksSource, JwksSource, TokenVerifier


@dataclass
class GatewayModule:
    """The gateway as a module: HTTP routes, the Socket.IO hub and its fan-out consumers."""

    settings: GatewaySettings
    hub: Hub
    name: str = field(default="gateway", init=False)

    def router(self) -> APIRouter:
        return build_router()

    def readiness_checks(self) -> Mapping[str, ReadinessCheck]:
        return {}

    def bus_handlers(self) -> Sequence[BusHandler]:
        own = f"gateway-{self.settings.instance_id}"
        return (
            # Every instance needs every membership: it replays the rooms topic from the start.
            BusHandler(spec=ROOMS_EVENTS, group=f"{own}-rooms", handler=self.hub.on_room_event),
            # Fan-out and session ends only matter from now on.
            BusHandler(
                spec=MESSAGES_EVENTS, group=f"{own}-messages", handler=self.hub.on_message_event, start="latest"
            ),
            BusHandler(spec=USERS_EVENTS, group=f"{own}-users", handler=self.hub.on_user_event, start="latest"),
        )

    def body_limits(self) -> Mapping[str, int]:
        return {}

    def wrap(self, app: Any) -> Any:
        """Serve Socket.IO at /socket.io/ in front of the HTTP app (which keeps the lifespan)."""
        return socketio.ASGIApp(self.hub.sio, other_asgi_app=app, socketio_path="socket.io")

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


def bootstrap(
    settings: GatewaySettings, *, bus: Bus, jwks: JwksSource | None = None, history: History | None = None
) -> GatewayModule:
    """Build the gateway on ``bus``; tokens are checked against ``jwks`` (over HTTP unless handed in)."""
    verifier = TokenVerifier(
        jwks=jwks or HttpJwksSource(settings.auth_jwks_url),
        issuer=settings.auth_issuer,
        audience=settings.auth_audience,
    )
    hub = Hub(settings=settings, bus=bus, verifier=verifier, history=history or HttpHistory(settings.messages_url))
    return GatewayModule(settings=settings, hub=hub)
