"""The in-memory fake rooms store keeps the same promises as the PostgreSQL store (same contract suite)."""

from __future__ import annotations

import pytest

from chat_contracts.envelope import Envelope
from chat_rooms.service.ports import RoomsStore
from chat_rooms.testing.fakes import FakeRoomsStore
from chat_rooms.testing.store_contract import StoreContract


class TestFakeStore(StoreContract):
    @pytest.fixture
    def store(self) -> RoomsStore:
        return FakeRoomsStore()

    async def emitted(self, store: RoomsStore) -> list[Envelope]:
        assert isinstance(store, FakeRoomsStore)
        return store.emitted()
