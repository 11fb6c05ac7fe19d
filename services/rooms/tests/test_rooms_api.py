"""The rooms scenarios on the in-memory fake store: no I/O, fast."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from chat_contracts.envelope import Envelope
from chat_rooms.bootstrap import RoomsModule, build_context
from chat_rooms.settings import RoomsSettings
from chat_rooms.testing.contacts_scenarios import ContactsScenarios
from chat_rooms.testing.fakes import FakeClock, FakeRoomsStore
from chat_rooms.testing.harness import RoomsHarness, TokenMint, serve
from chat_rooms.testing.scenarios import RoomsScenarios
from chat_rooms.testing.users_scenarios import UsersScenarios
from chat_runtime.settings import load_settings

FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


class TestRoomsOnFakeStore(RoomsScenarios, ContactsScenarios, UsersScenarios):
    @pytest.fixture
    async def rooms(self, tmp_path: Path) -> AsyncIterator[RoomsHarness]:
        settings = load_settings(RoomsSettings, data_dir=tmp_path, migrate_on_start=False)
        clock = FakeClock()
        mint = TokenMint(settings, clock)
        store = FakeRoomsStore()
        ctx = build_context(settings, store=store, jwks=mint.jwks, clock=clock, hasher=FAST_HASHER)

        async def events() -> list[Envelope]:
            return store.emitted()

        async with serve(RoomsModule(settings=settings, context=ctx), mint, events=events) as harness:
            yield harness
