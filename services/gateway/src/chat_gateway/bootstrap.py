"""Composition root of the gateway: every adapter comes in as an argument."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import httpx
import socketio
from fastapi import APIRouter
from prometheus_client import CollectorRegistry

from chat_gateway.adapters.history import HttpHistory
from chat_gateway.adapters.rooms import HttpRooms
from chat_gateway.entrypoints.bus import bus_handlers
from chat_gateway.entrypoints.frame_limit import FrameLimit
from chat_gateway.entrypoints.http import build_router
from chat_gateway.entrypoints.proxy import ServiceProxy, url_problem
from chat_gateway.entrypoints.web import serve_web
from chat_gateway.service.hub import Hub
from chat_gateway.service.metrics import GatewayMetrics
from chat_gateway.service.ports import History, Rooms
from chat_gateway.settings import GatewaySettings
from chat_runtime.bus.follow import TopicFollower, follower_for
from chat_runtime.bus.port import Bus, NotCaughtUp, Subscription
from chat_runtime.health import ReadinessCheck
from chat_runtime.module import BusHandler
from chat_runtime.tokens import EndedSessions, EndedSessionsFeed, HttpJwksSource, JwksSource, TokenVerifier


@dataclass
class GatewayModule:
    """The gateway as a module: HTTP routes, the Socket.IO hub, its fan-out consumers and, in split mode, the
    proxy to the services that run in other processes."""

    settings: GatewaySettings
    hub: Hub
    proxy: ServiceProxy | None = None
    ended_sessions: EndedSessionsFeed | None = None
    name: str = field(default="gateway", init=False)
    subscriptions: list[Subscription] = field(default_factory=list, init=False)
    """The subscriptions of this module's consumers, once the launcher has subscribed them."""

    def router(self) -> APIRouter:
        return build_router()

    def readiness_checks(self) -> Mapping[str, ReadinessCheck]:
        checks: dict[str, ReadinessCheck] = {"bus": self.check_consumers}
        if self.ended_sessions is not None:
            checks["ended_sessions"] = self.ended_sessions.check_loaded
        return checks

    def bus_handlers(self) -> Sequence[BusHandler]:
        return [_Kept.around(handler, self.subscriptions.append) for handler in self._consumers()]

    def _consumers(self) -> Sequence[BusHandler]:
        return bus_handlers(self.hub, self.settings.instance_id)

    async def check_consumers(self) -> None:
        """Ready once every consumer is subscribed, holds its partitions and has handled what they held when it got
        them. Each reads from the end of its topic (memberships from before the start are the rooms service's to
        answer), so that is at once; until then a kick could be missed, or a send's ack never arrive."""
        missing = len(self._consumers()) - len(self.subscriptions)
        if missing > 0:
            raise NotCaughtUp(f"{missing} of the gateway's bus consumers are not subscribed yet")
        reasons = []
        for subscription in self.subscriptions:
            try:
                await subscription.check_caught_up()
            except NotCaughtUp as exc:
                reasons.append(str(exc))
        if reasons:
            raise NotCaughtUp("; ".join(reasons))

    def body_limits(self) -> Mapping[str, int]:
        return {}

    def wrap(self, app: Any) -> Any:
        """Serve Socket.IO at /socket.io/ (behind the frame size limit), the proxied services' paths and the web
        client at / in front of the HTTP app (which keeps the lifespan)."""
        inner = self.proxy.in_front_of(app) if self.proxy is not None else app
        inner = serve_web(inner, self.settings.web_dir)
        sockets = socketio.ASGIApp(self.hub.sio, other_asgi_app=inner, socketio_path="socket.io")
        return FrameLimit(
            sockets, max_bytes=self.settings.max_message_bytes, server=self.hub.sio, end=self.hub.delivery.end
        )

    async def start(self) -> None:
        self.subscriptions.clear()
        if self.ended_sessions is not None:
            await self.ended_sessions.start()
        if self.proxy is not None:
            await self.proxy.start()
        await self.hub.start()

    async def stop(self) -> None:
        await self.hub.stop()
        if self.proxy is not None:
            await self.proxy.aclose()
        if self.ended_sessions is not None:
            await self.ended_sessions.stop()


@dataclass(frozen=True, slots=True)
class _Kept(BusHandler):
    """A consumer whose subscription is handed to ``keep`` (the module's readiness check reads it)."""

    inner: BusHandler = field(kw_only=True)
    keep: Callable[[Subscription], None] = field(kw_only=True)

    @classmethod
    def around(cls, inner: BusHandler, keep: Callable[[Subscription], None]) -> _Kept:
        given = {spec.name: getattr(inner, spec.name) for spec in fields(BusHandler)}
        return cls(**given, inner=inner, keep=keep)

    async def subscribe(self, bus: Bus) -> Subscription:
        subscription = await self.inner.subscribe(bus)
        self.keep(subscription)
        return subscription


PROXIABLE: tuple[str, ...] = ("auth", "rooms", "messages")
"""The services the gateway can forward ``/api/<service>/…`` to when they run in another process."""


def bootstrap(
    settings: GatewaySettings,
    *,
    bus: Bus,
    jwks: JwksSource | None = None,
    history: History | None = None,
    rooms: Rooms | None = None,
    proxied: Collection[str] = (),
    proxy_transport: httpx.AsyncBaseTransport | None = None,
    follower: TopicFollower | None = None,
    registry: CollectorRegistry | None = None,
) -> GatewayModule:
    """Build the gateway on ``bus``; tokens are checked against ``jwks`` (over HTTP unless handed in) and
    against the sessions ended on ``chat.users.events`` (read through ``follower``, by default ``bus``'s).

    Its metrics go to ``registry`` (the process's, served at ``/metrics``; a private one when none is given).

    ``proxied`` names the services that run in other processes: their ``/api/<service>/…`` is forwarded to
    ``settings.<service>_url`` (over ``proxy_transport`` when one is handed in).
    """
    ended = EndedSessionsFeed(follower or follower_for(bus), EndedSessions.for_leeway(settings.token_leeway_seconds))
    verifier = TokenVerifier(
        jwks=jwks or HttpJwksSource(settings.auth_jwks_url),
        issuer=settings.auth_issuer,
        audience=settings.auth_audience,
        leeway_seconds=settings.token_leeway_seconds,
        ended_sessions=ended.sessions,
    )
    hub = Hub(
        settings=settings,
        bus=bus,
        verifier=verifier,
        history=history or HttpHistory(settings.messages_url),
        rooms=rooms or HttpRooms(settings.rooms_url),
        metrics=GatewayMetrics(registry),
    )
    return GatewayModule(
        settings=settings, hub=hub, proxy=_proxy(settings, proxied, proxy_transport), ended_sessions=ended
    )


def _proxy(
    settings: GatewaySettings, proxied: Collection[str], transport: httpx.AsyncBaseTransport | None
) -> ServiceProxy | None:
    unknown = set(proxied) - set(PROXIABLE)
    if unknown:
        raise ValueError(f"the gateway cannot proxy {sorted(unknown)}; it proxies {list(PROXIABLE)}")
    if not proxied:
        return None
    urls = {"auth": settings.auth_url, "rooms": settings.rooms_url, "messages": settings.messages_url}
    for name in proxied:
        problem = url_problem(urls[name])
        if problem:
            raise ValueError(f"{settings.env_name(f'{name}_url')}: {problem}")
    return ServiceProxy(
        {name: urls[name] for name in PROXIABLE if name in proxied},
        timeout=settings.proxy_timeout_seconds,
        transport=transport,
    )
