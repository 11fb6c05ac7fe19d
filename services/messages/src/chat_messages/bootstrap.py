"""Composition root of the messages service: every adapter comes in as an argument."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter
from pymongo import AsyncMongoClient

from chat_messages.adapters import mongo
from chat_messages.entrypoints.http import build_router
from chat_messages.settings import MessagesSettings
from chat_runtime.bus.port import Bus
from chat_runtime.health import ReadinessCheck
from chat_runtime.module import BusHandler


@dataclass
class MessagesModule:
    """The messages service as a module the launcher can start alone or with the others."""

    settings: MessagesSettings
    bus: Bus
    mongo: AsyncMongoClient[dict[str, Any]]
    name: str = field(default="messages", init=False)

    def router(self) -> APIRouter:
        return build_router()

    def readiness_checks(self) -> Mapping[str, ReadinessCheck]:
        async def database() -> None:
            await mongo.ping(self.mongo)

        return {"mongo": database}

    def bus_handlers(self) -> Sequence[BusHandler]:
        return ()

    def body_limits(self) -> Mapping[str, int]:
        return {}

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        await self.mongo.close()


def bootstrap(
    settings: MessagesSettings, *, bus: Bus, mongo_client: AsyncMongoClient[dict[str, Any]] | None = None
) -> MessagesModule:
    """Build the messages module; tests pass their own client and bus."""
    return MessagesModule(settings=settings, bus=bus, mongo=mongo_client or mongo.client(settings.mongo_url))
