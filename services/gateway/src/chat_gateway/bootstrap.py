"""Composition root of the gateway: every adapter comes in as an argument."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from fastapi import APIRouter

from chat_gateway.entrypoints.http import build_router
from chat_gateway.settings import GatewaySettings
from chat_runtime.bus.port import Bus
from chat_runtime.health import ReadinessCheck
from chat_runtime.module import BusHandler


@dataclass
class GatewayModule:
    """The gateway as a module the launcher can start alone or with the others."""

    settings: GatewaySettings
    bus: Bus
    name: str = field(default="gateway", init=False)

    def router(self) -> APIRouter:
        return build_router()

    def readiness_checks(self) -> Mapping[str, ReadinessCheck]:
        return {}

    def bus_handlers(self) -> Sequence[BusHandler]:
        return ()

    def body_limits(self) -> Mapping[str, int]:
        return {}

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


def bootstrap(settings: GatewaySettings, *, bus: Bus) -> GatewayModule:
    """Build the gateway module."""
    return GatewayModule(settings=settings, bus=bus)
