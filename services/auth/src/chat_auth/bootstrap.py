"""Composition root of the auth service: every adapter comes in as an argument."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import structlog
from fastapi import APIRouter
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine

from chat_auth.adapters.email import mailer_for
from chat_auth.adapters.oidc import HttpOidcProvider
from chat_auth.adapters.postgres import MIGRATIONS
from chat_auth.adapters.postgres.store import PostgresAuthStore
from chat_auth.domain.passwords import PasswordHasher
from chat_auth.domain.secrets import Sealer
from chat_auth.domain.tokens import TokenIssuer
from chat_auth.entrypoints import bus as bus_entrypoints
from chat_auth.entrypoints.http import build_router
from chat_auth.service import keys
from chat_auth.service.context import AuthContext, Limits
from chat_auth.service.mail import MailQueue
from chat_auth.service.oidc import OidcProvider
from chat_auth.service.ports import AuthStore, Clock, Mailer
from chat_auth.settings import AuthSettings
from chat_contracts.envelope import Record
from chat_contracts.spec import TopicSpec
from chat_runtime import postgres
from chat_runtime.bus.port import Bus
from chat_runtime.health import ReadinessCheck
from chat_runtime.module import BusHandler
from chat_runtime.outbox import OutboxRelay, records_since
from chat_runtime.store_metrics import StoreMetrics
from chat_runtime.tokens import TokenVerifier

log = structlog.get_logger("chat.auth")


def utc_now() -> datetime:
    return datetime.now(UTC)


def build_context(
    settings: AuthSettings,
    *,
    store: AuthStore,
    mailer: Mailer,
    clock: Clock = utc_now,
    hasher: PasswordHasher | None = None,
) -> AuthContext:
    """The use cases' dependencies; unit tests pass a fake store, mailer and clock."""
    if settings.sealing_secret is None or settings.code_pepper is None:
        raise ValueError("sealing_secret and code_pepper must be set (they are generated in dev mode)")

    sealer = Sealer(settings.sealing_secret.get_secret_value())
    own_keys = keys.OwnKeys(store)
    verifier = TokenVerifier(
        jwks=own_keys,
        issuer=settings.issuer,
        audience=settings.audience,
        # The keys live in our own database: a rotation or a withdrawal is visible after at most a second, for
        # one small query a second.
        min_refresh_interval=1.0,
        max_cache_age=1.0,
        clock=lambda: clock().timestamp(),
        withdrawn_keys=own_keys,
    )
    return AuthContext(
        settings=settings,
        store=store,
        mail=MailQueue(mailer),
        clock=clock,
        hasher=hasher or PasswordHasher(),
        sealer=sealer,
        issuer=TokenIssuer(sealer=sealer, issuer=settings.issuer, audience=settings.audience),
        verifier=verifier,
        pepper=settings.code_pepper.get_secret_value().encode(),
        limits=Limits.from_settings(settings),
    )


@dataclass
class AuthModule:
    """The auth service as a module the launcher can start alone or with the others."""

    settings: AuthSettings
    context: AuthContext
    engine: AsyncEngine | None = None
    relay: OutboxRelay | None = None
    oidc: OidcProvider | None = None
    name: str = field(default="auth", init=False)

    def router(self) -> APIRouter:
        return build_router(self.context, self.oidc)

    def readiness_checks(self) -> Mapping[str, ReadinessCheck]:
        engine = self.engine
        if engine is None:
            return {}

        async def database() -> None:
            await postgres.ping(engine)

        return {"postgres": database}

    def bus_handlers(self) -> Sequence[BusHandler]:
        return bus_entrypoints.bus_handlers()

    async def published_since(self, spec: TopicSpec, since: datetime) -> Sequence[Record]:
        """What this service wrote for ``spec`` since ``since``, from its outbox: the past of its topics when the
        bus keeps none (the all-in-one mode; ``chat_runtime.bus.follow``)."""
        if self.engine is None:
            return ()
        return await records_since(self.engine, topic=spec.name, since=since)

    def body_limits(self) -> Mapping[str, int]:
        return {"/api/auth/me/avatar": self.settings.avatar_max_bytes}

    async def start(self) -> None:
        if self.engine is not None and self.settings.migrate_on_start:
            await postgres.prepare(self.settings.database_url, MIGRATIONS)
            log.info("auth.migrated")
        await keys.published_keys(self.context)  # creates the first signing key on a new database
        if self.relay is not None:
            await self.relay.start()

    async def stop(self) -> None:
        if self.relay is not None:
            await self.relay.stop()
        await self.context.mail.drain()
        if self.engine is not None:
            await self.engine.dispose()


def bootstrap(
    settings: AuthSettings,
    *,
    bus: Bus,
    engine: AsyncEngine | None = None,
    mailer: Mailer | None = None,
    registry: CollectorRegistry | None = None,
    clock: Clock = utc_now,
) -> AuthModule:
    """Build the auth module on PostgreSQL with its outbox relayed to ``bus``."""
    engine = engine or postgres.async_engine(settings.database_url)
    if registry is not None:
        postgres.observe_statements(engine, StoreMetrics.on(registry))
    relay = OutboxRelay(engine, bus, name="auth", registry=registry, poll_interval=settings.outbox_poll_seconds)
    store = PostgresAuthStore(engine, on_commit=relay.wake)
    context = build_context(settings, store=store, mailer=mailer or mailer_for(settings), clock=clock)
    oidc = HttpOidcProvider.from_settings(settings) if settings.oidc_client_id else None
    return AuthModule(settings=settings, context=context, engine=engine, relay=relay, oidc=oidc)
