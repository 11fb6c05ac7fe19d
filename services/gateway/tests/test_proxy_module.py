"""The gateway module in split mode: proxied services are served at the gateway's origin, nothing else moves."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from prometheus_client import CollectorRegistry

from chat_gateway.bootstrap import bootstrap
from chat_gateway.settings import GatewaySettings
from chat_runtime.app import build_app
from chat_runtime.bus.inprocess import InProcessBroker, InProcessBus
from chat_runtime.settings import load_settings


async def test_a_gateway_with_proxied_services_forwards_their_paths_and_serves_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHAT_GATEWAY_ROOMS_URL", "http://rooms.internal:8002")
    monkeypatch.setenv("CHAT_GATEWAY_MESSAGES_URL", "http://messages.internal:8003")
    seen: list[str] = []

    def upstream(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        # Built from a stream, as a network transport would hand it over (a body built from bytes is read already).
        body = json.dumps({"service": request.url.host}).encode()
        return httpx.Response(200, headers={"content-type": "application/json"}, stream=httpx.ByteStream(body))

    settings = load_settings(GatewaySettings, data_dir=tmp_path)
    bus = InProcessBus(InProcessBroker())
    module = bootstrap(settings, bus=bus, proxied={"rooms", "messages"}, proxy_transport=httpx.MockTransport(upstream))
    assert module.proxy is not None
    assert module.proxy.services == {"rooms", "messages"}
    app = module.wrap(build_app([module], bus=bus, registry=CollectorRegistry()))
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://gateway.test") as http,
    ):
        assert (await http.get("/api/rooms/about")).json() == {"service": "rooms.internal"}
        assert (await http.get("/api/messages/rooms/r/messages?limit=1")).json() == {"service": "messages.internal"}
        assert (await http.get("/api/gateway/")).json()["service"] == "gateway", "the gateway's own routes stay"
        assert (await http.get("/readyz")).status_code == 200
        assert (await http.get("/api/auth/me")).status_code == 404, "auth is not proxied here"
    assert seen == [
        "http://rooms.internal:8002/api/rooms/about",
        "http://messages.internal:8003/api/messages/rooms/r/messages?limit=1",
    ]
    # The shared client is closed with the app: a request now would get 503, not a leaked connection.
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway.test") as http:
        assert (await http.get("/api/rooms/about")).status_code == 503


def test_without_proxied_services_the_gateway_has_no_proxy(tmp_path: Path) -> None:
    settings = load_settings(GatewaySettings, data_dir=tmp_path)
    assert bootstrap(settings, bus=InProcessBus(InProcessBroker())).proxy is None


def test_only_the_three_services_can_be_proxied(tmp_path: Path) -> None:
    settings = load_settings(GatewaySettings, data_dir=tmp_path)
    with pytest.raises(ValueError, match="cannot proxy"):
        bootstrap(settings, bus=InProcessBus(InProcessBroker()), proxied={"gateway"})


def test_a_bad_service_url_names_its_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAT_GATEWAY_AUTH_URL", "auth:8001")
    settings = load_settings(GatewaySettings, data_dir=tmp_path)
    with pytest.raises(ValueError, match="CHAT_GATEWAY_AUTH_URL"):
        bootstrap(settings, bus=InProcessBus(InProcessBroker()), proxied={"auth"})
