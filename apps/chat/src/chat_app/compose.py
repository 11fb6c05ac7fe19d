"""Build the modules a target names, on one bus (Loki's -target=all pattern).

A service's package is imported only when the target runs it: ``--target gateway`` does not load the auth
service's password hashing, SQLAlchemy or Alembic, which roughly halves a single service's start-up.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Literal

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from chat_app.devmail import DevMailbox, DevMailer, mailbox_router
from chat_contracts.topics import TOPICS
from chat_runtime.app import build_app
from chat_runtime.bus.follow import TopicFollower, follower_for
from chat_runtime.bus.inprocess import InProcessBroker, InProcessBus
from chat_runtime.bus.kafka import KafkaBus, KafkaConfig, ensure_topics
from chat_runtime.bus.metrics import BusMetrics
from chat_runtime.bus.port import Bus
from chat_runtime.module import ServiceModule
from chat_runtime.settings import ChatSettings, load_settings
from chat_runtime.tokens import CallableJwksSource, JwksSource

if TYPE_CHECKING:
    from chat_auth.bootstrap import AuthModule
    from chat_auth.service.context import AuthContext
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
        heartbeat_interval_ms=max(500, settings.kafka_session_timeout_ms // 5),
        linger_ms=settings.kafka_linger_ms,
    )


def dev_mailbox_enabled(target: Target, settings: ChatSettings) -> bool:
    """Whether ``target`` keeps its emails in a mailbox page (``chat_app.devmail``): dev mode, with auth here."""
    return settings.mode == "dev" and "auth" in services_for(target)


def build_modules(
    target: Target, bus: Bus, registry: CollectorRegistry, *, mailbox: DevMailbox | None = None
) -> list[ServiceModule]:
    """Bootstrap each service of ``target`` with its own validated settings; auth's email goes to ``mailbox``
    too when one is given and auth runs in dev mode."""
    modules: list[ServiceModule] = []
    auth: AuthModule | None = None
    rooms: RoomsModule | None = None
    messages: MessagesModule | None = None
    for service in services_for(target):
        if service == "auth":
            from chat_auth.adapters.email import SmtpMailer
            from chat_auth.bootstrap import bootstrap as bootstrap_auth
            from chat_auth.settings import AuthSettings

            auth_settings = load_settings(AuthSettings)
            mailer: DevMailer | None = None
            if mailbox is not None and auth_settings.mode == "dev":
                relay = SmtpMailer(auth_settings) if auth_settings.email_transport == "smtp" else None
                mailer = DevMailer(mailbox, relay=relay)
            auth = bootstrap_auth(auth_settings, bus=bus, registry=registry, mailer=mailer)
            modules.append(auth)
        elif service == "rooms":
            from chat_rooms.bootstrap import bootstrap as bootstrap_rooms
            from chat_rooms.settings import RoomsSettings

            rooms = bootstrap_rooms(
                load_settings(RoomsSettings),
                bus=bus,
                registry=registry,
                jwks=_local_jwks(auth),
                follower=_follower(bus, auth),
            )
            modules.append(rooms)
        elif service == "messages":
            from chat_messages.bootstrap import bootstrap as bootstrap_messages
            from chat_messages.settings import MessagesSettings

            messages = bootstrap_messages(
                load_settings(MessagesSettings), bus=bus, jwks=_local_jwks(auth), follower=_follower(bus, auth)
            )
            modules.append(messages)
        elif service == "gateway":
            from chat_gateway.bootstrap import bootstrap as bootstrap_gateway
            from chat_gateway.settings import GatewaySettings

            history, rooms_answers = _in_process_answers(rooms, messages)
            try:
                # The services in this process are asked in-process; the others over HTTP (and proxied).
                gateway = bootstrap_gateway(
                    load_settings(GatewaySettings),
                    bus=bus,
                    jwks=_local_jwks(auth),
                    history=history,
                    rooms=rooms_answers,
                    proxied=proxied_by(target),
                    follower=_follower(bus, auth),
                )
            except ValueError as exc:
                raise LauncherError(f"invalid gateway settings: {exc}") from exc
            modules.append(gateway)
    return modules


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


def proxied_by(target: Target) -> tuple[str, ...]:
    """The services whose ``/api/<service>/…`` the gateway of ``target`` forwards: those in other processes."""
    from chat_gateway.bootstrap import PROXIABLE

    here = services_for(target)
    return tuple(service for service in PROXIABLE if service not in here) if "gateway" in here else ()


def _local_jwks(auth: AuthModule | None) -> JwksSource | None:
    """With auth in the same process, read its keys directly instead of over HTTP; None means over HTTP."""
    if auth is None:
        return None
    from chat_auth.service import keys as auth_keys

    context = auth.context

    async def keys() -> Mapping[str, Any]:
        return await auth_keys.published_keys(context)

    return CallableJwksSource(keys)


def _follower(bus: Bus, auth: AuthModule | None) -> TopicFollower:
    """How verifiers read ``chat.users.events`` back: on Kafka by time; on the in-process bus, which forgets, the
    past comes from the auth module's outbox (decisions/0004)."""
    return follower_for(bus, history=auth.published_since if auth is not None else None)


def build(target: Target, settings: ChatSettings) -> FastAPI:
    """The HTTP app for ``target`` (its routes, health and lifespan)."""
    registry = CollectorRegistry()
    bus = make_bus(settings, target, registry)
    mailbox = DevMailbox() if dev_mailbox_enabled(target, settings) else None
    modules = build_modules(target, bus, registry, mailbox=mailbox)
    app = build_app(modules, bus=bus, registry=registry, title=f"chat ({target})")
    if mailbox is not None:
        app.include_router(mailbox_router(mailbox))
    app.state.modules = modules
    return app


def build_asgi(target: Target, settings: ChatSettings) -> Any:
    """What uvicorn serves: the HTTP app, with Socket.IO in front when the gateway is part of ``target``."""
    app = build(target, settings)
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


async def set_account_disabled(identifier: str, *, disabled: bool) -> bool:
    """Disable an account (its sessions end everywhere: the running auth service's relay is notified and relays
    the event at once) or enable it again; False when no account has that email address or username."""
    from chat_auth.service import accounts

    async with _auth_context() as context:
        return await accounts.set_disabled(context, identifier=identifier, disabled=disabled) is not None
