"""The auth scenarios on real PostgreSQL with mail delivered over real SMTP; the outbox relayed to real Kafka."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from prometheus_client import CollectorRegistry
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from chat_auth.adapters.email import SmtpMailer
from chat_auth.adapters.postgres import MIGRATIONS
from chat_auth.adapters.postgres.store import PostgresAuthStore
from chat_auth.bootstrap import AuthModule, bootstrap, build_context
from chat_auth.service import keys
from chat_auth.service.ports import Email
from chat_auth.settings import AuthSettings
from chat_auth.testing.fakes import FakeClock
from chat_auth.testing.harness import PASSWORD, AuthHarness, serve
from chat_auth.testing.key_scenarios import KeyWithdrawalScenarios
from chat_auth.testing.scenarios import AuthScenarios
from chat_auth.testing.totp_scenarios import TotpScenarios
from chat_contracts.envelope import Envelope, Record, decode
from chat_contracts.topics import USERS_EVENTS
from chat_contracts.users import UserRegistered
from chat_localinfra.smtp import SmtpInbox
from chat_runtime import postgres
from chat_runtime.app import build_app
from chat_runtime.bus.kafka import KafkaBus
from chat_runtime.bus.kafka_setup import KafkaConfig, ensure_topics
from chat_runtime.outbox import OUTBOX, decode_headers
from chat_runtime.settings import load_settings


def _settings(tmp_path: Path, url: str, smtp_host: str, smtp_port: int) -> AuthSettings:
    return load_settings(
        AuthSettings,
        data_dir=tmp_path,
        database_url=url,
        trust_forwarded_for=True,
        migrate_on_start=False,
        email_transport="smtp",
        smtp_host=smtp_host,
        smtp_port=smtp_port,
    )


async def _outbox_events(engine: AsyncEngine) -> list[Envelope]:
    async with engine.connect() as connection:
        rows = (await connection.execute(select(OUTBOX).order_by(OUTBOX.c.position))).all()
    return [
        decode(
            Record(
                topic=row.topic,
                key=row.record_key.encode(),
                value=row.record_value,
                headers=decode_headers(row.headers),
            ),
            USERS_EVENTS,
        )
        for row in rows
    ]


def _as_email(message: EmailMessage) -> Email:
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    return Email(
        to=str(message["To"]),
        subject=str(message["Subject"]),
        text=text.get_content() if text else "",
        html=html.get_content() if html else "",
    )


class TestAuthOnPostgres(AuthScenarios, TotpScenarios, KeyWithdrawalScenarios):
    @pytest.fixture
    async def module(self, tmp_path: Path, pg_database: str, smtp_server: tuple[str, int, SmtpInbox]) -> AuthModule:
        await asyncio.to_thread(postgres.upgrade, pg_database, MIGRATIONS)
        host, port, _ = smtp_server
        settings = _settings(tmp_path, pg_database, host, port)
        engine = postgres.async_engine(pg_database, pool_size=5)
        store = PostgresAuthStore(engine)
        ctx = build_context(settings, store=store, mailer=SmtpMailer(settings), clock=FakeClock())
        return AuthModule(settings=settings, context=ctx, engine=engine)  # the app's lifespan disposes the engine

    @pytest.fixture
    async def auth(self, module: AuthModule, smtp_server: tuple[str, int, SmtpInbox]) -> AsyncIterator[AuthHarness]:
        _, _, inbox = smtp_server
        engine = module.engine
        assert engine is not None

        async def mail(address: str) -> list[Email]:
            return [_as_email(m) for m in inbox.to(address)]

        async def events() -> list[Envelope]:
            return await _outbox_events(engine)

        async with serve(module, mail=mail, events=events) as harness:
            yield harness

    @pytest.fixture
    def rotate(self, module: AuthModule) -> Callable[[], Awaitable[str]]:
        return lambda: keys.rotate(module.context)


async def test_a_registration_reaches_kafka_through_the_outbox_relay(
    tmp_path: Path, pg_database: str, kafka_bootstrap: str, smtp_server: tuple[str, int, SmtpInbox]
) -> None:
    host, port, inbox = smtp_server
    settings = _settings(tmp_path, pg_database, host, port).model_copy(update={"migrate_on_start": True})
    spec = dataclasses.replace(USERS_EVENTS, name=f"chat.users.events.it-{uuid.uuid4().hex[:8]}")
    config = KafkaConfig(bootstrap=kafka_bootstrap, client_id="auth-it", heartbeat_interval_ms=500)
    await ensure_topics(config, [spec])
    received: list[Envelope] = []
    got_one = asyncio.Event()

    async def on_event(envelope: Envelope) -> None:
        received.append(envelope)
        got_one.set()

    consumer_bus = KafkaBus(config)
    await consumer_bus.subscribe(spec, group="auth-it", handler=on_event)
    producer_bus = _RenamingBus(KafkaBus(config), {USERS_EVENTS.name: spec.name})
    module = bootstrap(settings, bus=producer_bus, mailer=SmtpMailer(settings))
    app = build_app([module], bus=producer_bus, registry=CollectorRegistry())
    try:
        async with LifespanManager(app) as manager:
            transport = httpx.ASGITransport(app=manager.app, client=("192.0.2.1", 1234))
            async with httpx.AsyncClient(transport=transport, base_url="http://auth.test") as http:
                body = {"email": "kafka@example.com", "username": "kafka", "password": PASSWORD}
                assert (await http.post("/api/auth/register", json=body)).status_code == 202
                await asyncio.wait_for(got_one.wait(), 30)
                await module.context.mail.drain()
    finally:
        await consumer_bus.stop()
    assert isinstance(received[0].data, UserRegistered)
    assert received[0].data.username == "kafka"
    assert inbox.to("kafka@example.com"), "the verification email went out over SMTP"


class _RenamingBus:
    """Publishes to a per-test copy of a topic so concurrent runs never share records."""

    def __init__(self, inner: KafkaBus, names: dict[str, str]) -> None:
        self._inner = inner
        self._names = names

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def publish_record(self, record: Record) -> None:
        await self._inner.publish_record(dataclasses.replace(record, topic=self._names.get(record.topic, record.topic)))
