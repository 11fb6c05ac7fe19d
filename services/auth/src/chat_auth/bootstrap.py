"""Composition root of the auth service: every adapter comes in as an argument."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import structlog
from fastapi import APIRouter
from sqlalchemy.ext.asyncio import AsyncEngine

from chat_auth.adapters.postgres import MIGRATIONS
from chat_auth.entrypoints.http import build_router
from chat_auth.settings import AuthSettings
from chat_runtime import postgres
from chat_runtime.bus.port import Bus
from chat_runtime.health import ReadinessCheck
from chat_runtime.module import BusHandler

log = structlog.get_logger("chat.auth")


@dataclass
class AuthModule:
    """The auth service as a module the launcher can start alone or with the others."""

    settings: AuthSettings
    bus: Bus
    engine: AsyncEngine
    name: str = field(default="auth", init=False)

    def router(self) -> APIRouter:
        return build_router()

    def readiness_checks(self) -> Mapping[str, ReadinessCheck]:
        async def database() -> None:
            await postgres.ping(self.engine)

        return {"postgres": database}

    def bus_handlers(self) -> Sequence[BusHandler]:
        return ()

    async def start(self) -> None:
        if self.settings.migrate_on_start:
            await postgres.prepare(self.settings.database_url, MIGRATIONS)
            log.info("auth.migrated")

    async def stop(self) -> None:
        await self.engine.dispose()


def bootstrap(settings: AuthSettings, *, bus: Bus, engine: AsyncEngine | None = None) -> AuthModule:
    """Build the auth module; tests pass their own engine and bus."""
    return AuthModule(
        settings=settings, bus=bus, engine=engine or postgres.async_engine(settings.database_url)
    )
