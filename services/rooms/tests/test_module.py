"""The rooms module: settings, liveness and readiness when its database is down, its bus consumer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from prometheus_client import CollectorRegistry

from chat_contracts.topics import USERS_EVENTS
from chat_rooms.bootstrap import RoomsModule, bootstrap, build_context
from chat_rooms.settings import RoomsSettings
from chat_rooms.testing.fakes import FakeRoomsStore
from chat_runtime import postgres
from chat_runtime.app import build_app
from chat_runtime.bus.inprocess import InProcessBroker, InProcessBus
from chat_runtime.settings import SettingsError, load_settings
from chat_runtime.tokens import StaticJwksSource

UNREACHABLE_DB = "postgresql+psycopg://postgres@127.0.0.1:9/chat_rooms?connect_timeout=1"


def _module(tmp_path: Path) -> RoomsModule:
    settings = load_settings(RoomsSettings, database_url=UNREACHABLE_DB, migrate_on_start=False, data_dir=tmp_path)
    ctx = build_context(settings, store=FakeRoomsStore(), jwks=StaticJwksSource({"keys": []}))
    return RoomsModule(settings=settings, context=ctx, engine=postgres.async_engine(UNREACHABLE_DB))


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    module = _module(tmp_path)
    app = build_app([module], bus=InProcessBus(InProcessBroker()), registry=CollectorRegistry())
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://t") as http,
    ):
        yield http


async def test_the_service_says_who_it_is_under_its_api_prefix(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/rooms/about")
    assert response.status_code == 200
    assert response.json()["service"] == "rooms"


async def test_liveness_is_ok_while_readiness_reports_the_database_down(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"]["rooms.postgres"]["ok"] is False


def test_the_module_consumes_user_events_in_its_own_group(tmp_path: Path) -> None:
    (handler,) = _module(tmp_path).bus_handlers()
    assert (handler.spec, handler.group) == (USERS_EVENTS, "rooms")


def test_settings_read_the_service_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAT_ROOMS_DATABASE_URL", "postgresql+psycopg://db/x")
    assert load_settings(RoomsSettings).database_url == "postgresql+psycopg://db/x"


def test_settings_reject_a_bad_value_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAT_ROOMS_DM_POLICY", "everyone-and-their-dog")
    with pytest.raises(SettingsError, match="CHAT_ROOMS_DM_POLICY"):
        load_settings(RoomsSettings)


async def test_the_outbox_relay_polls_as_often_as_the_settings_say(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert load_settings(RoomsSettings, data_dir=tmp_path).outbox_poll_seconds == 5.0
    monkeypatch.setenv("CHAT_ROOMS_OUTBOX_POLL_SECONDS", "7.5")
    settings = load_settings(RoomsSettings, database_url=UNREACHABLE_DB, data_dir=tmp_path)
    module = bootstrap(settings, bus=InProcessBus(InProcessBroker()), jwks=StaticJwksSource({"keys": []}))
    try:
        assert module.relay is not None
        assert module.relay.poll_interval == 7.5
    finally:
        if module.engine is not None:
            await module.engine.dispose()
