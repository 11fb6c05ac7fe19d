"""In split mode the gateway forwards /api/<service>/… to the services that run in other processes."""

from __future__ import annotations

from pathlib import Path

import pytest

from chat_app.compose import build, proxied_by
from chat_gateway.bootstrap import GatewayModule
from chat_runtime.settings import ChatSettings, load_settings


@pytest.fixture(autouse=True)
def _data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CHAT_DATA_DIR", str(tmp_path))


def test_a_gateway_alone_proxies_auth_rooms_and_messages() -> None:
    assert proxied_by("gateway") == ("auth", "rooms", "messages")
    (gateway,) = build("gateway", load_settings(ChatSettings, bus="kafka")).state.modules
    assert isinstance(gateway, GatewayModule)
    assert gateway.proxy is not None
    assert gateway.proxy.services == {"auth", "rooms", "messages"}


def test_all_in_one_mounts_every_service_and_proxies_nothing() -> None:
    assert proxied_by("all") == ()
    modules = build("all", load_settings(ChatSettings, bus="inprocess")).state.modules
    (gateway,) = [m for m in modules if isinstance(m, GatewayModule)]
    assert gateway.proxy is None


def test_a_target_without_the_gateway_proxies_nothing() -> None:
    assert proxied_by("rooms") == ()
