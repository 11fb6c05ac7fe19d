"""Compose service modules, a bus and the operational endpoints into one ASGI application."""

from __future__ import annotations

import gc
import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import structlog
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from prometheus_client import CollectorRegistry

from chat_runtime.bus.port import Bus
from chat_runtime.health import ReadinessCheck, health_router
from chat_runtime.middleware import (
    DEFAULT_MAX_BODY_BYTES,
    BodySizeLimitMiddleware,
    CorrelationIdMiddleware,
    NulCharacterGuard,
)
from chat_runtime.module import ServiceModule
from chat_runtime.problems import PROBLEM_JSON, Problem, install_problem_handlers

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
                    await consumer.subscribe(bus)
            log.info("app.started", modules=names)
            _freeze_what_startup_made()
            yield
        finally:
            await bus.stop()
            for module in reversed(started):
                await module.stop()
            log.info("app.stopped", modules=names)

    app = FastAPI(title=title, lifespan=lifespan)
    install_problem_handlers(app)
    overrides = {path: limit for module in modules for path, limit in module.body_limits().items()}
    app.add_middleware(NulCharacterGuard)  # inside the size limit: it reads JSON bodies whole
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=max_body_bytes, overrides=overrides)
    app.add_middleware(CorrelationIdMiddleware)  # added last = outermost: errors are logged with the id
    checks: dict[str, ReadinessCheck] = {}
    for module in modules:
        app.include_router(module.router(), prefix=f"/api/{module.name}")
        checks.update({f"{module.name}.{name}": check for name, check in module.readiness_checks().items()})
    app.include_router(health_router(checks, registry))
    _document_errors_as_problems(app)
    return app


def _freeze_what_startup_made() -> None:
    """Move every object alive after start-up (modules, routes, schemas, settings: hundreds of thousands) out of
    the collector's reach, so each full collection scans only what the running service made since, and its pauses
    stop landing in message latencies."""
    gc.collect()
    gc.freeze()


def _document_errors_as_problems(app: FastAPI) -> None:
    """Every error the app sends is application/problem+json (``chat_runtime.problems``): say so in the OpenAPI
    document too, including FastAPI's automatic 422 (documented by default as plain JSON ``HTTPValidationError``)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.setdefault("Problem", Problem.model_json_schema(ref_template="#/components/schemas/{model}"))
        problem = {"schema": {"$ref": "#/components/schemas/Problem"}}
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                for status, response in operation.get("responses", {}).items():
                    if not str(status).startswith(("4", "5")):
                        continue
                    content = response.setdefault("content", {})
                    plain = content.get("application/json", {}).get("schema", {})
                    if plain.get("$ref", "").endswith(("/HTTPValidationError", "/Problem")):
                        content.pop("application/json")
                    content[PROBLEM_JSON] = problem
        for unused in ("HTTPValidationError", "ValidationError"):
            if not any(unused in json.dumps(v) for k, v in schema.items() if k != "components"):
                components.pop(unused, None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
