"""Settings: service prefix over shared prefix, secrets refused or generated, readable errors."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import ClassVar

import pytest
from pydantic import SecretStr
from pydantic_settings import SettingsConfigDict

from chat_runtime.settings import ChatSettings, SettingsError, is_strong_secret, load_settings


class DemoSettings(ChatSettings):
    SERVICE: ClassVar[str] = "demo"
    GENERATED_SECRETS: ClassVar[tuple[str, ...]] = ("signing_secret",)
    model_config = SettingsConfigDict(env_prefix="CHAT_DEMO_", extra="ignore", validate_default=True)

    database_url: str = "postgresql://localhost/demo"
    signing_secret: SecretStr | None = None
    port_limit: int = 10


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in (
        "CHAT_MODE",
        "CHAT_DEMO_MODE",
        "CHAT_DATA_DIR",
        "CHAT_DEMO_DATA_DIR",
        "CHAT_KAFKA_BOOTSTRAP",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CHAT_DATA_DIR", str(tmp_path))


def test_a_shared_variable_applies_when_the_service_one_is_absent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAT_KAFKA_BOOTSTRAP", "broker:9092")
    assert load_settings(DemoSettings).kafka_bootstrap == "broker:9092"


def test_the_service_prefixed_variable_wins_over_the_shared_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAT_KAFKA_BOOTSTRAP", "shared:9092")
    monkeypatch.setenv("CHAT_DEMO_KAFKA_BOOTSTRAP", "own:9092")
    assert load_settings(DemoSettings).kafka_bootstrap == "own:9092"


def test_service_only_fields_read_the_service_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAT_DEMO_DATABASE_URL", "postgresql://db/x")
    assert load_settings(DemoSettings).database_url == "postgresql://db/x"


def test_a_missing_secret_is_generated_once_in_dev_and_kept_private(tmp_path: Path) -> None:
    first = load_settings(DemoSettings)
    second = load_settings(DemoSettings)
    assert first.signing_secret is not None
    assert second.signing_secret is not None
    assert first.signing_secret.get_secret_value() == second.signing_secret.get_secret_value()
    assert is_strong_secret(first.signing_secret.get_secret_value())
    stored = tmp_path / "dev-secrets.json"
    assert "demo.signing_secret" in json.loads(stored.read_text())
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600


def test_production_refuses_a_missing_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAT_MODE", "prod")
    with pytest.raises(SettingsError, match="signing_secret: required outside dev mode"):
        load_settings(DemoSettings)


@pytest.mark.parametrize("weak", ["changeme", "secret", "dev-" + "x" * 40, "short-but-random-Zq8"])
def test_production_refuses_default_or_weak_secrets(monkeypatch: pytest.MonkeyPatch, weak: str) -> None:
    monkeypatch.setenv("CHAT_MODE", "prod")
    monkeypatch.setenv("CHAT_DEMO_SIGNING_SECRET", weak)
    with pytest.raises(SettingsError, match="weak secret is refused"):
        load_settings(DemoSettings)


def test_production_accepts_a_strong_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAT_MODE", "prod")
    monkeypatch.setenv("CHAT_DEMO_SIGNING_SECRET", "Zq8" * 16)
    settings = load_settings(DemoSettings)
    assert settings.signing_secret is not None
    assert settings.signing_secret.get_secret_value() == "Zq8" * 16


def test_errors_name_the_environment_variables_to_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAT_DEMO_PORT_LIMIT", "many")
    monkeypatch.setenv("CHAT_MODE", "staging")
    with pytest.raises(SettingsError) as caught:
        load_settings(DemoSettings)
    message = str(caught.value)
    assert "invalid demo settings" in message
    assert "CHAT_DEMO_PORT_LIMIT" in message
    assert "CHAT_DEMO_MODE (or CHAT_MODE)" in message


def test_the_secret_never_appears_in_the_settings_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAT_DEMO_SIGNING_SECRET", "Zq8" * 16)
    assert "Zq8Zq8" not in repr(load_settings(DemoSettings))


@pytest.mark.parametrize("address", ["10.1.2.3:9095", "[fd00::1]:9095", "fd00::1:9095", "messages-0.chat.svc:1"])
def test_a_peer_address_is_a_host_and_a_port(tmp_path: Path, address: str) -> None:
    assert ChatSettings(data_dir=tmp_path, kafka_peer_address=address).kafka_peer_address == address


@pytest.mark.parametrize("address", ["10.1.2.3", "10.1.2.3:0", "10.1.2.3:70000", "http://pod:9095", "pod:port"])
def test_anything_else_as_a_peer_address_is_refused(tmp_path: Path, address: str) -> None:
    with pytest.raises(ValueError, match=r"kafka_peer_address|CHAT_KAFKA_PEER_ADDRESS"):
        ChatSettings(data_dir=tmp_path, kafka_peer_address=address)
