"""Problem documents, correlation ids, health, readiness and metrics of a composed app."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import APIRouter
from prometheus_client import CollectorRegistry
from pydantic import BaseModel, ConfigDict
from pymongo.errors import AutoReconnect
from sqlalchemy.exc import OperationalError

from chat_runtime.app import GC_THRESHOLDS, build_app
from chat_runtime.bus.inprocess import InProcessBroker, InProcessBus
from chat_runtime.bus.metrics import BusMetrics
from chat_runtime.health import ReadinessCheck
from chat_runtime.module import BusHandler
from chat_runtime.problems import ProblemError


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str


@dataclass
class DemoModule:
    healthy: bool = True
    events: list[str] = field(default_factory=list)
    name: str = "demo"

    def router(self) -> APIRouter:
        router = APIRouter()

        @router.post("/things")
        async def create(body: Body) -> dict[str, str]:
            if body.name == "taken":
                raise ProblemError(409, "name_taken", "That name is taken.")
            if body.name == "crash":
                raise RuntimeError("secret internals")
            if body.name == "mongo-down":
                raise AutoReconnect("127.0.0.1:27017: connection refused")
            if body.name == "postgres-down":
                raise OperationalError("SELECT 1", {}, ConnectionRefusedError("refused"))
            return {"name": body.name}

        return router

    def readiness_checks(self) -> Mapping[str, ReadinessCheck]:
        async def dependency() -> None:
            if not self.healthy:
                raise ConnectionError("refused")

        return {"dependency": dependency}

    def bus_handlers(self) -> Sequence[BusHandler]:
        return ()

    def body_limits(self) -> Mapping[str, int]:
        return {}

    async def start(self) -> None:
        self.events.append("start")

    async def stop(self) -> None:
        self.events.append("stop")


@pytest.fixture
def module() -> DemoModule:
    return DemoModule()


@pytest.fixture
async def client(module: DemoModule) -> AsyncIterator[httpx.AsyncClient]:
    registry = CollectorRegistry()
    bus = InProcessBus(InProcessBroker(), metrics=BusMetrics(registry))
    app = build_app([module], bus=bus, registry=registry)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            yield http


async def test_modules_start_with_the_app_and_stop_with_it(module: DemoModule, client: httpx.AsyncClient) -> None:
    assert module.events == ["start"]


async def test_a_started_app_freezes_what_start_up_made_and_collects_less_often_until_it_stops(
    module: DemoModule,
) -> None:
    registry = CollectorRegistry()
    app = build_app([module], bus=InProcessBus(InProcessBroker(), metrics=BusMetrics(registry)), registry=registry)
    made_before = [object()]  # alive when the app starts: frozen, out of the collector's reach
    gc.set_threshold(700, 10, 10)
    try:
        async with LifespanManager(app):
            assert gc.get_threshold() == GC_THRESHOLDS
            assert gc.get_freeze_count() > 0
            assert not any(made_before is tracked for tracked in gc.get_objects())
        assert gc.get_threshold() == (700, 10, 10)
    finally:
        gc.unfreeze()


async def test_a_module_route_is_served_under_its_api_prefix(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/demo/things", json={"name": "x"})
    assert response.status_code == 200
    assert response.json() == {"name": "x"}


async def test_a_raised_problem_becomes_problem_json_with_a_stable_code(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/demo/things", json={"name": "taken"})
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "name_taken"
    assert body["status"] == 409
    assert body["type"] == "urn:chat:problem:name_taken"
    assert body["instance"] == "/api/demo/things"


async def test_unknown_fields_are_rejected_as_a_validation_problem(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/demo/things", json={"name": "x", "admin": True})
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "validation_failed"
    assert any(err["loc"][-1] == "admin" for err in body["errors"])


async def test_an_unknown_path_is_a_not_found_problem(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/nowhere")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


async def test_an_unexpected_error_is_a_500_problem_that_leaks_nothing(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/demo/things", json={"name": "crash"})
    assert response.status_code == 500
    assert response.json()["code"] == "internal_error"
    assert "secret internals" not in response.text


@pytest.mark.parametrize("store", ["mongo-down", "postgres-down"])
async def test_an_unreachable_store_is_a_503_problem_a_client_retries(store: str, client: httpx.AsyncClient) -> None:
    response = await client.post("/api/demo/things", json={"name": store})
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "unavailable"
    assert response.headers["retry-after"] == "2"
    assert "refused" not in response.text


async def test_the_nul_character_is_refused_anywhere_in_a_request(client: httpx.AsyncClient) -> None:
    for response in (
        await client.post("/api/demo/things", json={"name": "a\x00b"}),
        await client.post("/api/demo/things", json={"name": "ok", "a\x00": 1}),
        await client.post("/api/demo/things?q=%00", json={"name": "ok"}),
        await client.get("/api/demo/th%00ings"),
    ):
        assert response.status_code == 422, response.text
        assert response.json()["code"] == "validation_failed"
        assert "NUL" in response.json()["detail"]
    literal = await client.post("/api/demo/things", json={"name": "\\u0000 is how JSON writes it"})
    assert literal.status_code == 200, "the escaped text is just text"
    assert literal.json() == {"name": "\\u0000 is how JSON writes it"}


async def test_a_well_formed_correlation_id_is_echoed_and_a_bad_one_replaced(
    client: httpx.AsyncClient,
) -> None:
    kept = await client.get("/healthz", headers={"X-Correlation-ID": "abc-123"})
    assert kept.headers["x-correlation-id"] == "abc-123"
    replaced = await client.get("/healthz", headers={"X-Correlation-ID": "bad value\n<script>"})
    assert replaced.headers["x-correlation-id"] != "bad value\n<script>"
    assert len(replaced.headers["x-correlation-id"]) == 32


async def test_liveness_answers_while_readiness_reflects_dependencies(
    module: DemoModule, client: httpx.AsyncClient
) -> None:
    assert (await client.get("/healthz")).status_code == 200
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"]["demo.dependency"]["ok"] is True
    module.healthy = False
    not_ready = await client.get("/readyz")
    assert not_ready.status_code == 503
    assert not_ready.json()["checks"]["demo.dependency"] == {"ok": False, "error": "ConnectionError: refused"}


async def test_metrics_are_exposed_in_prometheus_format(client: httpx.AsyncClient) -> None:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert "chat_bus_published_total" in response.text


def test_a_body_limit_can_name_a_path_with_placeholders() -> None:
    from chat_runtime.middleware import BodySizeLimitMiddleware

    async def app(scope: object, receive: object, send: object) -> None:
        return None

    limits = BodySizeLimitMiddleware(
        app, max_bytes=10, overrides={"/api/x/rooms/{room_id}/files": 1000, "/api/avatar": 500}
    )
    assert limits.limit_for("/api/x/rooms/123/files") == 1000
    assert limits.limit_for("/api/avatar") == 500
    assert limits.limit_for("/api/x/rooms/123/files/9") == 10
    assert limits.limit_for("/api/x/rooms/1/2/files") == 10
    assert limits.limit_for("/api/x/rooms//files") == 10
