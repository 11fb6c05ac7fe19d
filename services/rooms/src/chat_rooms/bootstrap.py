"""Composition root of the rooms service: every adapter comes in as an argument."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import structlog
from argon2 import PasswordHasher
from fastapi import APIRouter
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine

from chat_rooms.adapters.postgres import MIGRATIONS
from chat_rooms.adapters.postgres.store import PostgresRoomsStore
from chat_rooms.entrypoints import bus as bus_entrypoints
from chat_rooms.entrypoints.http import build_router
from chat_rooms.service.context import RoomsContext
from chat_rooms.service.ports import Clock, RoomsStore
from chat_rooms.settings import RoomsSettings
from chat_runtime import postgres
from chat_runtime.bus.follow import TopicFollower, follower_for
from chat_runtime.bus.port import Bus
from chat_runtime.health import ReadinessCheck
from chat_runtime.module import BusHandler
from chat_runtime.outbox import OutboxRelay
from chat_runtime.store_metrics import StoreMetrics
from chat_runtime.tokens import EndedSessions, EndedSessionsFeed, HttpJwksSource, JwksSource, TokenVerifier

log = structlog.get_logger("chat.rooms")


def utc_now() -> datetime:
    return datetime.now(UTC)


def build_context(
    settings: RoomsSettings,
    *,
    store: RoomsStore,
    jwks: JwksSource,
    clock: Clock = utc_now,
    hasher: PasswordHasher | None = None,
    ended_sessions: EndedSessions | None = None,
) -> RoomsContext:
    verifier = TokenVerifier(
        jwks=jwks,
        issuer=settings.auth_issuer,
        audience=settings.auth_audience,
        clock=lambda: clock().timestamp(),
        ended_sessions=ended_sessions,
    )
    return RoomsContext(
        settings=settings, store=store, clock=clock, hasher=hasher or PasswordHasher(), verifier=verifier
    )


@dataclass
class RoomsModule:
    """The rooms service as a module the launcher can start alone or with the others."""

    settings: RoomsSettings
    context: RoomsContext
    engine: AsyncEngine | None = None
    relay: OutboxRelay | None = None
    ended_sessions: EndedSessionsFeed | None = None
    name: str = field(default="rooms", init=False)

    def router(self) -> APIRouter:
        return build_router(self.context)

    def readiness_checks(self) -> Mapping[str, ReadinessCheck]:
        checks: dict[str, ReadinessCheck] = {}
        engine = self.engine
        if engine is not None:

            async def database() -> None:
                await postgres.ping(engine)

            checks["postgres"] = database
        if self.ended_sessions is not None:
            checks["ended_sessions"] = self.ended_sessions.check_loaded
        return checks

    def bus_handlers(self) -> Sequence[BusHandler]:
        return bus_entrypoints.bus_handlers(self.context)

    def body_limits(self) -> Mapping[str, int]:
        return {}

    async def start(self) -> None:
        if self.engine is not None and self.settings.migrate_on_start:
            await postgres.prepare(self.settings.database_url, MIGRATIONS)
            log.info("rooms.migrated")
        if self.ended_sessions is not None:
            await self.ended_sessions.start()
        if self.relay is not None:
            await self.relay.start()

    async def stop(self) -> None:
        if self.relay is not None:
            await self.relay.stop()
        if self.ended_sessions is not None:
            await self.ended_sessions.stop()
        if self.engine is not None:
            await self.engine.dispose()


def bootstrap(
    settings: RoomsSettings,
    *,
    bus: Bus,
    engine: AsyncEngine | None = None,
    jwks: JwksSource | None = None,
    registry: CollectorRegistry | None = None,
    clock: Clock = utc_now,
    follower: TopicFollower | None = None,
) -> RoomsModule:
    """Build the rooms module on PostgreSQL with its outbox relayed to ``bus``; tokens are checked against
    ``jwks`` (the auth service's JWKS over HTTP unless the launcher hands in the co-located auth module's keys)
    and against the sessions ended on ``chat.users.events`` (read through ``follower``, by default ``bus``'s)."""
    engine = engine or postgres.async_engine(settings.database_url)
    if registry is not None:
        postgres.observe_statements(engine, StoreMetrics.on(registry))
    relay = OutboxRelay(engine, bus, name="rooms", registry=registry, poll_interval=settings.outbox_poll_seconds)
    store = PostgresRoomsStore(engine, on_commit=relay.wake)
    ended = EndedSessionsFeed(
        follower or follower_for(bus), EndedSessions.for_leeway(clock=lambda: clock().timestamp())
    )
    context = build_context(
        settings,
        store=store,
        jwks=jwks or HttpJwksSource(settings.auth_jwks_url),
        clock=clock,
        ended_sessions=ended.sessions,
    )
    return RoomsModule(settings=settings, context=context, engine=engine, relay=relay, ended_sessions=ended)
