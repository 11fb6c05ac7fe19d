"""Composition root of the rooms service: every adapter comes in as an argument."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import structlog
from fastapi import APIRouter
from sqlalchemy.ext.asyncio import AsyncEngine

from chat_rooms.adapters.postgres import MIGRATIONS
from chat_rooms.entrypoints.http import build_router
from chat_rooms.settings import RoomsSettings
from chat_runtime import postgres
from chat_runtime.bus.port import Bus
from chat_runtime.health import ReadinessCheck
from chat_runtime.module import BusHandler

log = structlog.get_logger("chat.rooms")


@dataclass
class RoomsModule:
    """The rooms service as a module the launcher can start alone or with the others."""

    settings: RoomsSettings
    bus: Bus
    engine: AsyncEngine
    name: str = field(default="rooms", init=False)

    def router(self) -> APIRouter:
        return build_router()

    def readiness_checks(self) -> Mapping[str, ReadinessCheck]:
        async def database() -> None:
            await postgres.ping(self.engine)

        return {"postgres": database}

    def bus_handlers(self) -> Sequence[BusHandler]:
        return ()

    def body_limits(self) -> Mapping[str, int]:
        return {}

    async def start(self) -> None:
        if self.settings.migrate_on_start:
            await postgres.prepare(self.settings.database_url, MIGRATIONS)
            log.info("rooms.migrated")

    async def stop(self) -> None:
        await self.engine.dispose()


def bootstrap(settings: RoomsSettings, *, bus: Bus, engine: AsyncEngine | None = None) -> RoomsModule:
    """Build the rooms module; tests pass their own engine and bus."""
    return RoomsModule(settings=settings, bus=bus, engine=engine or postgres.async_engine(settings.database_url))
