"""The auth module: settings, liveness and readiness when its database is down."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from prometheus_client import CollectorRegistry

from chat_auth.bootstrap import AuthModule, bootstrap, build_context
from chat_auth.settings import AuthSettings
from chat_auth.testing.fakes import FakeAuthStore, RecordingMailer
from chat_runtime import postgres
from chat_runtime.app import build_app
from chat_runtime.bus.inprocess import InProcessBroker, InProcessBus
from chat_runtime.settings import SettingsError, load_settings

UNREACHABLE_DB = "postgresql+psycopg://postgres@127.0.0.1:9/chat_auth?connect_timeout=1"


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = load_settings(AuthSettings, database_url=UNREACHABLE_DB, migrate_on_start=False, data_dir=tmp_path)
    ctx = build_context(settings, store=FakeAuthStore(), mailer=RecordingMailer())
    module = AuthModule(settings=settings, context=ctx, engine=postgres.async_engine(UNREACHABLE_DB))
    bus = InProcessBus(InProcessBroker())
    app = build_app([module], bus=bus, registry=CollectorRegistry())
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://t") as http,
    ):
        yield http


async def test_the_service_says_who_it_is_under_its_api_prefix(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/auth/")
    assert response.status_code == 200
    assert response.json()["service"] == "auth"
    assert response.json()["oidc_enabled"] is False


async def test_liveness_is_ok_while_readiness_reports_the_database_down(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"]["auth.postgres"]["ok"] is False


def test_settings_read_the_service_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAT_AUTH_DATABASE_URL", "postgresql+psycopg://db/x")
    assert load_settings(AuthSettings).database_url == "postgresql+psycopg://db/x"


def test_settings_reject_a_bad_value_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAT_AUTH_MIGRATE_ON_START", "perhaps")
    with pytest.raises(SettingsError, match="CHAT_AUTH_MIGRATE_ON_START"):
        load_settings(AuthSettings)


def test_production_refuses_printing_codes_to_the_log(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAT_MODE", "prod")
    monkeypatch.setenv("CHAT_AUTH_SEALING_SECRET", "Zq8" * 16)
    monkeypatch.setenv("CHAT_AUTH_CODE_PEPPER", "Pk4" * 16)
    with pytest.raises(SettingsError, match="email_transport"):
        load_settings(AuthSettings)


def test_production_requires_the_sealing_secret_and_code_pepper(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAT_MODE", "prod")
    monkeypatch.setenv("CHAT_AUTH_EMAIL_TRANSPORT", "smtp")
    with pytest.raises(SettingsError, match="sealing_secret: required outside dev mode"):
        load_settings(AuthSettings)


async def test_the_outbox_relay_polls_as_often_as_the_settings_say(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert load_settings(AuthSettings, data_dir=tmp_path).outbox_poll_seconds == 5.0
    monkeypatch.setenv("CHAT_OUTBOX_POLL_SECONDS", "8")
    settings = load_settings(AuthSettings, database_url=UNREACHABLE_DB, data_dir=tmp_path)
    module = bootstrap(settings, bus=InProcessBus(InProcessBroker()), mailer=RecordingMailer())
    try:
        assert module.relay is not None
        assert module.relay.poll_interval == 8.0
    finally:
        if module.engine is not None:
            await module.engine.dispose()
