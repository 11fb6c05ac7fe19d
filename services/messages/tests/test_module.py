"""The messages module: settings, routes, liveness and readiness, without a database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from prometheus_client import CollectorRegistry

from chat_contracts.topics import MESSAGES_COMMANDS
from chat_messages.adapters import mongo
from chat_messages.bootstrap import MessagesModule, bootstrap, build_context
from chat_messages.settings import MessagesSettings
from chat_messages.testing.fake_attachments import FakeAttachmentStore
from chat_messages.testing.fakes import FakeMessageStore, RecordingPublisher
from chat_runtime.app import build_app
from chat_runtime.bus.inprocess import InProcessBroker, InProcessBus
from chat_runtime.settings import SettingsError, load_settings
from chat_runtime.tokens import StaticJwksSource


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = load_settings(MessagesSettings, data_dir=tmp_path)
    unreachable = mongo.client("mongodb://127.0.0.1:9/?directConnection=true&serverSelectionTimeoutMS=300")
    bus = InProcessBus(InProcessBroker())
    ctx = build_context(
        settings,
        store=FakeMessageStore(),
        attachments=FakeAttachmentStore(),
        publisher=RecordingPublisher(),
        jwks=StaticJwksSource({"keys": []}),
    )
    module = MessagesModule(settings=settings, context=ctx, mongo=unreachable)
    app = build_app([module], bus=bus, registry=CollectorRegistry())
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://t") as http,
    ):
        yield http


async def test_the_service_says_who_it_is_under_its_api_prefix(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/messages/about")
    assert response.json()["service"] == "messages"


async def test_liveness_is_ok_while_readiness_reports_mongo_down(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).status_code == 200
    ready = await client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"]["messages.mongo"]["ok"] is False


def test_a_database_name_that_could_escape_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAT_MESSAGES_MONGO_DATABASE", "chat$evil.db")
    with pytest.raises(SettingsError, match="CHAT_MESSAGES_MONGO_DATABASE"):
        load_settings(MessagesSettings)


def test_a_moderation_pattern_that_does_not_compile_stops_the_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAT_MESSAGES_BLOCKED_PATTERNS", '["ok", "(unclosed"]')
    with pytest.raises(SettingsError, match=r"CHAT_MESSAGES_BLOCKED_PATTERNS.*blocked_patterns\[1\]"):
        load_settings(MessagesSettings)


async def test_the_commands_consumer_follows_the_pace_of_the_stores_inserts(tmp_path: Path) -> None:
    settings = load_settings(MessagesSettings, data_dir=tmp_path)
    unreachable = mongo.client("mongodb://127.0.0.1:9/?directConnection=true&serverSelectionTimeoutMS=300")
    module = bootstrap(
        settings, bus=InProcessBus(InProcessBroker()), mongo_client=unreachable, jwks=StaticJwksSource({"keys": []})
    )
    try:
        paced = [handler for handler in module.bus_handlers() if handler.pace is not None]
        assert [handler.spec.name for handler in paced] == [MESSAGES_COMMANDS.name]
        assert paced[0].pace is not None
        assert paced[0].pace.fill == settings.store_write_batch
        assert paced[0].pace.pause() == 0.0  # nothing written yet: the store would take a write now
    finally:
        await unreachable.close()


@pytest.mark.parametrize(
    ("bus", "writes", "paced"),
    [
        ("inprocess", None, 50.0),  # all-in-one: paced by default
        ("kafka", None, 0.0),  # split mode: not paced by default
        ("kafka", "20", 20.0),  # a chosen pace holds on either bus
        ("inprocess", "0", 0.0),
        ("kafka", "auto", 0.0),
    ],
)
async def test_the_store_paces_inserts_by_default_on_the_in_process_bus_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bus: str, writes: str | None, paced: float
) -> None:
    monkeypatch.setenv("CHAT_BUS", bus)
    if writes is not None:
        monkeypatch.setenv("CHAT_MESSAGES_STORE_WRITES_PER_SECOND", writes)
    settings = load_settings(MessagesSettings, data_dir=tmp_path)
    assert settings.paced_writes_per_second() == paced
    unreachable = mongo.client("mongodb://127.0.0.1:9/?directConnection=true&serverSelectionTimeoutMS=300")
    module = bootstrap(
        settings, bus=InProcessBus(InProcessBroker()), mongo_client=unreachable, jwks=StaticJwksSource({"keys": []})
    )
    try:
        commands = [handler for handler in module.bus_handlers() if handler.spec.name == MESSAGES_COMMANDS.name]
        # an unpaced store gives its consumer no pace: it never waits before taking a small batch
        assert (commands[0].pace is not None) == (paced > 0)
    finally:
        await unreachable.close()


@pytest.mark.parametrize("writes", ["-1", "fast", "100001"])
def test_a_pace_that_is_neither_auto_nor_a_rate_in_range_stops_the_start(
    monkeypatch: pytest.MonkeyPatch, writes: str
) -> None:
    monkeypatch.setenv("CHAT_MESSAGES_STORE_WRITES_PER_SECOND", writes)
    with pytest.raises(SettingsError, match="CHAT_MESSAGES_STORE_WRITES_PER_SECOND"):
        load_settings(MessagesSettings)


def test_the_in_memory_store_sets_no_pace(tmp_path: Path) -> None:
    settings = load_settings(MessagesSettings, data_dir=tmp_path)
    ctx = build_context(
        settings,
        store=FakeMessageStore(),
        attachments=FakeAttachmentStore(),
        publisher=RecordingPublisher(),
        jwks=StaticJwksSource({"keys": []}),
    )
    assert all(handler.pace is None for handler in MessagesModule(settings=settings, context=ctx).bus_handlers())
