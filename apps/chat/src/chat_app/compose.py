"""Build the modules a target names, on one bus (Loki's -target=all pattern).

A service's package is imported only when the target runs it: ``--target gateway`` does not load the auth
service's password hashing, SQLAlchemy or Alembic, which roughly halves a single service's start-up.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from graphlib import TopologicalSorter
from importlib.util import find_spec
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from chat_app.devmail import DevMailbox, DevMailer, mailbox_router
from chat_contracts.topics import TOPICS
from chat_runtime.app import build_app
from chat_runtime.bus.follow import TopicFollower, follower_for
from chat_runtime.bus.inprocess import InProcessBroker, InProcessBus
from chat_runtime.bus.kafka import KafkaBus
from chat_runtime.bus.kafka_setup import KafkaConfig, KafkaSecurity, ensure_topics
from chat_runtime.bus.metrics import BusMetrics
from chat_runtime.bus.port import Bus
from chat_runtime.module import ServiceModule
from chat_runtime.settings import ChatSettings, load_settings
from chat_runtime.tokens import CallableJwksSource, JwksSource

if TYPE_CHECKING:
    from chat_auth.bootstrap import AuthModule
    from chat_auth.service.context import AuthContext
    from chat_auth.service.keys import Withdrawal
    from chat_gateway.service.ports import History, Rooms
    from chat_messages.bootstrap import MessagesModule
    from chat_rooms.bootstrap import RoomsModule

Target = Literal["all", "auth", "rooms", "messages", "gateway"]
SERVICES: tuple[Target, ...] = ("auth", "rooms", "messages", "gateway")


class LauncherError(RuntimeError):
    """A combination of target and settings that cannot run."""


def services_for(target: Target) -> Sequence[Target]:
    """The services a target runs."""
    return SERVICES if target == "all" else (target,)


def make_bus(settings: ChatSettings, target: Target, registry: CollectorRegistry) -> Bus:
    """The in-process bus for the all-in-one mode, Kafka otherwise."""
    metrics = BusMetrics(registry)
    if settings.bus == "inprocess":
        if target != "all":
            raise LauncherError(
                f"--target {target} runs one service, which needs the Kafka bus (set CHAT_BUS=kafka); "
                "the in-process bus only connects services running in the same process (--target all)"
            )
        # Consumers get the published envelopes themselves: decoding them again would only cost CPU.
        return InProcessBus(InProcessBroker(roundtrip=False), metrics=metrics)
    return KafkaBus(kafka_config(settings, client_id=f"chat-{target}"), metrics=metrics)


def kafka_config(settings: ChatSettings, *, client_id: str) -> KafkaConfig:
    return KafkaConfig(
        bootstrap=settings.kafka_bootstrap,
        client_id=client_id,
        replication_factor=settings.kafka_replication_factor,
        topic_prefix=settings.kafka_topic_prefix,
        session_timeout_ms=settings.kafka_session_timeout_ms,
        # A member learns of a rebalance at its next heartbeat: a sixtieth of the session timeout (1/6 s by
        # default) keeps the pause small when a member dies or joins, for six small requests a second per consumer.
        heartbeat_interval_ms=max(100, settings.kafka_session_timeout_ms // 60),
        linger_ms=settings.kafka_linger_ms,
        fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms,
        broadcast_fetch_max_wait_ms=settings.kafka_broadcast_fetch_max_wait_ms,
        commit_interval_ms=settings.kafka_commit_interval_ms,
        group_instance_id=settings.kafka_group_instance_id,
        peer_address=settings.kafka_peer_address,
        peer_eviction_ms=settings.kafka_peer_eviction_ms,
        security=kafka_security(settings),
    )


def kafka_security(settings: ChatSettings) -> KafkaSecurity:
    """The Kafka security settings as the bus adapter takes them (validated together by the settings class)."""
    password = settings.kafka_sasl_password
    return KafkaSecurity(
        protocol=settings.kafka_security_protocol,
        sasl_mechanism=settings.kafka_sasl_mechanism,
        sasl_username=settings.kafka_sasl_username,
        sasl_password=password.get_secret_value() if password is not None else None,
        cafile=str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None,
        certfile=str(settings.kafka_ssl_certfile) if settings.kafka_ssl_certfile else None,
        keyfile=str(settings.kafka_ssl_keyfile) if settings.kafka_ssl_keyfile else None,
    )


def dev_mailbox_enabled(target: Target, settings: ChatSettings) -> bool:
    """Whether ``target`` keeps its emails in a mailbox page (``chat_app.devmail``): dev mode, with auth here."""
    return settings.mode == "dev" and "auth" in services_for(target)


ServiceSettings = Mapping[str, Mapping[str, Any]]
"""Settings a launcher gives services beyond their environment, by service then field (``chat up``'s database
URLs). The environment is never written: these go to the service's settings class as arguments."""

S = TypeVar("S", bound=ChatSettings)


@dataclass
class Wiring:
    """What building one module gets: the process's bus and metrics, the launcher's settings for the service, and
    the modules already built in this process, which it may use in-process instead of over HTTP."""

    target: Target
    bus: Bus
    registry: CollectorRegistry
    mailbox: DevMailbox | None
    given: ServiceSettings
    built: dict[Target, ServiceModule] = field(default_factory=dict)

    def settings(self, cls: type[S]) -> S:
        """``cls`` validated from the environment, with what the launcher gives its service on top."""
        return load_settings(cls, **self.given.get(cls.SERVICE, {}))

    @property
    def auth(self) -> AuthModule | None:
        return cast("AuthModule | None", self.built.get("auth"))

    @property
    def rooms(self) -> RoomsModule | None:
        return cast("RoomsModule | None", self.built.get("rooms"))

    @property
    def messages(self) -> MessagesModule | None:
        return cast("MessagesModule | None", self.built.get("messages"))

    def local_jwks(self) -> JwksSource | None:
        """With auth in this process, its keys read directly instead of over HTTP; None means over HTTP."""
        auth = self.auth
        if auth is None:
            return None
        from chat_auth.service import keys as auth_keys

        context = auth.context

        async def keys() -> Mapping[str, Any]:
            return await auth_keys.published_keys(context)

        return CallableJwksSource(keys)

    def follower(self) -> TopicFollower:
        """How verifiers read ``chat.users.events`` back: on Kafka by time; on the in-process bus, which forgets,
        the past comes from the auth module's outbox (decisions/0004)."""
        auth = self.auth
        return follower_for(self.bus, history=auth.published_since if auth is not None else None)


def _build_auth(wiring: Wiring) -> ServiceModule:
    """auth; in dev mode with a mailbox, its emails are kept for the mailbox page too."""
    from chat_auth.adapters.email import SmtpMailer
    from chat_auth.bootstrap import bootstrap
    from chat_auth.settings import AuthSettings

    settings = wiring.settings(AuthSettings)
    mailer: DevMailer | None = None
    if wiring.mailbox is not None and settings.mode == "dev":
        relay = SmtpMailer(settings) if settings.email_transport == "smtp" else None
        mailer = DevMailer(wiring.mailbox, relay=relay)
    return bootstrap(settings, bus=wiring.bus, registry=wiring.registry, mailer=mailer)


def _build_rooms(wiring: Wiring) -> ServiceModule:
    from chat_rooms.bootstrap import bootstrap
    from chat_rooms.settings import RoomsSettings

    return bootstrap(
        wiring.settings(RoomsSettings),
        bus=wiring.bus,
        registry=wiring.registry,
        jwks=wiring.local_jwks(),
        follower=wiring.follower(),
    )


def _build_messages(wiring: Wiring) -> ServiceModule:
    from chat_messages.bootstrap import bootstrap
    from chat_messages.settings import MessagesSettings

    return bootstrap(
        wiring.settings(MessagesSettings),
        bus=wiring.bus,
        registry=wiring.registry,
        jwks=wiring.local_jwks(),
        follower=wiring.follower(),
    )


def _in_process_answers(
    rooms: RoomsModule | None, messages: MessagesModule | None
) -> tuple[History | None, Rooms | None]:
    """The gateway's history and membership answers from the services in this process (None: over HTTP)."""
    if rooms is None and messages is None:
        return None, None  # a gateway alone: nothing of the other services is imported
    from chat_app.inprocess import InProcessHistory, InProcessRooms

    return (
        InProcessHistory(messages.context) if messages is not None else None,
        InProcessRooms(rooms.context) if rooms is not None else None,
    )


def _build_gateway(wiring: Wiring) -> ServiceModule:
    """The gateway; the services in this process answer it in-process, the others over HTTP (and proxied)."""
    from chat_gateway.bootstrap import bootstrap
    from chat_gateway.settings import GatewaySettings

    history, rooms = _in_process_answers(wiring.rooms, wiring.messages)
    try:
        return bootstrap(
            wiring.settings(GatewaySettings),
            bus=wiring.bus,
            jwks=wiring.local_jwks(),
            history=history,
            rooms=rooms,
            proxied=proxied_by(wiring.target),
            follower=wiring.follower(),
            registry=wiring.registry,
        )
    except ValueError as exc:
        raise LauncherError(f"invalid gateway settings: {exc}") from exc


@dataclass(frozen=True)
class ModuleSpec:
    """How to build one service's module, and the modules it uses in-process when they run in the same process
    (built first, so it finds them); without them it asks their services over HTTP."""

    build: Callable[[Wiring], ServiceModule]
    uses: tuple[Target, ...] = ()


MODULES: Mapping[Target, ModuleSpec] = {
    "auth": ModuleSpec(_build_auth),
    # auth's signing keys (JWKS) and its outbox's past session endings
    "rooms": ModuleSpec(_build_rooms, uses=("auth",)),
    "messages": ModuleSpec(_build_messages, uses=("auth",)),
    # plus history from messages and membership from rooms
    "gateway": ModuleSpec(_build_gateway, uses=("auth", "rooms", "messages")),
}


def build_order(services: Sequence[Target]) -> list[Target]:
    """``services`` with each after the modules it uses among them (``MODULES``); a cycle raises CycleError."""
    graph = {service: [used for used in MODULES[service].uses if used in services] for service in services}
    return list(TopologicalSorter(graph).static_order())


def require_installed(services: Sequence[str]) -> None:
    """Refuse, naming the extra to install, to run a service whose package this installation lacks (an image
    carries only its own service: deploy/docker/Dockerfile)."""
    for service in services:
        if find_spec(f"chat_{service}") is None:
            raise LauncherError(
                f"the {service} service is not installed here: install chat-app[{service}] (or chat-app[all])"
            )


def build_modules(
    target: Target,
    bus: Bus,
    registry: CollectorRegistry,
    *,
    mailbox: DevMailbox | None = None,
    given: ServiceSettings | None = None,
) -> list[ServiceModule]:
    """Bootstrap each service of ``target`` with its own validated settings (``given`` on top of the
    environment), in ``build_order``; auth's email goes to ``mailbox`` too when one is given and auth runs in dev
    mode."""
    services = services_for(target)
    require_installed(services)
    wiring = Wiring(target=target, bus=bus, registry=registry, mailbox=mailbox, given=given or {})
    for service in build_order(services):
        wiring.built[service] = MODULES[service].build(wiring)
    return list(wiring.built.values())


def proxied_by(target: Target) -> tuple[str, ...]:
    """The services whose ``/api/<service>/…`` the gateway of ``target`` forwards: those in other processes."""
    from chat_gateway.bootstrap import PROXIABLE

    here = services_for(target)
    return tuple(service for service in PROXIABLE if service not in here) if "gateway" in here else ()


def build(target: Target, settings: ChatSettings, *, given: ServiceSettings | None = None) -> FastAPI:
    """The HTTP app for ``target`` (its routes, health and lifespan)."""
    registry = CollectorRegistry()
    bus = make_bus(settings, target, registry)
    mailbox = DevMailbox() if dev_mailbox_enabled(target, settings) else None
    modules = build_modules(target, bus, registry, mailbox=mailbox, given=given)
    app = build_app(modules, bus=bus, registry=registry, title=f"chat ({target})")
    if mailbox is not None:
        app.include_router(mailbox_router(mailbox))
    app.state.modules = modules
    return app


def build_asgi(target: Target, settings: ChatSettings, *, given: ServiceSettings | None = None) -> Any:
    """What uvicorn serves: the HTTP app, with Socket.IO in front when the gateway is part of ``target``."""
    app = build(target, settings, given=given)
    if "gateway" in services_for(target):
        from chat_gateway.bootstrap import GatewayModule

        for module in app.state.modules:
            if isinstance(module, GatewayModule):
                return module.wrap(app)
    return app


async def create_topics(settings: ChatSettings) -> list[str]:
    """Create every registered topic and its dead-letter topic on Kafka."""
    return await ensure_topics(kafka_config(settings, client_id="chat-admin"), TOPICS.values())


@asynccontextmanager
async def _auth_context() -> AsyncIterator[AuthContext]:
    """The auth service's use-case context on its database, for operator commands (works while it runs)."""
    require_installed(("auth",))
    from chat_auth.adapters.email import ConsoleMailer
    from chat_auth.adapters.postgres.store import PostgresAuthStore
    from chat_auth.bootstrap import build_context
    from chat_auth.settings import AuthSettings
    from chat_runtime import postgres
    from chat_runtime.outbox import notify_relay

    settings = load_settings(AuthSettings)
    engine = postgres.async_engine(settings.database_url, pool_size=1)
    try:
        yield build_context(settings, store=PostgresAuthStore(engine), mailer=ConsoleMailer())
        # What the command committed to the outbox goes out now, not at the running relay's next poll (5 s).
        await notify_relay(engine, "auth")
    finally:
        await engine.dispose()


async def rotate_signing_key() -> str:
    """Publish a new signing key in the auth database (works while the service runs)."""
    from chat_auth.service import keys as auth_keys

    async with _auth_context() as context:
        return await auth_keys.rotate(context)


async def withdraw_signing_key(kid: str) -> Withdrawal | None:
    """Withdraw a leaked signing key at once (works while the service runs: the running relay is notified and
    announces it, and every verifier refuses its tokens); None when the auth database has no key ``kid``."""
    from chat_auth.service import keys as auth_keys

    async with _auth_context() as context:
        return await auth_keys.withdraw(context, kid)


async def set_account_disabled(identifier: str, *, disabled: bool) -> bool:
    """Disable an account (its sessions end everywhere: the running auth service's relay is notified and relays
    the event at once) or enable it again; False when no account has that email address or username."""
    from chat_auth.service import accounts

    async with _auth_context() as context:
        return await accounts.set_disabled(context, identifier=identifier, disabled=disabled) is not None
