"""How the product's Kafka clients are set up: the bus's settings (``KafkaConfig``, ``KafkaSecurity``), the
arguments each aiokafka client gets from them (connection, consumer, producer, admin), and the creation of the
registry's topics with their dead-letter topics (``ensure_topics``, run by ``chat create-topics`` and by a bus
that is allowed to). The bus itself is ``chat_runtime.bus.kafka``."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import structlog

from chat_contracts.spec import TopicSpec
from chat_contracts.topics import DLQ_PARTITIONS, DLQ_RETENTION_MS
from chat_runtime.bus.kafka_peers import CardAssignor, PeerCard
from chat_runtime.bus.port import Start
from chat_runtime.extras import missing_extra

try:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import KafkaError
    from aiokafka.helpers import create_ssl_context
except ImportError as missing:
    raise missing_extra("kafka", __name__, missing) from missing

log = structlog.get_logger("chat.bus.kafka")

TOPIC_ALREADY_EXISTS = 36


@dataclass(frozen=True, slots=True)
class KafkaSecurity:
    """How clients authenticate to the brokers and encrypt the connection (``security_protocol`` as Kafka names
    it); the defaults are a plain connection."""

    protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = field(default=None, repr=False)
    cafile: str | None = None
    certfile: str | None = None
    keyfile: str | None = None

    @property
    def tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    @property
    def sasl(self) -> bool:
        return self.protocol.startswith("SASL_")


@dataclass(frozen=True, slots=True)
class KafkaConfig:
    """Connection and group timing; the defaults suit a production cluster, tests shorten them."""

    bootstrap: str
    client_id: str = "chat"
    replication_factor: int = 1
    session_timeout_ms: int = 10_000
    heartbeat_interval_ms: int = 3_000
    max_poll_interval_ms: int = 300_000
    max_batch: int = 500
    poll_timeout_ms: int = 200
    fetch_max_wait_ms: int = 100
    """How long the broker holds a fetch that found nothing new (it answers at once when something arrives)."""
    broadcast_fetch_max_wait_ms: int = 500
    """The same for a broadcast reader, which joins no group: nothing it sends waits behind its held fetch for a
    rebalance, so it can ask less often."""
    commit_interval_ms: int = 200
    """How often at most a group member commits its handled offsets (0: after every batch); a rebalance and a stop
    commit at once."""
    linger_ms: int = 0
    """How long the producer waits for more records to share a request: a little latency for fewer requests."""
    topic_prefix: str = ""
    """Prepended to every topic name and consumer group on the broker (a shared cluster, or tests on private
    topics), so two deployments never share a group's offsets or rebalances; services keep using the registry's
    names."""
    security: KafkaSecurity = KafkaSecurity()
    group_instance_id: str | None = None
    """This process's lasting name in its consumer groups (static membership, KIP-345), or None for dynamic
    members. A restarted process that gives the same name takes its predecessor's place and partitions at once,
    instead of waiting for the dead member's session to time out and then rebalancing the group. A graceful stop
    leaves the groups (aiokafka_internals), so its partitions move in one rebalance; only those of a process that
    crashed and does not come back wait a session timeout. Two running processes must never share a name (the
    broker fences the older one)."""

    peer_address: str | None = None
    """Where this process's peers in its consumer groups reach it (``host:port``, e.g. the pod's IP and a port of
    its own): the bus listens there, and the peer watch (``chat_runtime.bus.kafka_peers``) removes a peer whose
    address stops answering, long before its session would time out. None: no listener, no watch."""
    peer_eviction_ms: int = 3_000
    """How long a peer's address must fail in a row before its members are removed from the group; the watch is
    off unless this is shorter than the session timeout."""
    peer_probe_interval_ms: int = 500
    """How often the watch describes the groups and connects to each peer (also each connection's time limit)."""

    @property
    def watches_peers(self) -> bool:
        return self.peer_address is not None and self.peer_eviction_ms < self.session_timeout_ms

    def physical(self, topic: str) -> str:
        return self.topic_prefix + topic

    def member_name(self, topic: str) -> str | None:
        """The static member name of this process's consumer of ``topic``: one process may have several consumers
        in one group (one per topic), and each needs its own."""
        return None if self.group_instance_id is None else f"{self.group_instance_id}.{topic}"


def connection_options(config: KafkaConfig) -> dict[str, Any]:
    """Where the brokers are and how to reach them: the arguments every client of the product shares."""
    security = config.security
    options: dict[str, Any] = {"bootstrap_servers": config.bootstrap, "security_protocol": security.protocol}
    if security.tls:
        options["ssl_context"] = create_ssl_context(
            cafile=security.cafile, certfile=security.certfile, keyfile=security.keyfile
        )
    if security.sasl:
        options |= {
            "sasl_mechanism": security.sasl_mechanism,
            "sasl_plain_username": security.sasl_username,
            "sasl_plain_password": security.sasl_password,
        }
    return options


def consumer_options(config: KafkaConfig, *, topic: str, group: str, start: Start, broadcast: bool) -> dict[str, Any]:
    """The arguments of the consumer of ``topic`` for ``group``; a broadcast reader joins no group. A group member
    of a process with a peer address tells the group where it answers."""
    strategy: dict[str, Any] = {}
    if config.peer_address is not None and not broadcast:
        card = PeerCard(address=config.peer_address, instance=config.member_name(topic))
        strategy["partition_assignment_strategy"] = (CardAssignor(card),)
    return {
        **strategy,
        **connection_options(config),
        "group_id": None if broadcast else config.topic_prefix + group,
        "group_instance_id": None if broadcast else config.member_name(topic),
        "client_id": f"{config.client_id}-{group}",
        "enable_auto_commit": False,
        "auto_offset_reset": start,
        "session_timeout_ms": config.session_timeout_ms,
        "heartbeat_interval_ms": config.heartbeat_interval_ms,
        "max_poll_interval_ms": config.max_poll_interval_ms,
        "fetch_max_wait_ms": config.broadcast_fetch_max_wait_ms if broadcast else config.fetch_max_wait_ms,
        "isolation_level": "read_committed",
    }


def producer_options(config: KafkaConfig) -> dict[str, Any]:
    """The arguments of the bus's producer: idempotent, acknowledged by every in-sync replica."""
    return {
        **connection_options(config),
        "client_id": f"{config.client_id}-producer",
        "enable_idempotence": True,
        "acks": "all",
        "linger_ms": config.linger_ms,
    }


def admin_options(config: KafkaConfig) -> dict[str, Any]:
    """The arguments of the admin client that creates topics."""
    return {**connection_options(config), "client_id": f"{config.client_id}-admin"}


async def ensure_topics(config: KafkaConfig, specs: Iterable[TopicSpec]) -> list[str]:
    """Create each topic and its dead-letter topic if missing; returns the names created."""
    wanted: list[NewTopic] = []
    for spec in specs:
        configs: dict[str, str] = {"cleanup.policy": spec.cleanup_policy}
        if spec.retention_ms is not None:
            configs["retention.ms"] = str(spec.retention_ms)
        wanted.append(
            NewTopic(config.physical(spec.name), spec.partitions, config.replication_factor, topic_configs=configs)
        )
        wanted.append(
            NewTopic(
                config.physical(spec.dlq),
                DLQ_PARTITIONS,
                config.replication_factor,
                topic_configs={"cleanup.policy": "delete", "retention.ms": str(DLQ_RETENTION_MS)},
            )
        )
    admin = AIOKafkaAdminClient(**admin_options(config))
    await admin.start()
    created: list[str] = []
    try:
        response: Any = await admin.create_topics(wanted)
        for name, code, *rest in response.topic_errors:
            if code == 0:
                created.append(name)
            elif code != TOPIC_ALREADY_EXISTS:
                raise KafkaError(f"creating topic {name} failed: error {code} {rest[0] if rest else ''}")
    finally:
        await admin.close()
    if created:
        log.info("bus.topics_created", topics=created)
    return created
