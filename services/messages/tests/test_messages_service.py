"""The messages scenarios on the in-memory fake store: no I/O, fast."""

from __future__ import annotations

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
