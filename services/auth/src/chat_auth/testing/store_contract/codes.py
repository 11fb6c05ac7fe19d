"""The store contract for one-time codes: the email codes that verify an address or reset a password, and the
TOTP recovery codes.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from chat_auth.service.ports import AuthStore
from chat_auth.testing.store_contract.builders import T0, a_code, a_user


class CodesContract:
    """How an ``AuthStore`` keeps email codes and TOTP recovery codes."""

    # email codes

    async def test_the_active_code_is_the_unconsumed_code_until_it_expires(self, store: AuthStore) -> None:
        alice, bob = a_user("alice"), a_user("bob")
        code = a_code(alice, created_at=T0, ttl=timedelta(minutes=10))
        async with store.transaction() as tx:
            await tx.add_user(alice)
            await tx.add_user(bob)
            await tx.add_code(code)
        async with store.transaction() as tx:
            assert await tx.active_code(alice.id, "verify_email", T0) == code
            assert await tx.active_code(alice.id, "verify_email", T0 + timedelta(minutes=9, seconds=59)) == code
            assert await tx.active_code(alice.id, "verify_email", T0 + timedelta(minutes=10)) is None
            assert await tx.active_code(alice.id, "reset_password", T0) is None
            assert await tx.active_code(bob.id, "verify_email", T0) is None

    async def test_update_code_records_attempts_and_a_consumed_code_is_no_longer_active(self, store: AuthStore) -> None:
        alice = a_user("alice")
        code = a_code(alice, "reset_password")
        now = T0 + timedelta(minutes=1)
        async with store.transaction() as tx:
            await tx.add_user(alice)
            await tx.add_code(code)
        async with store.transaction() as tx:
            await tx.update_code(replace(code, attempts=2))
        async with store.transaction() as tx:
            assert await tx.active_code(alice.id, "reset_password", now) == replace(code, attempts=2)
            await tx.update_code(replace(code, attempts=3, consumed_at=now))
        async with store.transaction() as tx:
            assert await tx.active_code(alice.id, "reset_password", now) is None

    async def test_adding_a_code_makes_earlier_codes_of_that_purpose_unusable(self, store: AuthStore) -> None:
        alice = a_user("alice")
        first = a_code(alice, created_at=T0)
        reset = a_code(alice, "reset_password", created_at=T0)
        second = a_code(alice, created_at=T0 + timedelta(minutes=1))
        now = T0 + timedelta(minutes=2)
        async with store.transaction() as tx:
            await tx.add_user(alice)
            await tx.add_code(first)
            await tx.add_code(reset)
        async with store.transaction() as tx:
            await tx.add_code(second)
        async with store.transaction() as tx:
            assert await tx.active_code(alice.id, "verify_email", now) == second
            await tx.update_code(replace(second, consumed_at=now))
        async with store.transaction() as tx:
            # The earlier code does not come back once the newer one is gone.
            assert await tx.active_code(alice.id, "verify_email", now) is None
            assert await tx.active_code(alice.id, "reset_password", now) == reset

    # TOTP recovery codes

    async def test_a_recovery_code_works_once(self, store: AuthStore) -> None:
        alice, bob = a_user("alice"), a_user("bob")
        async with store.transaction() as tx:
            await tx.add_user(alice)
            await tx.add_user(bob)
            await tx.replace_recovery_codes(alice.id, [b"h1", b"h2", b"h3"])
        async with store.transaction() as tx:
            assert await tx.recovery_codes_left(alice.id) == 3
            assert await tx.use_recovery_code(alice.id, b"h1", T0) is True
            assert await tx.use_recovery_code(alice.id, b"h1", T0) is False
        async with store.transaction() as tx:
            assert await tx.use_recovery_code(alice.id, b"h1", T0) is False
            assert await tx.use_recovery_code(alice.id, b"unknown", T0) is False
            assert await tx.use_recovery_code(bob.id, b"h2", T0) is False
            assert await tx.recovery_codes_left(alice.id) == 2
            assert await tx.recovery_codes_left(bob.id) == 0

    async def test_replacing_recovery_codes_discards_the_old_ones(self, store: AuthStore) -> None:
        alice = a_user("alice")
        async with store.transaction() as tx:
            await tx.add_user(alice)
            await tx.replace_recovery_codes(alice.id, [b"h1", b"h2"])
            assert await tx.use_recovery_code(alice.id, b"h1", T0)
        async with store.transaction() as tx:
            await tx.replace_recovery_codes(alice.id, [b"h3"])
        async with store.transaction() as tx:
            assert await tx.recovery_codes_left(alice.id) == 1
            assert await tx.use_recovery_code(alice.id, b"h2", T0) is False
            assert await tx.use_recovery_code(alice.id, b"h3", T0) is True
            await tx.replace_recovery_codes(alice.id, [])
        async with store.transaction() as tx:
            assert await tx.recovery_codes_left(alice.id) == 0
