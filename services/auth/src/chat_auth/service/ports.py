"""What the use cases need from the outside: the store (one transaction at a time), a mailer, a clock.

The PostgreSQL store (adapters/postgres/store.py) and the in-memory fake (testing/fakes.py) implement
``AuthStore``; the same scenario suite runs against both.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from chat_auth.domain.model import (
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
from chat_contracts.envelope import Envelope

Clock = Callable[[], datetime]
"""Returns the current time, timezone-aware UTC."""


class Tx(Protocol):
    """One database transaction. Everything written through it commits or rolls back together, events included.

    Methods that read a row which the caller may then change (``user_by_id(..., for_update=True)``,
    ``refresh_token``, ``active_code``) lock it until the transaction ends, so concurrent requests serialize.
    """

    # accounts
    async def add_user(self, user: User) -> None:
        """Insert; raises ``Conflict("email")`` or ``Conflict("username")`` when taken."""

    async def user_by_id(self, user_id: uuid.UUID, *, for_update: bool = False) -> User | None: ...

    async def user_by_email(self, email_normalized: str) -> User | None: ...

    async def user_by_username(self, username_normalized: str) -> User | None: ...

    async def update_user(self, user: User) -> None:
        """Write every field of ``user`` back; raises ``Conflict("username")`` when the new one is taken."""

    async def delete_user(self, user_id: uuid.UUID) -> None:
        """Delete the account and everything that belongs to it (sessions, tokens, codes, identities, avatar)."""

    # avatars
    async def set_avatar(self, user_id: uuid.UUID, *, content_type: str, data: bytes) -> None: ...

    async def avatar(self, user_id: uuid.UUID) -> tuple[str, bytes] | None: ...

    async def delete_avatar(self, user_id: uuid.UUID) -> None: ...

    # external identities
    async def add_identity(self, identity: Identity) -> None:
        """Insert; raises ``Conflict("identity")`` when (issuer, subject) is already linked."""

    async def identity(self, issuer: str, subject: str) -> Identity | None: ...

    async def identities_of(self, user_id: uuid.UUID) -> Sequence[Identity]: ...

    # sessions and refresh tokens
    async def add_session(self, session: Session) -> None: ...

    async def session(self, session_id: uuid.UUID, *, for_update: bool = False) -> Session | None: ...

    async def update_session(self, session: Session) -> None: ...

    async def sessions_of(self, user_id: uuid.UUID) -> Sequence[Session]:
        """Every session of the user, newest first (revoked and expired ones included)."""

    async def revoke_sessions(
        self, user_id: uuid.UUID, *, reason: RevocationReason, at: datetime, keep: uuid.UUID | None = None
    ) -> Sequence[uuid.UUID]:
        """Revoke every active session of the user except ``keep``; returns the ids revoked."""

    async def add_refresh_token(self, token: RefreshToken) -> None: ...

    async def refresh_token(self, token_hash: bytes) -> RefreshToken | None:
        """The token with this hash, locked for the rest of the transaction."""

    async def mark_refresh_token_used(self, token_hash: bytes, at: datetime) -> None: ...

    # email codes
    async def add_code(self, code: EmailCode) -> None:
        """Insert a code; earlier unconsumed codes of the same user and purpose stop working."""

    async def active_code(self, user_id: uuid.UUID, purpose: CodePurpose, now: datetime) -> EmailCode | None:
        """The newest unconsumed, unexpired code for this user and purpose, locked."""

    async def update_code(self, code: EmailCode) -> None: ...

    # TOTP recovery codes
    async def replace_recovery_codes(self, user_id: uuid.UUID, code_hashes: Sequence[bytes]) -> None: ...

    async def use_recovery_code(self, user_id: uuid.UUID, code_hash: bytes, at: datetime) -> bool:
        """Mark an unused recovery code used; False when there is no such unused code."""

    async def recovery_codes_left(self, user_id: uuid.UUID) -> int: ...

    # single-use tokens (mfa, reset): remembered by jti until they expire
    async def consume_jti(self, jti: str, expires_at: datetime) -> bool:
        """Record ``jti`` as used; False when it was used before."""

    # signing keys
    async def signing_keys(self) -> Sequence[SigningKey]:
        """Every key not withdrawn, newest first."""

    async def signing_key(self, kid: str) -> SigningKey | None:
        """The key ``kid``, withdrawn or not; None when there is none (never was, or deleted after its grace)."""

    async def add_signing_key(self, key: SigningKey) -> None: ...

    async def retire_signing_key(self, kid: str, at: datetime) -> None: ...

    async def withdraw_signing_key(self, kid: str, at: datetime) -> None:
        """Withdraw ``kid``: no longer listed, retired if it was not, its private half erased; kept as a record."""

    async def withdrawn_signing_kids(self) -> Sequence[str]: ...

    async def delete_signing_keys_retired_before(self, before: datetime) -> int:
        """Delete the keys retired before ``before``, except withdrawn ones; how many went."""

    # OIDC
    async def add_oidc_state(self, state: OidcState) -> None: ...

    async def take_oidc_state(self, state_hash: bytes) -> OidcState | None:
        """Delete and return the state (single use)."""

    # throttling
    async def hit(self, key: str, *, window: timedelta, now: datetime) -> int:
        """Count one event under ``key`` in the fixed window containing ``now``; returns the count so far."""

    async def failures(self, key: str) -> Failures: ...

    async def record_failure(self, key: str, now: datetime) -> Failures: ...

    async def clear_failures(self, key: str) -> None: ...

    # events
    async def emit(self, envelope: Envelope, *, topic: str) -> None:
        """Queue an event in the outbox of this transaction."""


class AuthStore(Protocol):
    """Hands out transactions; ``after_commit`` wakes the outbox relay."""

    def transaction(self) -> AbstractAsyncContextManager[Tx]: ...


@dataclass(frozen=True, slots=True)
class Email:
    """One message to one recipient."""

    to: str
    subject: str
    text: str
    html: str
    code: str | None = None
    """The one-time code the email carries, if any (dev mode prints it as one line)."""


class Mailer(Protocol):
    """Sends email; raises on failure so the caller can decide (codes are re-requestable)."""

    async def send(self, email: Email) -> None: ...
