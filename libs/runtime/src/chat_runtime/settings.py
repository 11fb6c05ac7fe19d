"""Settings base: a per-service prefix (``CHAT_AUTH_…``) over a shared one (``CHAT_…``).

Every field can be given as ``CHAT_<SERVICE>_<FIELD>`` or, for all services at once, ``CHAT_<FIELD>``; the
service-prefixed variable wins. Secrets are ``SecretStr`` fields: in dev mode a missing one is generated once
and kept under the data folder; outside dev a missing, short or well-known value stops the start-up.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any, ClassVar, Literal, Self, TypeVar

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

SHARED_PREFIX = "CHAT_"
MIN_SECRET_LENGTH = 32
_WELL_KNOWN_SECRETS = frozenset(
    {"", "secret", "changeme", "change-me", "password", "dev", "development", "test", "insecure"}
)

Mode = Literal["dev", "test", "prod"]
BusKind = Literal["inprocess", "kafka"]
KafkaSecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
KafkaSaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


class SettingsError(RuntimeError):
    """Settings that do not validate; the message lists each problem by environment variable."""


class ChatSettings(BaseSettings):
    """Fields every service has. Subclasses set ``SERVICE`` and ``model_config['env_prefix']``."""

    SERVICE: ClassVar[str] = "chat"
    GENERATED_SECRETS: ClassVar[tuple[str, ...]] = ()
    """``SecretStr | None`` fields that are required outside dev and generated once in dev."""

    model_config = SettingsConfigDict(
        env_prefix=SHARED_PREFIX, extra="ignore", validate_default=True, case_sensitive=False
    )

    mode: Mode = "dev"
    data_dir: Path = Path(".data")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["auto", "json", "console"] = "auto"
    bus: BusKind = "inprocess"
    kafka_bootstrap: str = "127.0.0.1:19092"
    kafka_replication_factor: int = Field(default=1, ge=1, le=5)
    kafka_topic_prefix: str = Field(default="", pattern=r"^[A-Za-z0-9._-]{0,100}$")
    kafka_session_timeout_ms: int = Field(default=10_000, ge=1_000, le=300_000)
    """How long a consumer-group member may go unheard before the broker gives its partitions to the others: the
    longest that a crashed process's partitions (its rooms, for the messages service) wait. Shorter recovers
    sooner but takes a member that is slow for a moment (a long GC pause, a saturated CPU) for dead and
    rebalances the group. Heartbeats are sent every sixtieth of it (at least 0.1 s): the others learn of a
    rebalance at their next one. A member that dies for good stops its partitions for the session timeout plus one
    rebalance (0.3–0.5 s measured), unless its peers remove it sooner (``CHAT_KAFKA_PEER_ADDRESS``)."""
    kafka_group_instance_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._-]{1,100}$")
    """This process's lasting name in its consumer groups (static membership), e.g. the pod name (what the
    Kubernetes manifests set for rooms and messages). A graceful stop (SIGTERM: a rollout, a scale-down) leaves the
    groups at once, so its partitions move in one rebalance. After a crash, a process restarted under the same name
    (the container in the same pod) takes its partitions back without a rebalance and without waiting for the
    session timeout; a crashed process that never comes back leaves them idle for one session timeout (or until its
    peers remove it, with ``CHAT_KAFKA_PEER_ADDRESS``). Unset (default): dynamic membership. Each running process
    needs its own name."""
    kafka_peer_address: str | None = Field(
        default=None, pattern=r"^(\[[0-9A-Fa-f:.]+\]|[0-9A-Fa-f:.]+|[A-Za-z0-9.-]+):[0-9]{1,5}$"
    )
    """Where the other instances of this service reach this process (``host:port``: the pod's IP and a port of its
    own; the Kubernetes manifests set ``$(POD_IP):9095`` for rooms and messages; an IPv6 host with or without
    brackets). The process listens there (it accepts connections and closes them), and watches its peers'
    addresses: a peer whose address has not answered for ``CHAT_KAFKA_PEER_EVICTION_MS`` is removed from the
    consumer groups, so its partitions move long before its session times out. Unset (default): no listener, and a
    crashed peer's partitions wait for its session timeout."""
    kafka_peer_eviction_ms: int = Field(default=3_000, ge=500, le=300_000)
    """How long a peer's address must fail in a row before its members are removed from the groups; the watch is
    off unless this is shorter than the session timeout. Longer than a crashed container takes to start again in
    its pod, so such a restart keeps its partitions without a rebalance."""
    kafka_security_protocol: KafkaSecurityProtocol = "PLAINTEXT"
    """How every Kafka client of the product talks to the brokers: PLAINTEXT, SSL (TLS), SASL_PLAINTEXT (sign-in
    without encryption: a private network only) or SASL_SSL (sign-in over TLS: what managed clusters ask for)."""
    kafka_sasl_mechanism: KafkaSaslMechanism | None = None
    """With SASL_SSL or SASL_PLAINTEXT: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (as the cluster's listener says)."""
    kafka_sasl_username: str | None = Field(default=None, min_length=1, max_length=500)
    """The SASL user (or the provider's API key)."""
    kafka_sasl_password: SecretStr | None = None
    """The SASL user's password (or the provider's API secret); keep it in a Secret, never in a ConfigMap."""
    kafka_ssl_cafile: Path | None = None
    """With SSL or SASL_SSL: a PEM file of the certificate authorities to trust for the brokers' certificates
    (unset: the system's)."""
    kafka_ssl_certfile: Path | None = None
    """With SSL or SASL_SSL: this client's certificate (PEM) for clusters that authenticate clients by TLS
    (mutual TLS), with its key below."""
    kafka_ssl_keyfile: Path | None = None
    """The private key (PEM, unencrypted) of that client certificate."""
    kafka_linger_ms: int = Field(default=0, ge=0, le=1_000)
    """How long a producer waits for more records to share a request with. Each hop of a message waits up to this
    long when the bus is quiet; on a busy bus the records sent while a request is in flight share the next one
    anyway, so 0 costs few requests. Measured in split mode: idle send → receive p50 6.9–8.5 ms at 0 against
    11.9–13.0 ms at 2."""
    kafka_fetch_max_wait_ms: int = Field(default=100, ge=10, le=5_000)
    """How long the broker holds a consumer-group member's fetch that found nothing new (broadcast readers: below).
    A fetch is answered as soon as a record arrives, so a moving bus never waits for it; it is how often each idle
    consumer asks again. Longer costs an idle deployment less (split mode, measured: its services and the broker
    used 20.5 % of a core at 100 and 12.2 % at 500, with throughput unchanged), but the broker answers a
    connection's requests in order, so what a consumer asks behind a held fetch waits for it, such as the offsets
    of the partitions it takes over in a rebalance."""
    kafka_broadcast_fetch_max_wait_ms: int = Field(default=500, ge=10, le=5_000)
    """The same for a broadcast reader (every instance reads everything: the gateways' fan-out, the messages
    service's view of room changes), which joins no consumer group. A fetch is still answered as soon as a record
    arrives; the broker answers a connection's requests in order, but such a reader sends nothing that a rebalance
    waits for, so it can ask less often."""
    kafka_commit_interval_ms: int = Field(default=200, ge=0, le=10_000)
    """How often at most a consumer-group member commits the offsets it has handled (0: after every batch). A
    rebalance and a stop commit at once, so a clean hand-over re-delivers nothing; a member that crashes
    re-delivers up to this long's records, which the handlers take as the duplicates they are. Fewer commits are
    fewer requests for the member and the broker: at 100 messages a second in split mode the messages service sent
    0.67 commits per message after every batch."""
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8000, ge=0, le=65535)
    ws_compression: bool = False
    """Offer permessage-deflate to websocket clients. Off by default, as in Socket.IO's own server: compressing
    each recipient's copy of a broadcast costs more CPU than small chat frames save, and the compression state
    roughly doubles a connection's memory."""
    outbox_poll_seconds: float = Field(default=5.0, gt=0, le=300)
    """auth and rooms: how often their outbox relay looks for committed events nobody woke it for (a commit wakes
    it at once); also how often a standby relay tries to take over."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        shared = EnvSettingsSource(settings_cls, env_prefix=SHARED_PREFIX, case_sensitive=False)
        return init_settings, env_settings, shared, file_secret_settings

    @model_validator(mode="after")
    def _check_kafka_security(self) -> Self:
        for problem in kafka_security_problems(self):
            raise ValueError(problem)
        return self

    @model_validator(mode="after")
    def _check_peer_address(self) -> Self:
        if self.kafka_peer_address is not None and not 0 < int(self.kafka_peer_address.rpartition(":")[2]) < 65536:
            raise ValueError(f"CHAT_KAFKA_PEER_ADDRESS: the port of {self.kafka_peer_address} is not 1-65535")
        return self

    @model_validator(mode="after")
    def _check_secrets(self) -> Self:
        for name, value in self._secret_fields().items():
            if value is None:
                if self.mode == "prod":
                    raise ValueError(f"{name}: required outside dev mode")
                setattr(self, name, SecretStr(_dev_secret(self.data_dir, f"{self.SERVICE}.{name}")))
                continue
            if self.mode == "prod" and not is_strong_secret(value.get_secret_value()):
                raise ValueError(
                    f"{name}: a default or weak secret is refused outside dev mode "
                    f"(need {MIN_SECRET_LENGTH}+ random characters)"
                )
        return self

    def _secret_fields(self) -> dict[str, SecretStr | None]:
        """The secrets this service cannot run without (``GENERATED_SECRETS``), by field name."""
        return {name: getattr(self, name) for name in self.GENERATED_SECRETS}

    def env_name(self, field: str) -> str:
        """The service-prefixed environment variable for ``field``."""
        prefix = str(self.model_config.get("env_prefix", SHARED_PREFIX))
        return f"{prefix}{field}".upper()


def kafka_security_problems(settings: ChatSettings) -> list[str]:
    """What does not fit together in the Kafka security settings, each naming the variables to change."""
    protocol = settings.kafka_security_protocol
    sasl = protocol.startswith("SASL_")
    tls = protocol in ("SSL", "SASL_SSL")
    problems = []
    if sasl:
        missing = [
            name
            for name, value in (
                ("CHAT_KAFKA_SASL_MECHANISM", settings.kafka_sasl_mechanism),
                ("CHAT_KAFKA_SASL_USERNAME", settings.kafka_sasl_username),
                ("CHAT_KAFKA_SASL_PASSWORD", settings.kafka_sasl_password),
            )
            if not value
        ]
        if missing:
            problems.append(f"CHAT_KAFKA_SECURITY_PROTOCOL={protocol} needs {', '.join(missing)}")
    else:
        given = [
            name
            for name, value in (
                ("CHAT_KAFKA_SASL_MECHANISM", settings.kafka_sasl_mechanism),
                ("CHAT_KAFKA_SASL_USERNAME", settings.kafka_sasl_username),
                ("CHAT_KAFKA_SASL_PASSWORD", settings.kafka_sasl_password),
            )
            if value
        ]
        if given:
            problems.append(
                f"{', '.join(given)} set but CHAT_KAFKA_SECURITY_PROTOCOL={protocol} does not sign in: "
                "use SASL_SSL (or SASL_PLAINTEXT on a private network)"
            )
    files = {
        "CHAT_KAFKA_SSL_CAFILE": settings.kafka_ssl_cafile,
        "CHAT_KAFKA_SSL_CERTFILE": settings.kafka_ssl_certfile,
        "CHAT_KAFKA_SSL_KEYFILE": settings.kafka_ssl_keyfile,
    }
    given_files = [name for name, path in files.items() if path is not None]
    if given_files and not tls:
        problems.append(
            f"{', '.join(given_files)} set but CHAT_KAFKA_SECURITY_PROTOCOL={protocol} uses no TLS: use SSL or SASL_SSL"
        )
    if (settings.kafka_ssl_certfile is None) != (settings.kafka_ssl_keyfile is None):
        problems.append(
            "CHAT_KAFKA_SSL_CERTFILE and CHAT_KAFKA_SSL_KEYFILE go together (a client certificate and its key)"
        )
    problems += [f"{name}: no readable file at {path}" for name, path in files.items() if path and not _readable(path)]
    return problems


def _readable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.R_OK)


def is_strong_secret(value: str) -> bool:
    """Long enough and not a well-known placeholder."""
    return (
        len(value) >= MIN_SECRET_LENGTH
        and value.lower() not in _WELL_KNOWN_SECRETS
        and not (value.lower().startswith(("dev-", "changeme", "insecure")))
    )


def _dev_secret(data_dir: Path, name: str) -> str:
    """A random secret generated on first use and kept in ``data_dir/dev-secrets.json`` (mode 0600)."""
    path = data_dir / "dev-secrets.json"
    stored: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    if name not in stored:
        stored[name] = secrets.token_urlsafe(48)
        data_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(stored, handle, indent=2, sort_keys=True)
        tmp.replace(path)
    return stored[name]


S = TypeVar("S", bound=ChatSettings)


def load_settings(cls: type[S], **overrides: Any) -> S:
    """Validate settings at start-up; raise SettingsError naming each bad environment variable."""
    try:
        return cls(**overrides)
    except ValidationError as exc:
        prefix = str(cls.model_config.get("env_prefix", SHARED_PREFIX)).upper()
        lines = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"])
            where = f"{prefix}{field.upper()} (or {SHARED_PREFIX}{field.upper()})" if field else "settings"
            lines.append(f"  {where}: {err['msg']}")
        raise SettingsError(f"invalid {cls.SERVICE} settings:\n" + "\n".join(lines)) from None
