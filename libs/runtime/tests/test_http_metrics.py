"""HTTP requests counted and timed by service, route template, method and status."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import APIRouter
from prometheus_client import CollectorRegistry

from chat_runtime.app import build_app
from chat_runtime.bus.inprocess import InProcessBroker, InProcessBus
from chat_runtime.bus.metrics import BusMetrics
from chat_runtime.health import ReadinessCheck
from chat_runtime.module import BusHandler
from chat_runtime.problems import ProblemError


@dataclass
class ItemsModule:
    name: str = "items"

    def router(self) -> APIRouter:
        router = APIRouter()

        @router.get("/things/{thing_id}")
        async def thing(thing_id: str) -> dict[str, str]:
            if thing_id == "missing":
                raise ProblemError(404, "not_found", "No such thing.")
            if thing_id == "crash":
                raise RuntimeError("boom")
            return {"id": thing_id}

        return router

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


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
async def client(registry: CollectorRegistry) -> AsyncIterator[httpx.AsyncClient]:
    bus = InProcessBus(InProcessBroker(), metrics=BusMetrics(registry))
    app = build_app([ItemsModule()], bus=bus, registry=registry)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            yield http


def requests(registry: CollectorRegistry, service: str, route: str, method: str, status: str) -> float:
    labels = {"service": service, "route": route, "method": method, "status": status}
    return registry.get_sample_value("chat_http_requests_total", labels) or 0.0


def timed(registry: CollectorRegistry, service: str, route: str, method: str) -> float:
    labels = {"service": service, "route": route, "method": method}
    return registry.get_sample_value("chat_http_request_duration_seconds_count", labels) or 0.0


async def test_requests_are_counted_by_route_template_and_status(
    client: httpx.AsyncClient, registry: CollectorRegistry
) -> None:
    for thing in ("a", "b", "missing"):
        await client.get(f"/api/items/things/{thing}")
    route = "/api/items/things/{thing_id}"
    assert requests(registry, "items", route, "GET", "200") == 2
    assert requests(registry, "items", route, "GET", "404") == 1
    assert timed(registry, "items", route, "GET") == 3


async def test_a_failing_handler_is_counted_as_500(client: httpx.AsyncClient, registry: CollectorRegistry) -> None:
    response = await client.get("/api/items/things/crash")
    assert response.status_code == 500
    assert requests(registry, "items", "/api/items/things/{thing_id}", "GET", "500") == 1


async def test_unmatched_paths_share_one_label_and_never_show_the_raw_path(
    client: httpx.AsyncClient, registry: CollectorRegistry
) -> None:
    await client.get("/api/items/nothing/here")
    await client.get("/random-1234")
    await client.request("BREW", "/api/items/things/a")
    assert requests(registry, "items", "unmatched", "GET", "404") == 1
    assert requests(registry, "app", "unmatched", "GET", "404") == 1
    assert requests(registry, "items", "/api/items/things/{thing_id}", "other", "405") == 1
    exposed = [sample.labels for metric in registry.collect() for sample in metric.samples]
    assert not [labels for labels in exposed if "1234" in labels.get("route", "")]


async def test_operational_endpoints_are_the_app_service(
    client: httpx.AsyncClient, registry: CollectorRegistry
) -> None:
    await client.get("/healthz")
    await client.get("/metrics")
    assert requests(registry, "app", "/healthz", "GET", "200") == 1
    assert timed(registry, "app", "/metrics", "GET") == 1
