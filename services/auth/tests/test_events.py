"""What the auth service announces on chat.users.events when sessions end."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from chat_auth.service import events
from chat_auth.testing.fakes import FakeAuthStore
from chat_contracts.fields import MAX_SESSION_IDS
from chat_contracts.users import UserSessionsRevoked

ADA = uuid.UUID("6f1c2b8e-3d4a-4f5b-8c6d-7e8f9a0b1c2d")
NOW = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)


async def test_ending_more_sessions_than_one_event_holds_announces_every_one() -> None:
    store = FakeAuthStore()
    ended = [uuid.uuid4() for _ in range(MAX_SESSION_IDS + 3)]

    async with store.transaction() as tx:
        await events.sessions_revoked(tx, ADA, ended, "logout_all", NOW)

    announced = [e.data for e in store.emitted()]
    assert all(isinstance(data, UserSessionsRevoked) and data.reason == "logout_all" for data in announced)
    ids = [i for data in announced if isinstance(data, UserSessionsRevoked) for i in data.session_ids or ()]
    assert ids == ended
    assert len(announced) == 2


async def test_ending_no_session_announces_nothing_and_every_session_announces_no_ids() -> None:
    store = FakeAuthStore()

    async with store.transaction() as tx:
        await events.sessions_revoked(tx, ADA, [], "logout_all", NOW)
        await events.sessions_revoked(tx, ADA, None, "account_deleted", NOW)

    announced = [e.data for e in store.emitted()]
    assert announced == [UserSessionsRevoked(user_id=ADA, reason="account_deleted", occurred_at=NOW)]
