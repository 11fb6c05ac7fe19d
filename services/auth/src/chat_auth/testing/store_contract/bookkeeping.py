"""The store contract for the store's own short-lived records: consumed token ids, OIDC login states, the counts
that throttle guesses and the outbox of events to publish; apart from the accounts the service is about.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from chat_auth.domain.model import Failures, OidcState
from chat_auth.service.ports import AuthStore, Tx
from chat_auth.testing.store_contract.builders import T0, ReadsOutbox, a_user, an_event, ids_of, roll_back
from chat_contracts.topics import USERS_EVENTS


class BookkeepingContract(ReadsOutbox):
    """How an ``AuthStore`` consumes token ids, keeps OIDC states, throttles failures and keeps its outbox."""

    # single-use tokens

    async def test_a_jti_is_consumed_only_once(self, store: AuthStore) -> None:
        expires_at = T0 + timedelta(minutes=5)
        async with store.transaction() as tx:
            assert await tx.consume_jti("jti-1", expires_at) is True
            assert await tx.consume_jti("jti-1", expires_at) is False
        async with store.transaction() as tx:
            assert await tx.consume_jti("jti-1", expires_at) is False
            assert await tx.consume_jti("jti-2", expires_at) is True

    # OIDC

    async def test_an_oidc_state_can_be_taken_only_once(self, store: AuthStore) -> None:
        state = OidcState(
            state_hash=b"\x01" * 32,
            browser_hash=b"\x02" * 32,
            nonce="n-0S6_WzA2Mj",
            code_verifier="dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
            return_to="/rooms",
            created_at=T0,
            expires_at=T0 + timedelta(minutes=10),
            extra={"link_user_id": str(uuid.uuid4()), "nested": {"n": 1}},
        )
        async with store.transaction() as tx:
            await tx.add_oidc_state(state)
        async with store.transaction() as tx:
            assert await tx.take_oidc_state(b"\x03" * 32) is None
            assert await tx.take_oidc_state(state.state_hash) == state
            assert await tx.take_oidc_state(state.state_hash) is None
        async with store.transaction() as tx:
            assert await tx.take_oidc_state(state.state_hash) is None

    # throttling

    async def test_hits_count_up_within_a_window_and_start_over_in_the_next(self, store: AuthStore) -> None:
        minute = timedelta(minutes=1)
        key = "login:ip:203.0.113.7"
        async with store.transaction() as tx:
            assert await tx.hit(key, window=minute, now=T0) == 1
            assert await tx.hit(key, window=minute, now=T0 + timedelta(seconds=30)) == 2
        async with store.transaction() as tx:
            assert await tx.hit(key, window=minute, now=T0 + timedelta(seconds=59)) == 3
            assert await tx.hit("login:ip:198.51.100.1", window=minute, now=T0 + timedelta(seconds=59)) == 1
            assert await tx.hit(key, window=minute, now=T0 + minute) == 1
        async with store.transaction() as tx:
            assert await tx.hit(key, window=minute, now=T0 + timedelta(seconds=61)) == 2

    async def test_failures_are_counted_until_cleared(self, store: AuthStore) -> None:
        key = "login:user:alice"
        later = T0 + timedelta(seconds=10)
        async with store.transaction() as tx:
            assert await tx.failures(key) == Failures()
            assert await tx.record_failure(key, T0) == Failures(count=1, last_at=T0)
        async with store.transaction() as tx:
            assert await tx.record_failure(key, later) == Failures(count=2, last_at=later)
        async with store.transaction() as tx:
            assert await tx.failures(key) == Failures(count=2, last_at=later)
            assert await tx.failures("login:user:bob") == Failures()
            await tx.clear_failures(key)
        async with store.transaction() as tx:
            assert await tx.failures(key) == Failures()
            assert await tx.record_failure(key, later) == Failures(count=1, last_at=later)
            await tx.clear_failures("login:user:nobody")

    # events

    async def test_events_emitted_in_a_committed_transaction_are_kept_in_order(self, store: AuthStore) -> None:
        alice, bob = a_user("alice"), a_user("bob")
        first, second = an_event(alice), an_event(bob)
        async with store.transaction() as tx:
            await tx.add_user(alice)
            await tx.emit(first, topic=USERS_EVENTS.name)
        async with store.transaction() as tx:
            await tx.add_user(bob)
            await tx.emit(second, topic=USERS_EVENTS.name)
        emitted = await self.emitted(store)
        assert ids_of(emitted) == [first.id, second.id]
        assert [envelope.model_dump() for envelope in emitted] == [first.model_dump(), second.model_dump()]

    async def test_events_emitted_in_a_rolled_back_transaction_are_discarded(self, store: AuthStore) -> None:
        alice, bob = a_user("alice"), a_user("bob")
        kept, discarded = an_event(alice), an_event(bob)
        async with store.transaction() as tx:
            await tx.emit(kept, topic=USERS_EVENTS.name)

        async def work(tx: Tx) -> None:
            await tx.add_user(bob)
            await tx.emit(discarded, topic=USERS_EVENTS.name)

        await roll_back(store, work)
        assert ids_of(await self.emitted(store)) == [kept.id]
