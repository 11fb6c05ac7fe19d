"""The in-memory fake message store keeps the same promises as the MongoDB store (same contract suite)."""

from __future__ import annotations

import pytest

from chat_messages.service.ports import MessageStore
from chat_messages.testing.fakes import FakeMessageStore
from chat_messages.testing.store_contract import StoreContract


class TestFakeStore(StoreContract):
    @pytest.fixture
    def store(self) -> MessageStore:
        return FakeMessageStore()
