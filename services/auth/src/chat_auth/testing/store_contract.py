"""One suite, every ``AuthStore`` (the in-memory fake in unit tests, PostgreSQL in integration tests).

A test module subclasses ``StoreContract`` (the subclass's name starts with ``Test``), provides a ``store``
fixture returning a fresh, empty store, and implements ``emitted``. Every test reads back through a new
transaction, so what it checks is what committed.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from chat_auth.domain.errors import Conflict
from chat_auth.domain.model import (
    AuthMethod,
    CodePurpose,
    EmailCode,
    Failures,
    Identity,
    OidcState,
    RefreshToken,
    RevocationReason,
    Session,
    SigningKey,
    User,
)
from chat_auth.service.ports import AuthStore, Tx
from chat_contracts.envelope import Envelope
from chat_contracts.examples import example
from chat_contracts.topics import USERS_EVENTS
from chat_contracts.users import UserRegistered

T0 = datetime(2030, 1, 1, tzinfo=UTC)
"""A fixed instant, aligned on the minute, hour and day (throttle windows start there)."""
GOOGLE = "https://accounts.google.com"
OTHER_ISSUER = "https://id.example.org"


class _Boom(Exception):
    """Raised inside a transaction to roll it back."""


async def roll_back(store: AuthStore, work: Callable[[Tx], Awaitable[None]]) -> None:
    """Run ``work`` in a transaction that then fails, so nothing it did may remain."""
    with pytest.raises(_Boom):
        await _fail_after(store, work)


async def _fail_after(store: AuthStore, work: Callable[[Tx], Awaitable[None]]) -> None:
    async with store.transaction() as tx:
        await work(tx)
        raise _Boom


def a_user(name: str, *, at: datetime = T0) -> User:
    """A fresh account whose email and username derive from ``name``."""
    return User(
        id=uuid.uuid4(),
        email=f"{name.title()}@Example.com",
        email_normalized=f"{name}@example.com",
        username=name.title(),
        username_normalized=name,
        display_name=f"{name.title()} Example",
        password_hash=f"$argon2id$v=19$m=65536,t=3,p=4${name}",
        created_at=at,
        updated_at=at,
    )


def a_session(
    user: User,
    *,
    created_at: datetime = T0,
    lifetime: timedelta = timedelta(days=30),
    auth_method: AuthMethod = "password",
    revoked_at: datetime | None = None,
    revoked_reason: RevocationReason | None = None,
) -> Session:
    return Session(
        id=uuid.uuid4(),
        user_id=user.id,
        created_at=created_at,
        last_used_at=created_at,
        expires_at=created_at + lifetime,
        auth_method=auth_method,
        user_agent="Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0",
        ip="203.0.113.7",
        revoked_at=revoked_at,
        revoked_reason=revoked_reason,
    )


def a_token(session: Session, *, created_at: datetime = T0) -> RefreshToken:
    return RefreshToken(
        token_hash=uuid.uuid4().bytes + uuid.uuid4().bytes,
        session_id=session.id,
        created_at=created_at,
        expires_at=session.expires_at,
    )


def a_code(
    user: User,
    purpose: CodePurpose = "verify_email",
    *,
    created_at: datetime = T0,
    ttl: timedelta | None = None,
) -> EmailCode:
    return EmailCode(
        id=uuid.uuid4(),
        user_id=user.id,
        purpose=purpose,
        code_hash=uuid.uuid4().bytes,
        created_at=created_at,
        expires_at=created_at + (ttl or timedelta(minutes=10)),
    )


def an_identity(user: User, *, issuer: str = GOOGLE, subject: str | None = None) -> Identity:
    return Identity(
        issuer=issuer,
        subject=subject or uuid.uuid4().hex,
        user_id=user.id,
        email=user.email,
        created_at=T0,
    )


def a_key(kid: str, *, created_at: datetime) -> SigningKey:
    return SigningKey(
        kid=kid,
        private_key_encrypted=b"\x00encrypted:" + kid.encode(),
        public_jwk={"kty": "OKP", "crv": "Ed25519", "x": f"x-{kid}", "kid": kid, "use": "sig"},
        created_at=created_at,
    )


def an_event(user: User) -> Envelope:
    data = example(UserRegistered, user_id=user.id, username=user.username, display_name=user.display_name)
    return Envelope.wrap(data, source="auth", key=str(user.id))


def _ids(envelopes: list[Envelope]) -> list[uuid.UUID]:
    return [envelope.id for envelope in envelopes]


class StoreContract:
    """The behaviour every ``AuthStore`` guarantees (see chat_auth.service.ports.Tx)."""

    async def emitted(self, store: AuthStore) -> list[Envelope]:
        """Every event ``store`` committed to its outbox, oldest first."""
        raise NotImplementedError

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

    # single-use tokens

    async def test_a_jti_is_consumed_only_once(self, store: AuthStore) -> None:
        expires_at = T0 + timedelta(minutes=5)
        async with store.transaction() as tx:
            assert await tx.consume_jti("jti-1", expires_at) is True
            assert await tx.consume_jti("jti-1", expires_at) is False
        async with store.transaction() as tx:
            assert await tx.consume_jti("jti-1", expires_at) is False
            assert await tx.consume_jti("jti-2", expires_at) is True

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
        assert _ids(emitted) == [first.id, second.id]
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
        assert _ids(await self.emitted(store)) == [kept.id]
