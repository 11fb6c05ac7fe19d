"""The product's Kafka clients on a broker that requires SASL (PLAIN over SASL_PLAINTEXT), started by this test from
the shared local broker's jars on its own ports: `chat create-topics` creates the topics signed in, the bus
publishes and a consumer group receives, and a wrong password or no sign-in at all is refused."""

from __future__ import annotations

import asyncio
import base64
import secrets
import subprocess
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from pydantic import SecretStr

from chat_app.compose import create_topics, kafka_config
from chat_contracts import rooms as rooms_ev
from chat_contracts.envelope import Envelope
from chat_contracts.topics import ROOMS_EVENTS, TOPICS
from chat_localinfra import InfraConfig
from chat_localinfra.kafka import KafkaServer, find_java, render_properties, server_properties
from chat_runtime.bus.kafka import KafkaBus
from chat_runtime.bus.kafka_setup import KafkaConfig, admin_options
from chat_runtime.settings import ChatSettings

from .product import free_port

USER, PASSWORD = "chat", "chat-" + secrets.token_hex(8)
START_TIMEOUT_SECONDS = 120.0


@dataclass(frozen=True)
class SaslBroker:
    bootstrap: str
    log: Path


def _properties(*, port: int, controller_port: int, home: Path) -> dict[str, str]:
    """The shared broker's configuration with its client listener requiring SASL PLAIN (broker-to-broker too)."""
    jaas = (
        'org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" '
        f'password="admin-secret" user_admin="admin-secret" user_{USER}="{PASSWORD}";'
    )
    return {
        **server_properties(port=port, controller_port=controller_port, log_dir=home / "data"),
        "listeners": f"SASL_PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
        "advertised.listeners": f"SASL_PLAINTEXT://127.0.0.1:{port}",
        "listener.security.protocol.map": "SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT",
        "inter.broker.listener.name": "SASL_PLAINTEXT",
        "sasl.enabled.mechanisms": "PLAIN",
        "sasl.mechanism.inter.broker.protocol": "PLAIN",
        "listener.name.sasl_plaintext.plain.sasl.jaas.config": jaas,
    }


def _settings(bootstrap: str, *, password: str = PASSWORD, prefix: str = "") -> ChatSettings:
    return ChatSettings(
        bus="kafka",
        kafka_bootstrap=bootstrap,
        kafka_topic_prefix=prefix,
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_mechanism="PLAIN",
        kafka_sasl_username=USER,
        kafka_sasl_password=SecretStr(password),
    )


async def _answers(config: KafkaConfig) -> bool:
    admin = AIOKafkaAdminClient(**admin_options(config), request_timeout_ms=3000)
    try:
        await admin.start()
        await admin.list_topics()
    except KafkaError:
        return False
    finally:
        await admin.close()
    return True


@pytest.fixture
async def sasl_broker(tmp_path: Path, kafka_bootstrap: str) -> AsyncIterator[SaslBroker]:
    # kafka_bootstrap: the shared broker is running, so its jars are on this machine.
    server = KafkaServer(InfraConfig.from_env())
    classpath = str(server.libs_dir / "*")
    java, log4j = find_java(), f"-Dlog4j2.configurationFile={server.log4j_config}"
    port, controller_port = free_port(), free_port()
    properties = tmp_path / "server.properties"
    properties.write_text(render_properties(_properties(port=port, controller_port=controller_port, home=tmp_path)))
    cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    # One id in 64 starts with "-": given as a separate argument, the StorageTool reads it as an option and stops.
    format_storage = [java, log4j, "-cp", classpath, "kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}"]
    await asyncio.to_thread(
        subprocess.run, [*format_storage, "-c", str(properties)], check=True, capture_output=True, timeout=120
    )
    log = tmp_path / "kafka.log"
    with log.open("wb") as out:
        broker = subprocess.Popen(  # noqa: ASYNC220 - a fork; readiness is then awaited over the network
            [java, "-Xms256m", "-Xmx512m", log4j, "-cp", classpath, "kafka.Kafka", str(properties)],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    bootstrap = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not await _answers(kafka_config(_settings(bootstrap), client_id="sasl-probe")):
            if broker.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the SASL broker did not start:\n{log.read_text()[-3000:]}", pytrace=False)
            await asyncio.sleep(0.5)
        yield SaslBroker(bootstrap=bootstrap, log=log)
    finally:
        broker.terminate()
        try:
            await asyncio.to_thread(broker.wait, 30)
        except subprocess.TimeoutExpired:
            broker.kill()
            await asyncio.to_thread(broker.wait)


async def test_signed_in_clients_create_topics_publish_and_consume(sasl_broker: SaslBroker) -> None:
    settings = _settings(sasl_broker.bootstrap, prefix="sasl.")
    created = await create_topics(settings)
    assert "sasl.chat.rooms.events" in created
    assert len(created) == 2 * len(TOPICS)

    bus = KafkaBus(kafka_config(settings, client_id="sasl-test"))
    received: asyncio.Queue[Envelope] = asyncio.Queue()
    room = uuid.uuid4()
    try:
        await bus.subscribe(ROOMS_EVENTS, group="sasl-readers", handler=received.put)
        sent = await bus.publish(
            ROOMS_EVENTS,
            rooms_ev.RoomCreated(
                room_id=room,
                room_version=1,
                kind="public",
                name="signed in",
                created_by=uuid.uuid4(),
                occurred_at=datetime.now(UTC),
            ),
            source="rooms",
        )
        async with asyncio.timeout(30):
            got = await received.get()
    finally:
        await bus.stop()
    assert got.id == sent.id
    assert isinstance(got.data, rooms_ev.RoomCreated)
    assert got.data.room_id == room


async def test_a_wrong_password_or_no_sign_in_is_refused(sasl_broker: SaslBroker) -> None:
    wrong = kafka_config(_settings(sasl_broker.bootstrap, password="not-the-password"), client_id="sasl-wrong")
    anonymous = KafkaConfig(bootstrap=sasl_broker.bootstrap, client_id="sasl-anonymous")

    assert not await _answers(wrong)
    assert not await _answers(anonymous)
    assert await _answers(kafka_config(_settings(sasl_broker.bootstrap), client_id="sasl-right"))
