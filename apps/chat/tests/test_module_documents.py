"""Each service's OpenAPI document and its page are at ``/api/<service>/openapi.json`` and ``/api/<service>/docs``,
public, at the gateway's origin: all-in-one (`chat up`) and split (the gateway forwarding to each service)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from asgi_lifespan import LifespanManager
from prometheus_client import CollectorRegistry

from chat_app.compose import Target, build_asgi
from chat_gateway.bootstrap import PROXIABLE, bootstrap
from chat_gateway.settings import GatewaySettings
from chat_runtime.app import build_app
from chat_runtime.bus.inprocess import InProcessBroker, InProcessBus
from chat_runtime.settings import ChatSettings, load_settings

# A route of each service that only it has, and one of another service that must not be in its document.
OWN_AND_FOREIGN = {
    "auth": ("/api/auth/.well-known/jwks.json", "/api/rooms/about"),
    "rooms": ("/api/rooms/about", "/api/messages/about"),
    "messages": ("/api/messages/about", "/api/auth/.well-known/jwks.json"),
}


@pytest.fixture(autouse=True)
def _data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CHAT_DATA_DIR", str(tmp_path))


async def _assert_each_service_documented(http: httpx.AsyncClient) -> None:
    for service, (own, foreign) in OWN_AND_FOREIGN.items():
        answer = await http.get(f"/api/{service}/openapi.json")
        assert answer.status_code == 200, (service, answer.status_code, answer.text[:200])
        document: dict[str, Any] = answer.json()
        assert document["openapi"].startswith("3.")
        assert own in document["paths"], service
        assert foreign not in document["paths"], service
        assert all(path.startswith(f"/api/{service}/") for path in document["paths"]), service
        assert "Problem" in document["components"]["schemas"]
        page = await http.get(f"/api/{service}/docs")
        assert page.status_code == 200
        assert f"/api/{service}/openapi.json" in page.text


async def test_all_in_one_serves_each_services_document_without_a_token() -> None:
    app = build_asgi("all", load_settings(ChatSettings, bus="inprocess"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://chat.test") as http:
        await _assert_each_service_documented(http)


class _ByHost(httpx.AsyncBaseTransport):
    """The network between the gateway and the services of a split deployment: each host is one service's app."""

    def __init__(self, apps: Mapping[str, Any]) -> None:
        self._transports = {host: httpx.ASGITransport(app=app) for host, app in apps.items()}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self._transports[request.url.host].handle_async_request(request)


async def test_a_split_gateway_forwards_each_services_document_without_a_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    services = {name: build_asgi(cast(Target, name), load_settings(ChatSettings, bus="kafka")) for name in PROXIABLE}
    for name in PROXIABLE:
        monkeypatch.setenv(f"CHAT_GATEWAY_{name.upper()}_URL", f"http://{name}.internal:8000")
    bus = InProcessBus(InProcessBroker())
    gateway = bootstrap(
        load_settings(GatewaySettings, data_dir=tmp_path),
        bus=bus,
        proxied=PROXIABLE,
        proxy_transport=_ByHost({f"{name}.internal": app for name, app in services.items()}),
    )
    app = gateway.wrap(build_app([gateway], bus=bus, registry=CollectorRegistry()))
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://gateway.test") as http,
    ):
        await _assert_each_service_documented(http)
