"""The small interface every service exposes, so one launcher can run any subset of them (Loki's -target)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from fastapi import APIRouter

from chat_contracts.spec import TopicSpec
from chat_runtime.bus.port import BatchHandler, Bus, Handler, Pace, Start, Subscription
from chat_runtime.health import ReadinessCheck


@dataclass(frozen=True, slots=True)
class BusHandler:
    """A consumer a module wants: ``handler`` gets records of ``spec`` as a member of ``group`` (``batch``, when
    given, a partition's ready records at once, waiting for more as ``pace`` asks; ``broadcast``: every instance
    reads everything, see ``Bus``)."""

    spec: TopicSpec
    group: str
    handler: Handler
    start: Start = "earliest"
    batch: BatchHandler | None = None
    broadcast: bool = False
    pace: Pace | None = None

    async def subscribe(self, bus: Bus) -> Subscription:
        """Subscribe this consumer on ``bus``."""
        return await bus.subscribe(
            self.spec,
            group=self.group,
            handler=self.handler,
            start=self.start,
            batch=self.batch,
            broadcast=self.broadcast,
            pace=self.pace,
        )


class ServiceModule(Protocol):
    """What a service gives the launcher. Nothing here starts at import time; ``bootstrap`` builds it."""

    @property
    def name(self) -> str:
        """Short service name; its routes are mounted under ``/api/<name>``."""

    def router(self) -> APIRouter:
        """HTTP routes, relative to ``/api/<name>``."""

    def readiness_checks(self) -> Mapping[str, ReadinessCheck]:
        """Checks of this module's own dependencies, by name."""

    def bus_handlers(self) -> Sequence[BusHandler]:
        """Consumers to subscribe once the module has started."""

    def body_limits(self) -> Mapping[str, int]:
        """Request paths (absolute, with the /api prefix) allowed a larger body than the default 64 KiB."""

    async def start(self) -> None:
        """Open connections and start background work."""

    async def stop(self) -> None:
        """Finish background work and close connections."""
