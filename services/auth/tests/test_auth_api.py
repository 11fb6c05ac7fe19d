"""The auth scenarios on the in-memory fake store: no I/O, fast."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from argon2 import PasswordHasher as Argon2

from chat_auth.bootstrap import AuthModule, build_context
from chat_auth.domain.passwords import PasswordHasher
from chat_auth.service import keys
from chat_auth.service.ports import Email
from chat_auth.settings import AuthSettings
from chat_auth.testing.fakes import FakeAuthStore, FakeClock, RecordingMailer
from chat_auth.testing.harness import AuthHarness, serve
from chat_auth.testing.key_scenarios import KeyWithdrawalScenarios
from chat_auth.testing.scenarios import AuthScenarios
from chat_auth.testing.totp_scenarios import TotpScenarios
from chat_contracts.envelope import Envelope
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


class TestAuthOnFakeStore(AuthScenarios, TotpScenarios, KeyWithdrawalScenarios):
    @pytest.fixture
    async def auth(self, module: AuthModule) -> AsyncIterator[AuthHarness]:
        store, mailer = module.context.store, module.context.mail._mailer
        assert isinstance(store, FakeAuthStore)
        assert isinstance(mailer, RecordingMailer)

        async def mail(address: str) -> list[Email]:
            return [m for m in mailer.sent if m.to.lower() == address.lower()]

        async def events() -> list[Envelope]:
            return store.emitted()

        async with serve(module, mail=mail, events=events) as harness:
            yield harness

    @pytest.fixture
    def rotate(self, module: AuthModule) -> Callable[[], Awaitable[str]]:
        return lambda: keys.rotate(module.context)
