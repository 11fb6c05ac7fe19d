"""The messages scenarios on the in-memory fake store: no I/O, fast."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from chat_messages.bootstrap import MessagesModule, build_context
from chat_messages.settings import MessagesSettings
from chat_messages.testing.fake_attachments import FakeAttachmentStore
from chat_messages.testing.fakes import FakeClock, FakeMessageStore, RecordingPublisher
from chat_messages.testing.harness import MessagesHarness, serve
from chat_messages.testing.scenarios import MessagesScenarios
from chat_runtime.settings import load_settings
from chat_runtime.testing.tokens import TokenMint


class TestMessagesOnFakeStore(MessagesScenarios):
    @pytest.fixture
    async def msgs(self, tmp_path: Path) -> AsyncIterator[MessagesHarness]:
        settings = load_settings(MessagesSettings, data_dir=tmp_path)
        clock = FakeClock()
        mint = TokenMint(issuer=settings.auth_issuer, audience=settings.auth_audience, clock=clock)
        ctx = build_context(
            settings,
            store=FakeMessageStore(),
            attachments=FakeAttachmentStore(),
            publisher=RecordingPublisher(),
            jwks=mint.jwks,
            clock=clock,
        )
        async with serve(MessagesModule(settings=settings, context=ctx), mint) as harness:
            yield harness

    async def test_unread_counts_cover_exactly_the_messages_up_to_the_last_seq_answered(
        self, msgs: MessagesHarness
    ) -> None:
        """A message stored while the counts are taken is not in them: the answer's ``last_seq`` says how far they
        go, so a client counting live messages after it neither misses nor counts one twice."""
        ada, bob = await msgs.person("ada"), await msgs.person("bob")
        room = await msgs.room(ada, bob)
        await msgs.send(ada, room, "one")
        store = msgs.module.context.store
        count = store.count_unread

        async def count_then_a_send(room_id: uuid.UUID, user_id: uuid.UUID, **window: int | None) -> int:
            counted = await count(room_id, user_id, **window)  # type: ignore[arg-type]
            await msgs.send(ada, room, "stored while the answer is put together")
            return counted

        store.count_unread = count_then_a_send  # type: ignore[method-assign]
        unread = (await msgs.http.get("/api/messages/unread", headers=bob.headers)).json()
        assert unread == [{"room_id": str(room), "unread": 1, "read_seq": 0, "last_seq": 1, "mentions": 0}]
