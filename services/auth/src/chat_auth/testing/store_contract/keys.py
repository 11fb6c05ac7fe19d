"""The store contract for the keys tokens are signed with: listed newest first, retired, deleted and withdrawn."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from chat_auth.service.ports import AuthStore
from chat_auth.testing.store_contract.builders import T0, a_key


class KeysContract:
    """How an ``AuthStore`` keeps signing keys."""

    # signing keys

    async def test_signing_keys_are_listed_newest_first(self, store: AuthStore) -> None:
        keys = [a_key(f"k{n}", created_at=T0 + timedelta(days=n)) for n in range(3)]
        async with store.transaction() as tx:
            assert list(await tx.signing_keys()) == []
            for key in (keys[1], keys[0], keys[2]):
                await tx.add_signing_key(key)
        async with store.transaction() as tx:
            assert list(await tx.signing_keys()) == keys[::-1]

    async def test_retired_signing_keys_stay_listed_until_deleted(self, store: AuthStore) -> None:
        old, recent, current = (a_key(f"k{n}", created_at=T0 + timedelta(days=n)) for n in range(3))
        async with store.transaction() as tx:
            for key in (old, recent, current):
                await tx.add_signing_key(key)
        async with store.transaction() as tx:
            await tx.retire_signing_key(old.kid, T0 + timedelta(days=1))
            await tx.retire_signing_key(recent.kid, T0 + timedelta(days=3))
        async with store.transaction() as tx:
            assert list(await tx.signing_keys()) == [
                current,
                replace(recent, retired_at=T0 + timedelta(days=3)),
                replace(old, retired_at=T0 + timedelta(days=1)),
            ]
            assert await tx.delete_signing_keys_retired_before(T0 + timedelta(days=2)) == 1
        async with store.transaction() as tx:
            assert [key.kid for key in await tx.signing_keys()] == [current.kid, recent.kid]
            assert await tx.delete_signing_keys_retired_before(T0 + timedelta(days=2)) == 0

    async def test_a_withdrawn_signing_key_is_listed_no_more_loses_its_private_half_and_is_never_deleted(
        self, store: AuthStore
    ) -> None:
        leaked, kept = a_key("leaked", created_at=T0), a_key("kept", created_at=T0 + timedelta(days=1))
        withdrawn_at = T0 + timedelta(days=2)
        async with store.transaction() as tx:
            await tx.add_signing_key(leaked)
            await tx.add_signing_key(kept)
        async with store.transaction() as tx:
            await tx.withdraw_signing_key(leaked.kid, withdrawn_at)
            await tx.withdraw_signing_key(leaked.kid, withdrawn_at + timedelta(days=1))  # again: changes nothing
        async with store.transaction() as tx:
            assert list(await tx.signing_keys()) == [kept]
            assert list(await tx.withdrawn_signing_kids()) == [leaked.kid]
            assert await tx.signing_key(leaked.kid) == replace(
                leaked, private_key_encrypted=b"", retired_at=withdrawn_at, withdrawn_at=withdrawn_at
            )
            assert await tx.signing_key(kept.kid) == kept
            assert await tx.signing_key("never") is None
            assert await tx.delete_signing_keys_retired_before(T0 + timedelta(days=30)) == 0
        async with store.transaction() as tx:
            assert list(await tx.withdrawn_signing_kids()) == [leaked.kid], "remembered: withdrawing is idempotent"
