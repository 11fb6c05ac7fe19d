"""The gateway module: settings (origin allowlist), liveness and readiness."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from prometheus_client import CollectorRegistry

from chat_gateway.bootstrap import bootstrap
from chat_gateway.settings import GatewaySettings
from chat_runtime.app import build_app
from chat_runtime.bus.inprocess import InProcessBroker, InProcessBus
from chat_runtime.settings import SettingsError, load_settings


async def test_the_gateway_is_live_and_ready_and_says_who_it_is(tmp_path: Path) -> None:
    settings = load_settings(GatewaySettings, data_dir=tmp_path)
    bus = InProcessBus(InProcessBroker())
    app = build_app([bootstrap(settings, bus=bus)], bus=bus, registry=CollectorRegistry())
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://t") as http,
    ):
        assert (await http.get("/api/gateway/")).json()["service"] == "gateway"
        assert (await http.get("/healthz")).status_code == 200
        assert (await http.get("/readyz")).status_code == 200


def test_a_wildcard_origin_is_refused_outside_dev(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAT_MODE", "prod")
    monkeypatch.setenv("CHAT_GATEWAY_ALLOWED_ORIGINS", '["*"]')
    with pytest.raises(SettingsError, match="allowed_origins"):
        load_settings(GatewaySettings)


def test_frames_larger_than_64_kib_cannot_be_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAT_GATEWAY_MAX_MESSAGE_BYTES", str(1024 * 1024))
    with pytest.raises(SettingsError, match="CHAT_GATEWAY_MAX_MESSAGE_BYTES"):
        load_settings(GatewaySettings)
