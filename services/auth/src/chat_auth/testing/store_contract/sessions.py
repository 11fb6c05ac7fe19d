"""The store contract for sessions and the refresh tokens that keep them alive: found, listed, revoked and used."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta

from chat_auth.service.ports import AuthStore
from chat_auth.testing.store_contract.builders import T0, a_session, a_token, a_user


class SessionsContract:
    """How an ``AuthStore`` keeps sessions and refresh tokens."""

    # sessions

    async def test_a_session_is_stored_found_and_updated(self, store: AuthStore) -> None:
        alice = a_user("alice")
        session = a_session(alice, auth_method="google")
        async with store.transaction() as tx:
            await tx.add_user(alice)
            await tx.add_session(session)
        async with store.transaction() as tx:
            assert await tx.session(session.id) == session
            assert await tx.session(session.id, for_update=True) == session
            assert await tx.session(uuid.uuid4()) is None
            used = replace(session, last_used_at=T0 + timedelta(hours=1), auth_method="refresh")
            await tx.update_session(used)
        async with store.transaction() as tx:
            assert await tx.session(session.id) == used
            ended = replace(used, revoked_at=T0 + timedelta(hours=2), revoked_reason="logout")
            await tx.update_session(ended)
        async with store.transaction() as tx:
            assert await tx.session(session.id) == ended

    async def test_sessions_of_lists_every_session_of_the_user_newest_first(self, store: AuthStore) -> None:
        alice, bob = a_user("alice"), a_user("bob")
        oldest = a_session(alice, created_at=T0)
        revoked = a_session(
            alice,
            created_at=T0 + timedelta(hours=1),
            revoked_at=T0 + timedelta(hours=2),
            revoked_reason="logout",
        )
        expired = a_session(alice, created_at=T0 + timedelta(hours=2), lifetime=timedelta(minutes=1))
        newest = a_session(alice, created_at=T0 + timedelta(hours=3))
        async with store.transaction() as tx:
            await tx.add_user(alice)
            await tx.add_user(bob)
            for session in (revoked, newest, oldest, expired, a_session(bob)):
                await tx.add_session(session)
        async with store.transaction() as tx:
            assert list(await tx.sessions_of(alice.id)) == [newest, expired, revoked, oldest]
            assert list(await tx.sessions_of(uuid.uuid4())) == []

    async def test_revoke_sessions_ends_every_active_session_except_the_kept_one(self, store: AuthStore) -> None:
        alice, bob = a_user("alice"), a_user("bob")
        now = T0 + timedelta(days=1)
        kept, first, second = (a_session(alice) for _ in range(3))
        ended_before = a_session(alice, revoked_at=T0 + timedelta(hours=1), revoked_reason="logout")
        expired = a_session(alice, lifetime=timedelta(hours=1))
        bobs = a_session(bob)
        async with store.transaction() as tx:
            await tx.add_user(alice)
            await tx.add_user(bob)
            for session in (kept, first, second, ended_before, expired, bobs):
                await tx.add_session(session)
        async with store.transaction() as tx:
            revoked = await tx.revoke_sessions(alice.id, reason="ended_others", at=now, keep=kept.id)
        assert set(revoked) == {first.id, second.id}
        assert len(revoked) == 2
        async with store.transaction() as tx:
            for session in (first, second):
                assert await tx.session(session.id) == replace(session, revoked_at=now, revoked_reason="ended_others")
            assert await tx.session(kept.id) == kept
            assert await tx.session(ended_before.id) == ended_before
            assert await tx.session(expired.id) == expired
            assert await tx.session(bobs.id) == bobs

    async def test_revoke_sessions_without_keep_ends_them_all_once(self, store: AuthStore) -> None:
        alice = a_user("alice")
        sessions = [a_session(alice) for _ in range(2)]
        later = T0 + timedelta(minutes=5)
        async with store.transaction() as tx:
            await tx.add_user(alice)
            for session in sessions:
                await tx.add_session(session)
        async with store.transaction() as tx:
            revoked = await tx.revoke_sessions(alice.id, reason="password_changed", at=later)
            assert set(revoked) == {session.id for session in sessions}
            assert list(await tx.revoke_sessions(alice.id, reason="logout_all", at=later)) == []
        async with store.transaction() as tx:
            assert {(s.revoked_at, s.revoked_reason) for s in await tx.sessions_of(alice.id)} == {
                (later, "password_changed")
            }

    # refresh tokens

    async def test_a_refresh_token_is_found_by_its_hash_and_marked_used(self, store: AuthStore) -> None:
        alice = a_user("alice")
        session = a_session(alice)
        token, sibling = a_token(session), a_token(session, created_at=T0 + timedelta(seconds=1))
        async with store.transaction() as tx:
            await tx.add_user(alice)
            await tx.add_session(session)
            await tx.add_refresh_token(token)
            await tx.add_refresh_token(sibling)
        used_at = T0 + timedelta(minutes=15)
        async with store.transaction() as tx:
            assert await tx.refresh_token(token.token_hash) == token
            assert await tx.refresh_token(b"\x00" * 32) is None
            await tx.mark_refresh_token_used(token.token_hash, used_at)
        async with store.transaction() as tx:
            assert await tx.refresh_token(token.token_hash) == replace(token, used_at=used_at)
            assert await tx.refresh_token(sibling.token_hash) == sibling
