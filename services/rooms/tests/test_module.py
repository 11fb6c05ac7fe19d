"""The rooms module: settings, routes, liveness and readiness, without a database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from prometheus_client import CollectorRegistry

from chat_rooms.bootstrap import bootstrap
from chat_rooms.settings import RoomsSettings
from chat_runtime.app import build_app
from chat_runtime.bus.inprocess import InProcessBroker, InProcessBus
from chat_runtime.settings import SettingsError, load_settings

UNREACHABLE_DB = "postgresql+psycopg://postgres@127.0.0.1:9/chat_rooms?connect_timeout=1"


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = load_settings(RoomsSettings, database_url=UNREACHABLE_DB, migrate_on_start=False, data_dir=tmp_path)
    bus = InProcessBus(InProcessBroker())
    registry = CollectorRegistry()
    app = build_app([bootstrap(settings, bus=bus)], bus=bus, registry=registry)
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://t") as http,
    ):
        yield http


async def test_the_service_says_who_it_is_under_its_api_prefix(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/rooms/")
    assert response.status_code == 200
    assert response.json()["service"] == "rooms"


async def test_liveness_is_ok_while_readiness_reports_the_database_down(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"]["rooms.postgres"]["ok"] is False


def test_settings_read_the_service_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAT_ROOMS_DATABASE_URL", "postgresql+psycopg://db/x")
    assert load_settings(RoomsSettings).database_url == "postgresql+psycopg://db/x"


def test_settings_reject_a_bad_value_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAT_ROOMS_MIGRATE_ON_START", "perhaps")
    with pytest.raises(SettingsError, match="CHAT_ROOMS_MIGRATE_ON_START"):
        load_settings(RoomsSettings)
