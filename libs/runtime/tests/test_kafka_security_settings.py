"""The Kafka TLS and SASL settings: combinations that cannot work are refused at start-up, naming the variables."""

from __future__ import annotations

from pathlib import Path

import pytest

from chat_runtime.settings import ChatSettings, SettingsError, load_settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in (
        "CHAT_KAFKA_SECURITY_PROTOCOL",
        "CHAT_KAFKA_SASL_MECHANISM",
        "CHAT_KAFKA_SASL_USERNAME",
        "CHAT_KAFKA_SASL_PASSWORD",
        "CHAT_KAFKA_SSL_CAFILE",
        "CHAT_KAFKA_SSL_CERTFILE",
        "CHAT_KAFKA_SSL_KEYFILE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CHAT_DATA_DIR", str(tmp_path))


def test_sasl_ssl_with_a_mechanism_user_and_password_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAT_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("CHAT_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("CHAT_KAFKA_SASL_USERNAME", "chat")
    monkeypatch.setenv("CHAT_KAFKA_SASL_PASSWORD", "s3cret-from-the-provider")

    settings = load_settings(ChatSettings)

    assert settings.kafka_sasl_mechanism == "SCRAM-SHA-512"
    assert settings.kafka_sasl_password is not None
    assert "s3cret" not in repr(settings)


def test_sasl_without_credentials_names_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAT_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("CHAT_KAFKA_SASL_MECHANISM", "PLAIN")

    with pytest.raises(SettingsError, match="SASL_SSL needs CHAT_KAFKA_SASL_USERNAME, CHAT_KAFKA_SASL_PASSWORD"):
        load_settings(ChatSettings)


def test_credentials_on_a_protocol_without_sasl_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAT_KAFKA_SASL_USERNAME", "chat")
    monkeypatch.setenv("CHAT_KAFKA_SASL_PASSWORD", "pw")

    with pytest.raises(SettingsError, match="PLAINTEXT does not sign in: use SASL_SSL"):
        load_settings(ChatSettings)


def test_an_unknown_mechanism_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAT_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("CHAT_KAFKA_SASL_MECHANISM", "GSSAPI")

    with pytest.raises(SettingsError, match="KAFKA_SASL_MECHANISM"):
        load_settings(ChatSettings)


def test_certificate_files_without_tls_are_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    monkeypatch.setenv("CHAT_KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("CHAT_KAFKA_SASL_MECHANISM", "PLAIN")
    monkeypatch.setenv("CHAT_KAFKA_SASL_USERNAME", "chat")
    monkeypatch.setenv("CHAT_KAFKA_SASL_PASSWORD", "pw")
    monkeypatch.setenv("CHAT_KAFKA_SSL_CAFILE", str(ca))

    with pytest.raises(SettingsError, match=r"CHAT_KAFKA_SSL_CAFILE set but .*uses no TLS"):
        load_settings(ChatSettings)


def test_a_client_certificate_needs_its_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cert = tmp_path / "client.pem"
    cert.write_text("-----BEGIN CERTIFICATE-----\n")
    monkeypatch.setenv("CHAT_KAFKA_SECURITY_PROTOCOL", "SSL")
    monkeypatch.setenv("CHAT_KAFKA_SSL_CERTFILE", str(cert))

    with pytest.raises(SettingsError, match="CERTFILE and CHAT_KAFKA_SSL_KEYFILE go together"):
        load_settings(ChatSettings)


def test_a_missing_ca_file_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CHAT_KAFKA_SECURITY_PROTOCOL", "SSL")
    monkeypatch.setenv("CHAT_KAFKA_SSL_CAFILE", str(tmp_path / "missing.pem"))

    with pytest.raises(SettingsError, match="CHAT_KAFKA_SSL_CAFILE: no readable file at"):
        load_settings(ChatSettings)
