"""The launcher composes the same modules for every target."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from chat_app import compose
from chat_app.cli import main
from chat_app.compose import MODULES, LauncherError, build, build_order, kafka_config, make_bus, services_for
from chat_runtime.bus.inprocess import InProcessBus
from chat_runtime.bus.kafka import KafkaBus
from chat_runtime.bus.kafka_setup import KafkaSecurity, consumer_options
from chat_runtime.settings import ChatSettings, load_settings


@pytest.fixture(autouse=True)
def _data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CHAT_DATA_DIR", str(tmp_path))


def test_target_all_serves_every_service_under_its_prefix_on_one_app() -> None:
    app = build("all", load_settings(ChatSettings, bus="inprocess"))
    paths = set(app.openapi()["paths"])
    assert {"/api/auth/", "/api/rooms/about", "/api/messages/about", "/api/gateway/", "/healthz", "/readyz"} <= paths


def test_a_single_service_target_serves_only_that_service() -> None:
    app = build("rooms", load_settings(ChatSettings, bus="kafka"))
    paths = set(app.openapi()["paths"])
    assert "/api/rooms/about" in paths
    assert "/api/auth/" not in paths


def test_the_in_process_bus_is_refused_for_a_single_service() -> None:
    with pytest.raises(LauncherError, match="needs the Kafka bus"):
        make_bus(load_settings(ChatSettings, bus="inprocess"), "auth", CollectorRegistry())


def test_the_bus_follows_the_settings() -> None:
    assert isinstance(make_bus(load_settings(ChatSettings, bus="inprocess"), "all", CollectorRegistry()), InProcessBus)
    assert isinstance(make_bus(load_settings(ChatSettings, bus="kafka"), "gateway", CollectorRegistry()), KafkaBus)


def test_target_all_means_the_four_services() -> None:
    assert list(services_for("all")) == ["auth", "rooms", "messages", "gateway"]


def test_the_cli_explains_bad_settings_instead_of_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CHAT_BUS", "carrier-pigeon")
    assert main(["serve", "--target", "auth"]) == 2
    assert "CHAT_BUS" in capsys.readouterr().err


def test_all_in_one_answers_the_gateways_history_and_membership_questions_in_process() -> None:
    from chat_app.inprocess import InProcessHistory, InProcessRooms
    from chat_gateway.bootstrap import GatewayModule

    app = build("all", load_settings(ChatSettings, bus="inprocess"))
    (gateway,) = [m for m in app.state.modules if isinstance(m, GatewayModule)]
    assert isinstance(gateway.hub.history, InProcessHistory)
    assert isinstance(gateway.hub.rooms, InProcessRooms)


def test_a_gateway_alone_asks_over_http_and_loads_no_other_service() -> None:
    script = (
        "import sys\n"
        "from chat_app.compose import build\n"
        "from chat_runtime.settings import ChatSettings, load_settings\n"
        "from chat_gateway.adapters.history import HttpHistory\n"
        "from chat_gateway.adapters.rooms import HttpRooms\n"
        "app = build('gateway', load_settings(ChatSettings, bus='kafka'))\n"
        "(gateway,) = app.state.modules\n"
        "assert isinstance(gateway.hub.history, HttpHistory), gateway.hub.history\n"
        "assert isinstance(gateway.hub.rooms, HttpRooms), gateway.hub.rooms\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('chat_messages', 'chat_rooms', 'chat_auth'))\n"
        "assert not loaded, loaded\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr


def test_each_module_is_built_after_the_modules_it_uses_in_process() -> None:
    order = build_order(("gateway", "messages", "rooms", "auth"))
    assert order[0] == "auth"
    assert order[-1] == "gateway"
    assert set(order) == {"auth", "rooms", "messages", "gateway"}
    assert build_order(("gateway", "rooms")) == ["rooms", "gateway"]
    assert build_order(services_for("all")) == ["auth", "rooms", "messages", "gateway"]
    assert build_order(("gateway",)) == ["gateway"]


def test_every_module_uses_only_modules_the_table_declares() -> None:
    for spec in MODULES.values():
        assert set(spec.uses) <= set(MODULES)


def test_settings_the_launcher_gives_reach_the_service_and_the_environment_is_left_alone() -> None:
    from chat_messages.bootstrap import MessagesModule

    environment = dict(os.environ)
    url = "mongodb://127.0.0.1:1/?directConnection=true"
    app = build("all", load_settings(ChatSettings, bus="inprocess"), given={"messages": {"mongo_url": url}})
    (messages,) = [m for m in app.state.modules if isinstance(m, MessagesModule)]
    assert messages.settings.mongo_url == url
    assert dict(os.environ) == environment


def test_a_service_this_installation_lacks_is_refused_with_the_extra_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(compose, "find_spec", lambda name: None)
    with pytest.raises(LauncherError, match=re.escape("install chat-app[auth]")):
        build("auth", load_settings(ChatSettings, bus="kafka"))


def test_chat_up_without_the_development_servers_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delitem(sys.modules, "chat_app.embedded", raising=False)
    monkeypatch.setitem(sys.modules, "chat_localinfra", None)
    assert main(["up"]) == 2
    err = capsys.readouterr().err
    assert "chat-app[embedded]" in err
    assert "--external" in err


def test_the_settings_reach_the_bus_config(tmp_path: Path) -> None:
    settings = ChatSettings(
        data_dir=tmp_path,
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="chat",
        kafka_sasl_password=SecretStr("pw"),
        kafka_group_instance_id="messages-0",
        kafka_peer_address="10.1.2.3:9095",
        kafka_peer_eviction_ms=2500,
        kafka_linger_ms=3,
        kafka_fetch_max_wait_ms=500,
        kafka_commit_interval_ms=750,
        kafka_broadcast_fetch_max_wait_ms=900,
    )

    config = kafka_config(settings, client_id="chat-messages")

    assert config.security == KafkaSecurity(
        protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512", sasl_username="chat", sasl_password="pw"
    )
    assert config.group_instance_id == "messages-0"
    assert (config.peer_address, config.peer_eviction_ms, config.watches_peers) == ("10.1.2.3:9095", 2500, True)
    assert (config.linger_ms, config.fetch_max_wait_ms, config.commit_interval_ms) == (3, 500, 750)
    assert consumer_options(config, topic="t", group="g", start="earliest", broadcast=False)["fetch_max_wait_ms"] == 500
    assert consumer_options(config, topic="t", group="g", start="latest", broadcast=True)["fetch_max_wait_ms"] == 900
