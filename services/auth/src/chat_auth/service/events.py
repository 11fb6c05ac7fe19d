"""The user events the auth service emits, written to the outbox in the same transaction as the change."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from chat_auth.domain.model import RevocationReason, User
from chat_auth.service.ports import Tx
from chat_contracts.envelope import Envelope
from chat_contracts.fields import MAX_SESSION_IDS
from chat_contracts.topics import USERS_EVENTS
from chat_contracts.users import (
    SessionRevocationReason,
    SigningKeyWithdrawn,
    UserDeleted,
    UserRegistered,
    UserSessionsRevoked,
    UserUpdated,
)
from chat_runtime.logging import current_correlation_id

SOURCE = "auth"

_REASONS: dict[RevocationReason, SessionRevocationReason] = {
    "logout": "logout",
    "logout_all": "logout_all",
    "ended": "session_ended",
    "ended_others": "session_ended",
    "password_changed": "password_changed",
    "password_reset": "password_reset",
    "account_disabled": "account_disabled",
    "account_deleted": "account_deleted",
    "refresh_reuse": "refresh_reuse",
    "expired": "session_ended",
}


def avatar_url(user: User) -> str | None:
    return f"/api/auth/users/{user.id}/avatar?v={user.avatar_version}" if user.avatar_version else None


async def _emit(
    tx: Tx, data: UserRegistered | UserUpdated | UserDeleted | UserSessionsRevoked | SigningKeyWithdrawn
) -> None:
    envelope = Envelope.wrap(
        data, source=SOURCE, key=USERS_EVENTS.key_of(data), correlation_id=current_correlation_id()
    )
    await tx.emit(envelope, topic=USERS_EVENTS.name)


async def registered(tx: Tx, user: User, now: datetime) -> None:
    await _emit(
        tx,
        UserRegistered(
            user_id=user.id,
            username=user.username,
            display_name=user.display_name,
            email_verified=user.email_verified,
            occurred_at=now,
        ),
    )


async def updated(tx: Tx, user: User, now: datetime) -> None:
    await _emit(
        tx,
        UserUpdated(
            user_id=user.id,
            username=user.username,
            display_name=user.display_name,
            avatar_url=avatar_url(user),
            email_verified=user.email_verified,
            occurred_at=now,
        ),
    )


async def deleted(tx: Tx, user_id: uuid.UUID, now: datetime) -> None:
    await _emit(tx, UserDeleted(user_id=user_id, occurred_at=now))


async def sessions_revoked(
    tx: Tx,
    user_id: uuid.UUID,
    session_ids: Sequence[uuid.UUID] | None,
    reason: RevocationReason,
    now: datetime,
) -> None:
    """Announce ended sessions (None: every session of the user), in as many events as the contract's limit
    on ids per event needs: an account with more sessions than that still has every one of them ended."""
    if session_ids is None:
        await _emit(tx, UserSessionsRevoked(user_id=user_id, reason=_REASONS[reason], occurred_at=now))
        return
    ids = tuple(session_ids)
    for start in range(0, len(ids), MAX_SESSION_IDS):
        chunk = ids[start : start + MAX_SESSION_IDS]
        await _emit(
            tx, UserSessionsRevoked(user_id=user_id, session_ids=chunk, reason=_REASONS[reason], occurred_at=now)
        )


async def signing_key_withdrawn(tx: Tx, kid: str, now: datetime) -> None:
    """Announce a withdrawn signing key: every verifier refuses its tokens from the moment it reads this."""
    await _emit(tx, SigningKeyWithdrawn(kid=kid, occurred_at=now))
