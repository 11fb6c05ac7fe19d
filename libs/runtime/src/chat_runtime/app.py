"""Compose service modules, a bus and the operational endpoints into one ASGI application."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import structlog
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from chat_runtime.bus.port import Bus
from chat_runtime.health import ReadinessCheck, health_router
from chat_runtime.middleware import DEFAULT_MAX_BODY_BYTES, BodySizeLimitMiddleware, CorrelationIdMiddleware
from chat_runtime.module import ServiceModule
from chat_runtime.problems import install_problem_handlers

log = structlog.get_logger("chat.app")


def build_app(
    modules: Sequence[ServiceModule],
    *,
    bus: Bus,
    registry: CollectorRegistry,
    title: str = "chat",
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> FastAPI:
    """One FastAPI app serving ``modules`` under ``/api/<name>``; starts and stops them with the bus."""
    names = [module.name for module in modules]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate module names: {names}")

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await bus.start()
        started: list[ServiceModule] = []
        try:
            for module in modules:
                await module.start()
                started.append(module)
                for consumer in module.bus_handlers():
                    await bus.subscribe(
                        consumer.spec, group=consumer.group, handler=consumer.handler, start=consumer.start
                    )
            log.info("app.started", modules=names)
            yield
        finally:
            await bus.stop()
            for module in reversed(started):
                await module.stop()
            log.info("app.stopped", modules=names)

    app = FastAPI(title=title, lifespan=lifespan)
    install_problem_handlers(app)
    overrides = {path: limit for module in modules for path, limit in module.body_limits().items()}
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=max_body_bytes, overrides=overrides)
    app.add_middleware(CorrelationIdMiddleware)  # added last = outermost: errors are logged with the id
    checks: dict[str, ReadinessCheck] = {}
    for module in modules:
        app.include_router(module.router(), prefix=f"/api/{module.name}")
        checks.update({f"{module.name}.{name}": check for name, check in module.readiness_checks().items()})
    app.include_router(health_router(checks, registry))
    return app
