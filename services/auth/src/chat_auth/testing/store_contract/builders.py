"""The users, sessions, tokens, codes, identities, keys and events the store contract stores, and a transaction
that rolls back: shared by every area of the suite and by the PostgreSQL store's own tests; and ``ReadsOutbox``,
the one hook the test module implements, for the areas that check what a store committed to its outbox.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest

from chat_auth.domain.model import (
    AuthMethod,
    CodePurpose,
    EmailCode,
    Identity,
    RefreshToken,
    RevocationReason,
    Session,
    SigningKey,
    User,
)
from chat_auth.service.ports import AuthStore, Tx
from chat_contracts.envelope import Envelope
from chat_contracts.examples import example
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


def ids_of(envelopes: list[Envelope]) -> list[uuid.UUID]:
    return [envelope.id for envelope in envelopes]


class ReadsOutbox:
    """A contract area that reads the events a store committed (each store keeps its outbox its own way)."""

    async def emitted(self, store: AuthStore) -> list[Envelope]:
        """Every event ``store`` committed to its outbox, oldest first."""
        raise NotImplementedError
