"""The gateway module: settings (origin allowlist), liveness and readiness."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from prometheus_client import CollectorRegistry

from chat_contracts import rooms as rev
from chat_contracts.envelope import Envelope
from chat_contracts.topics import ROOMS_EVENTS
from chat_gateway.bootstrap import bootstrap
from chat_gateway.settings import GatewaySettings
from chat_runtime.app import build_app
from chat_runtime.bus.inprocess import InProcessBroker, InProcessBus
from chat_runtime.bus.port import NotCaughtUp
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


async def test_the_gateway_is_not_ready_until_its_consumers_have_read_the_rooms_topic_to_its_head(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = load_settings(GatewaySettings, data_dir=tmp_path)
    bus = InProcessBus(InProcessBroker())
    for _ in range(3):  # memberships the gateway must know before it takes sockets
        room = rev.RoomCreated(
            room_id=uuid.uuid4(), room_version=1, kind="public", created_by=uuid.uuid4(), occurred_at=datetime.now(UTC)
        )
        await bus.publish(ROOMS_EVENTS, room, source="rooms")
    module = bootstrap(settings, bus=bus)
    release = asyncio.Event()
    replay = module.hub.delivery.on_room_event

    async def slow_replay(envelope: Envelope) -> None:
        await release.wait()
        await replay(envelope)

    monkeypatch.setattr(module.hub.delivery, "on_room_event", slow_replay)
    with pytest.raises(NotCaughtUp, match="not subscribed"):
        await module.check_consumers()
    app = build_app([module], bus=bus, registry=CollectorRegistry())
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://t") as http,
    ):
        answer = await http.get("/readyz")
        assert answer.status_code == 503
        assert "records to handle" in answer.json()["checks"]["gateway.bus"]["error"]
        release.set()
        async with asyncio.timeout(10):
            while (answer := await http.get("/readyz")).status_code != 200:
                await asyncio.sleep(0.02)
        assert answer.json()["checks"]["gateway.bus"]["ok"] is True
    with pytest.raises(NotCaughtUp):
        await module.check_consumers()


def test_a_wildcard_origin_is_refused_outside_dev(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAT_MODE", "prod")
    monkeypatch.setenv("CHAT_GATEWAY_ALLOWED_ORIGINS", '["*"]')
    with pytest.raises(SettingsError, match="allowed_origins"):
        load_settings(GatewaySettings)


def test_frames_larger_than_64_kib_cannot_be_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAT_GATEWAY_MAX_MESSAGE_BYTES", str(1024 * 1024))
    with pytest.raises(SettingsError, match="CHAT_GATEWAY_MAX_MESSAGE_BYTES"):
        load_settings(GatewaySettings)
