"""Compose service modules, a bus and the operational endpoints into one ASGI application."""

from __future__ import annotations

import gc
import json
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, Final

import structlog
from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse
from prometheus_client import CollectorRegistry

from chat_runtime.bus.port import Bus
from chat_runtime.health import ReadinessCheck, health_router
from chat_runtime.http_metrics import HttpMetrics, HttpMetricsMiddleware
from chat_runtime.middleware import (
    DEFAULT_MAX_BODY_BYTES,
    BodySizeLimitMiddleware,
    CorrelationIdMiddleware,
    NulCharacterGuard,
)
from chat_runtime.module import ServiceModule
from chat_runtime.problems import PROBLEM_JSON, Problem, install_problem_handlers

log = structlog.get_logger("chat.app")

_SCHEMA_REF = re.compile(r'"\$ref": "#/components/schemas/([^"]+)"')


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
        thresholds = gc.get_threshold()
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
            gc.set_threshold(*thresholds)  # what the process had before (tests start apps in one process)
            await bus.stop()
            for module in reversed(started):
                await module.stop()
            log.info("app.stopped", modules=names)

    app = FastAPI(title=title, lifespan=lifespan)
    install_problem_handlers(app)
    overrides = {path: limit for module in modules for path, limit in module.body_limits().items()}
    app.add_middleware(NulCharacterGuard)  # inside the size limit: it reads JSON bodies whole
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=max_body_bytes, overrides=overrides)
    # Around the limits and guards, so their refusals are counted and timed too.
    http_metrics = HttpMetrics(registry, names)
    app.add_middleware(HttpMetricsMiddleware, metrics=http_metrics)
    app.add_middleware(
        CorrelationIdMiddleware, route_of=http_metrics.route_of
    )  # added last = outermost: errors are logged with the id
    checks: dict[str, ReadinessCheck] = {}
    for module in modules:
        # Ahead of the module's routes, so no route of its own (``/api/rooms/{room_id}``) takes these paths.
        app.include_router(_module_documents(app, module.name))
        app.include_router(module.router(), prefix=f"/api/{module.name}")
        checks.update({f"{module.name}.{name}": check for name, check in module.readiness_checks().items()})
    app.include_router(health_router(checks, registry))
    _document_errors_as_problems(app)
    http_metrics.learn_routes(app.routes)
    return app


GC_THRESHOLDS: Final = (20_000, 10, 10)
"""The cyclic collector's thresholds once a service has started; Python's own are (700, 10, 10). Every message
makes and drops hundreds of objects, and at 700 the youngest generation was collected every few messages: in one
benchmark run (400 sockets connecting, then 3,200 messages) the collector ran 277 times for 0.24 s. At 20,000 it
ran 4 times for 0.03 s, and found the same garbage (docs/benchmarks.md)."""


def _freeze_what_startup_made() -> None:
    """Move every object alive after start-up (modules, routes, schemas, settings: hundreds of thousands) out of
    the collector's reach, so each full collection scans only what the running service made since, and its pauses
    stop landing in message latencies; then collect the youngest objects less often (``GC_THRESHOLDS``)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def _module_documents(app: FastAPI, name: str) -> APIRouter:
    """``/api/<name>/openapi.json`` and ``/api/<name>/docs``: one module's own OpenAPI document and its page, under
    the module's prefix, so they are reached wherever the module's routes are (the gateway's origin forwards
    ``/api/<name>/…`` to the module's process in split mode). Public, like the routes they describe."""
    prefix = f"/api/{name}"
    router = APIRouter(prefix=prefix, include_in_schema=False)
    document: dict[str, Any] = {}

    @router.get("/openapi.json")
    async def module_openapi() -> JSONResponse:
        if not document:
            document.update(_part_of(app.openapi(), prefix, title=f"{app.title}: {name}"))
        return JSONResponse(document)

    @router.get("/docs")
    async def module_docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=f"{prefix}/openapi.json", title=f"{app.title}: {name} API")

    return router


def _part_of(whole: dict[str, Any], prefix: str, *, title: str) -> dict[str, Any]:
    """The part of the OpenAPI document ``whole`` under ``prefix``: its paths and the schemas they refer to."""
    paths = {path: item for path, item in whole.get("paths", {}).items() if path.startswith(prefix + "/")}
    components: dict[str, Any] = dict(whole.get("components", {}))
    schemas: dict[str, Any] = components.get("schemas", {})
    used: set[str] = set()
    pending = _schema_refs(paths)
    while pending:
        name = pending.pop()
        if name not in used and name in schemas:
            used.add(name)
            pending |= _schema_refs(schemas[name])
    components["schemas"] = {name: schema for name, schema in schemas.items() if name in used}
    return {**whole, "info": {**whole.get("info", {}), "title": title}, "paths": paths, "components": components}


def _schema_refs(fragment: Any) -> set[str]:
    """The names of the component schemas ``fragment`` refers to directly."""
    return set(_SCHEMA_REF.findall(json.dumps(fragment)))


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
