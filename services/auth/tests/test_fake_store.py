"""The in-memory fake store keeps the same promises as the PostgreSQL store (same contract suite)."""

from __future__ import annotations

import pytest

from chat_auth.service.ports import AuthStore
from chat_auth.testing.fakes import FakeAuthStore
from chat_auth.testing.store_contract import StoreContract
from chat_contracts.envelope import Envelope


class TestFakeStore(StoreContract):
    @pytest.fixture
    def store(self) -> AuthStore:
        return FakeAuthStore()

    async def emitted(self, store: AuthStore) -> list[Envelope]:
        assert isinstance(store, FakeAuthStore)
        return store.emitted()
