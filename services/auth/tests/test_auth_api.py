"""The auth scenarios on the in-memory fake store: no I/O, fast."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher as Argon2
from asgi_lifespan import LifespanManager
from prometheus_client import CollectorRegistry

from chat_auth.bootstrap import AuthModule, build_context
from chat_auth.domain.passwords import PasswordHasher
from chat_auth.service import keys
from chat_auth.service.ports import Email
from chat_auth.settings import AuthSettings
from chat_auth.testing.context_tools import forger
from chat_auth.testing.fakes import FakeAuthStore, FakeClock, RecordingMailer
from chat_auth.testing.harness import AuthHarness
from chat_auth.testing.scenarios import AuthScenarios
from chat_auth.testing.totp_scenarios import TotpScenarios
from chat_contracts.envelope import Envelope
from chat_runtime.app import build_app
from chat_runtime.bus.inprocess import InProcessBroker, InProcessBus
from chat_runtime.settings import load_settings

# Cheap argon2 parameters: the scenarios test behaviour, not hashing cost.
FAST_HASHER = PasswordHasher(Argon2(time_cost=1, memory_cost=8, parallelism=1))


@pytest.fixture
async def module(tmp_path: Path) -> AuthModule:
    settings = load_settings(AuthSettings, data_dir=tmp_path, trust_forwarded_for=True, migrate_on_start=False)
    store = FakeAuthStore()
    mailer = RecordingMailer()
    ctx = build_context(settings, store=store, mailer=mailer, clock=FakeClock(), hasher=FAST_HASHER)
    return AuthModule(settings=settings, context=ctx)


class TestAuthOnFakeStore(AuthScenarios, TotpScenarios):
    @pytest.fixture
    async def auth(self, module: AuthModule) -> AsyncIterator[AuthHarness]:
        bus = InProcessBus(InProcessBroker())
        app = build_app([module], bus=bus, registry=CollectorRegistry())
        ctx = module.context
        store = ctx.store
        mailer = ctx.mail._mailer
        assert isinstance(store, FakeAuthStore)
        assert isinstance(mailer, RecordingMailer)
        assert isinstance(ctx.clock, FakeClock)

        async def mail(address: str) -> list[Email]:
            await ctx.mail.drain()
            return [m for m in mailer.sent if m.to.lower() == address.lower()]

        async def events() -> list[Envelope]:
            return store.emitted()

        async def jwks() -> dict[str, Any]:
            return await keys.published_keys(ctx)

        async with LifespanManager(app) as manager:
            transport = httpx.ASGITransport(app=manager.app, client=("192.0.2.1", 1234))
            async with httpx.AsyncClient(transport=transport, base_url="http://auth.test") as http:
                yield AuthHarness(
                    http=http,
                    clock=ctx.clock,
                    mail=mail,
                    events=events,
                    jwks=jwks,
                    forge=forger(ctx),
                    settings=module.settings,
                )

    @pytest.fixture
    def rotate(self, module: AuthModule) -> Callable[[], Awaitable[str]]:
        return lambda: keys.rotate(module.context)
