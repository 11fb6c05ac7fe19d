"""The store contract for accounts: users and what belongs to them (avatars, linked external identities), how
conflicts on email, username and identity show, and that a rolled-back transaction leaves nothing behind.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta

import pytest

from chat_auth.domain.errors import Conflict
from chat_auth.domain.model import Failures
from chat_auth.service.ports import AuthStore, Tx
from chat_auth.testing.store_contract.builders import (
    GOOGLE,
    OTHER_ISSUER,
    T0,
    ReadsOutbox,
    a_code,
    a_key,
    a_session,
    a_token,
    a_user,
    an_event,
    an_identity,
    roll_back,
)
from chat_contracts.topics import USERS_EVENTS


class AccountsContract(ReadsOutbox):
    """How an ``AuthStore`` keeps users, their avatars and their external identities."""

    # accounts

    async def test_an_added_user_is_found_by_id_normalized_email_and_normalized_username(
        self, store: AuthStore
    ) -> None:
        alice = a_user("alice")
        async with store.transaction() as tx:
            await tx.add_user(alice)
        async with store.transaction() as tx:
            assert await tx.user_by_id(alice.id) == alice
            assert await tx.user_by_id(alice.id, for_update=True) == alice
            assert await tx.user_by_email("alice@example.com") == alice
            assert await tx.user_by_username("alice") == alice

    async def test_looking_up_an_unknown_user_finds_nothing(self, store: AuthStore) -> None:
        async with store.transaction() as tx:
            await tx.add_user(a_user("alice"))
        async with store.transaction() as tx:
            assert await tx.user_by_id(uuid.uuid4()) is None
            assert await tx.user_by_id(uuid.uuid4(), for_update=True) is None
            assert await tx.user_by_email("bob@example.com") is None
            assert await tx.user_by_username("bob") is None

    async def test_adding_a_user_with_a_taken_email_is_a_conflict_on_email(self, store: AuthStore) -> None:
        async with store.transaction() as tx:
            await tx.add_user(a_user("alice"))
        async with store.transaction() as tx:
            with pytest.raises(Conflict) as caught:
                await tx.add_user(replace(a_user("bob"), email_normalized="alice@example.com"))
        assert caught.value.field == "email"

    async def test_adding_a_user_with_a_taken_username_is_a_conflict_on_username(self, store: AuthStore) -> None:
        async with store.transaction() as tx:
            await tx.add_user(a_user("alice"))
        async with store.transaction() as tx:
            with pytest.raises(Conflict) as caught:
                await tx.add_user(replace(a_user("bob"), username_normalized="alice"))
        assert caught.value.field == "username"

    async def test_a_conflict_leaves_the_transaction_usable(self, store: AuthStore) -> None:
        alice, bob = a_user("alice"), a_user("bob")
        async with store.transaction() as tx:
            await tx.add_user(alice)
        async with store.transaction() as tx:
            with pytest.raises(Conflict):
                await tx.add_user(replace(bob, username_normalized="alice"))
            await tx.add_user(bob)
        async with store.transaction() as tx:
            assert await tx.user_by_id(bob.id) == bob
            assert await tx.user_by_username("alice") == alice

    async def test_update_user_writes_every_field_back(self, store: AuthStore) -> None:
        alice = a_user("alice")
        async with store.transaction() as tx:
            await tx.add_user(alice)
        later = T0 + timedelta(days=3, microseconds=123456)
        changed = replace(
            alice,
            email="Alice@Elsewhere.org",
            email_normalized="alice@elsewhere.org",
            username="Alicia",
            username_normalized="alicia",
            display_name="Alicia Ü. Example",
            password_hash=None,
            updated_at=later,
            email_verified_at=later,
            totp_secret_encrypted=b"\x00\xffsecret",
            totp_enabled_at=later,
            totp_last_step=12_345_678_901,
            avatar_version=3,
            disabled_at=later,
        )
        async with store.transaction() as tx:
            await tx.update_user(changed)
        async with store.transaction() as tx:
            assert await tx.user_by_id(alice.id) == changed
            assert await tx.user_by_email("alice@elsewhere.org") == changed
            assert await tx.user_by_username("alicia") == changed
            assert await tx.user_by_email("alice@example.com") is None
            assert await tx.user_by_username("alice") is None

    async def test_renaming_a_user_to_a_taken_username_is_a_conflict_and_changes_nothing(
        self, store: AuthStore
    ) -> None:
        alice, bob = a_user("alice"), a_user("bob")
        async with store.transaction() as tx:
            await tx.add_user(alice)
            await tx.add_user(bob)
        async with store.transaction() as tx:
            with pytest.raises(Conflict) as caught:
                await tx.update_user(replace(bob, username="Alice", username_normalized="alice"))
            assert await tx.user_by_id(bob.id) == bob
        assert caught.value.field == "username"
        async with store.transaction() as tx:
            assert await tx.user_by_id(bob.id) == bob
            assert await tx.user_by_username("alice") == alice

    async def test_a_rolled_back_transaction_writes_nothing(self, store: AuthStore) -> None:
        alice, bob = a_user("alice"), a_user("bob")
        async with store.transaction() as tx:
            await tx.add_user(alice)
        session = a_session(bob)

        async def work(tx: Tx) -> None:
            await tx.add_user(bob)
            await tx.add_session(session)
            await tx.add_refresh_token(a_token(session))
            await tx.update_user(replace(alice, display_name="Changed"))
            await tx.set_avatar(alice.id, content_type="image/png", data=b"png")
            await tx.add_identity(an_identity(alice, subject="g-1"))
            await tx.replace_recovery_codes(alice.id, [b"r1"])
            await tx.add_signing_key(a_key("k1", created_at=T0))
            assert await tx.consume_jti("jti-1", T0 + timedelta(minutes=5))
            assert await tx.hit("ip:203.0.113.7", window=timedelta(minutes=1), now=T0) == 1
            await tx.record_failure("login:alice", T0)
            await tx.emit(an_event(bob), topic=USERS_EVENTS.name)

        await roll_back(store, work)
        async with store.transaction() as tx:
            assert await tx.user_by_id(bob.id) is None
            assert await tx.session(session.id) is None
            assert list(await tx.sessions_of(bob.id)) == []
            assert await tx.user_by_id(alice.id) == alice
            assert await tx.avatar(alice.id) is None
            assert await tx.identity(GOOGLE, "g-1") is None
            assert await tx.recovery_codes_left(alice.id) == 0
            assert list(await tx.signing_keys()) == []
            assert await tx.consume_jti("jti-1", T0 + timedelta(minutes=5))
            assert await tx.hit("ip:203.0.113.7", window=timedelta(minutes=1), now=T0) == 1
            assert await tx.failures("login:alice") == Failures()
        assert await self.emitted(store) == []

    async def test_deleting_a_user_deletes_everything_that_belongs_to_them_and_nothing_else(
        self, store: AuthStore
    ) -> None:
        alice, bob = a_user("alice"), a_user("bob")
        belongings = {}
        async with store.transaction() as tx:
            for user in (alice, bob):
                await tx.add_user(user)
                session = a_session(user)
                token = a_token(session)
                code = a_code(user)
                identity = an_identity(user)
                await tx.add_session(session)
                await tx.add_refresh_token(token)
                await tx.add_code(code)
                await tx.add_identity(identity)
                await tx.replace_recovery_codes(user.id, [b"r1", b"r2"])
                await tx.set_avatar(user.id, content_type="image/png", data=user.username.encode())
                belongings[user.id] = (session, token, code, identity)
        async with store.transaction() as tx:
            await tx.delete_user(alice.id)

        now = T0 + timedelta(minutes=1)
        async with store.transaction() as tx:
            session, token, code, identity = belongings[alice.id]
            assert await tx.user_by_id(alice.id) is None
            assert await tx.session(session.id) is None
            assert list(await tx.sessions_of(alice.id)) == []
            assert await tx.refresh_token(token.token_hash) is None
            assert await tx.active_code(alice.id, "verify_email", now) is None
            assert await tx.identity(identity.issuer, identity.subject) is None
            assert list(await tx.identities_of(alice.id)) == []
            assert await tx.recovery_codes_left(alice.id) == 0
            assert await tx.avatar(alice.id) is None

            session, token, code, identity = belongings[bob.id]
            assert await tx.user_by_id(bob.id) == bob
            assert await tx.session(session.id) == session
            assert await tx.refresh_token(token.token_hash) == token
            assert await tx.active_code(bob.id, "verify_email", now) == code
            assert await tx.identity(identity.issuer, identity.subject) == identity
            assert await tx.recovery_codes_left(bob.id) == 2
            assert await tx.avatar(bob.id) == ("image/png", b"Bob")

        async with store.transaction() as tx:
            await tx.add_user(a_user("alice"))  # the email and username are free again

    # avatars

    async def test_an_avatar_is_set_replaced_and_deleted(self, store: AuthStore) -> None:
        alice = a_user("alice")
        async with store.transaction() as tx:
            await tx.add_user(alice)
            assert await tx.avatar(alice.id) is None
            await tx.set_avatar(alice.id, content_type="image/png", data=b"\x89PNG\x00first")
        async with store.transaction() as tx:
            assert await tx.avatar(alice.id) == ("image/png", b"\x89PNG\x00first")
            await tx.set_avatar(alice.id, content_type="image/webp", data=b"RIFF\x00second")
        async with store.transaction() as tx:
            assert await tx.avatar(alice.id) == ("image/webp", b"RIFF\x00second")
            await tx.delete_avatar(alice.id)
        async with store.transaction() as tx:
            assert await tx.avatar(alice.id) is None
            await tx.delete_avatar(alice.id)

    # external identities

    async def test_an_identity_is_found_by_issuer_and_subject_and_listed_with_its_user(self, store: AuthStore) -> None:
        alice, bob = a_user("alice"), a_user("bob")
        at_google = an_identity(alice, subject="same-subject")
        elsewhere = an_identity(alice, issuer=OTHER_ISSUER, subject="same-subject")
        bobs = an_identity(bob)
        async with store.transaction() as tx:
            await tx.add_user(alice)
            await tx.add_user(bob)
            for identity in (at_google, elsewhere, bobs):
                await tx.add_identity(identity)
        async with store.transaction() as tx:
            assert await tx.identity(GOOGLE, "same-subject") == at_google
            assert await tx.identity(OTHER_ISSUER, "same-subject") == elsewhere
            assert await tx.identity(GOOGLE, "unknown") is None
            assert set(await tx.identities_of(alice.id)) == {at_google, elsewhere}
            assert list(await tx.identities_of(bob.id)) == [bobs]
            assert list(await tx.identities_of(uuid.uuid4())) == []

    async def test_linking_a_linked_identity_again_is_a_conflict_on_identity(self, store: AuthStore) -> None:
        alice, bob = a_user("alice"), a_user("bob")
        linked = an_identity(alice, subject="g-1")
        async with store.transaction() as tx:
            await tx.add_user(alice)
            await tx.add_user(bob)
            await tx.add_identity(linked)
        async with store.transaction() as tx:
            with pytest.raises(Conflict) as caught:
                await tx.add_identity(an_identity(bob, subject="g-1"))
        assert caught.value.field == "identity"
        async with store.transaction() as tx:
            assert await tx.identity(GOOGLE, "g-1") == linked
