"""The same three servers as Docker containers, via testcontainers (used when a Docker engine answers).

testcontainers is a development dependency (root dev group), imported only when a container is started.
"""

from __future__ import annotations

import secrets
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from chat_localinfra.config import Service
from chat_localinfra.errors import InfraError
from chat_localinfra.probes import probe_kafka, probe_mongo, wait_until_ready

POSTGRES_IMAGE = "postgres:18"
# Same Kafka version as deploy/kafka/pom.xml and docker-compose.yml.
KAFKA_IMAGE = "apache/kafka:4.2.0"
MONGO_IMAGE = "mongo:8"
START_TIMEOUT = 180.0

_KAFKA_START_SCRIPT = "/tmp/chat-kafka-start.sh"  # noqa: S108 - a path inside the container


@dataclass
class StartedContainer:
    """A running container and the address the tests use."""

    service: Service
    url: str
    container: Any

    def stop(self) -> None:
        with _tolerate_library_deprecations():
            self.container.stop()


def start_container(service: Service) -> StartedContainer:
    """Start `service`'s container and wait until a real client gets an answer."""
    starters: dict[Service, Callable[[], StartedContainer]] = {
        "postgres": _start_postgres,
        "kafka": _start_kafka,
        "mongo": _start_mongo,
    }
    with _tolerate_library_deprecations():
        return starters[service]()


def _start_postgres() -> StartedContainer:
    from testcontainers.community.postgres import PostgresContainer

    container = PostgresContainer(POSTGRES_IMAGE, driver=None)
    container.start()
    return StartedContainer("postgres", container.get_connection_url(driver=None), container)


def _start_kafka() -> StartedContainer:
    # testcontainers' KafkaContainer drives Confluent's image; the Apache image is configured by KAFKA_* env
    # vars instead. The advertised address needs the mapped host port, known only after the container
    # starts, so the container waits for a start script that we copy in once we know it.
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.wait_strategies import LogMessageWaitStrategy

    container = (
        DockerContainer(KAFKA_IMAGE)
        .with_exposed_ports(9092)
        .with_envs(
            CLUSTER_ID=_kafka_cluster_id(),
            KAFKA_NODE_ID="1",
            KAFKA_PROCESS_ROLES="broker,controller",
            KAFKA_LISTENERS="PLAINTEXT://0.0.0.0:9092,BROKER://0.0.0.0:9093,CONTROLLER://0.0.0.0:9094",
            KAFKA_LISTENER_SECURITY_PROTOCOL_MAP="PLAINTEXT:PLAINTEXT,BROKER:PLAINTEXT,CONTROLLER:PLAINTEXT",
            KAFKA_INTER_BROKER_LISTENER_NAME="BROKER",
            KAFKA_CONTROLLER_LISTENER_NAMES="CONTROLLER",
            KAFKA_CONTROLLER_QUORUM_VOTERS="1@localhost:9094",
            KAFKA_OFFSETS_TOPIC_NUM_PARTITIONS="1",
            KAFKA_TRANSACTION_STATE_LOG_NUM_PARTITIONS="1",
            KAFKA_SHARE_COORDINATOR_STATE_TOPIC_NUM_PARTITIONS="1",
            KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR="1",
            KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR="1",
            KAFKA_TRANSACTION_STATE_LOG_MIN_ISR="1",
            KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR="1",
            KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR="1",
            KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS="0",
            KAFKA_GROUP_MIN_SESSION_TIMEOUT_MS="1000",
            KAFKA_GROUP_CONSUMER_MIN_SESSION_TIMEOUT_MS="1000",
            KAFKA_GROUP_CONSUMER_MIN_HEARTBEAT_INTERVAL_MS="500",
            KAFKA_AUTO_CREATE_TOPICS_ENABLE="false",
            KAFKA_NUM_PARTITIONS="3",
        )
        .with_command(
            [
                "bash",
                "-c",
                f"while [ ! -f {_KAFKA_START_SCRIPT} ]; do sleep 0.1; done; exec bash {_KAFKA_START_SCRIPT}",
            ]
        )
    )
    container.start()
    try:
        host = container.get_container_host_ip()
        port = int(container.get_exposed_port(9092))
        bootstrap = f"{host}:{port}"
        script = (
            "#!/bin/bash\n"
            f"export KAFKA_ADVERTISED_LISTENERS=PLAINTEXT://{bootstrap},BROKER://localhost:9093\n"
            "exec /etc/kafka/docker/run\n"
        )
        container.copy_into_container(script.encode(), _KAFKA_START_SCRIPT, 0o755)
        started = LogMessageWaitStrategy("Kafka Server started").with_startup_timeout(int(START_TIMEOUT))
        started.wait_until_ready(container)
        wait_until_ready(
            lambda: probe_kafka(bootstrap, timeout=5.0), what=f"Kafka container at {bootstrap}", timeout=60.0
        )
    except BaseException:
        container.stop()
        raise
    return StartedContainer("kafka", bootstrap, container)


def _start_mongo() -> StartedContainer:
    # A single-node replica set rather than testcontainers' standalone MongoDbContainer, so transactions and
    # change streams work exactly as on the native SecantusDB server (which advertises a replica set too).
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.wait_strategies import LogMessageWaitStrategy

    container = (
        DockerContainer(MONGO_IMAGE)
        .with_exposed_ports(27017)
        .with_command(["mongod", "--replSet", "rs0", "--bind_ip_all"])
        .waiting_for(LogMessageWaitStrategy("Waiting for connections").with_startup_timeout(int(START_TIMEOUT)))
    )
    container.start()
    try:
        initiate = "rs.initiate({_id: 'rs0', members: [{_id: 0, host: 'localhost:27017'}]})"
        result = container.exec(["mongosh", "--quiet", "--eval", initiate])
        if result.exit_code != 0:
            raise InfraError(f"rs.initiate failed in the mongo container: {result.output!r}")
        url = (
            f"mongodb://{container.get_container_host_ip()}:{container.get_exposed_port(27017)}/?directConnection=true"
        )

        wait_until_ready(lambda: probe_mongo(url, timeout=2.0), what=f"mongo container at {url}", timeout=60.0)
    except BaseException:
        container.stop()
        raise
    return StartedContainer("mongo", url, container)


def _kafka_cluster_id() -> str:
    # Kafka's Uuid text form: 16 random bytes, URL-safe base64 without padding; never starting with "-",
    # which the storage tool's command line would read as an option.
    while True:
        candidate = secrets.token_urlsafe(16)
        if not candidate.startswith("-"):
            return candidate


@contextmanager
def _tolerate_library_deprecations() -> Iterator[None]:
    # testcontainers and docker-py announce their own API changes as DeprecationWarnings; under
    # filterwarnings=error those would fail every integration test on machines with Docker.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"(testcontainers|docker)(\.|$)")
        yield
