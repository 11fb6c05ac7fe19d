"""Events on ``chat.users.events``: account facts the auth service publishes for everyone else.

Key: ``user_id``, so every event about one account is ordered (``key.withdrawn``, about no account, is
keyed by its ``kid``). Ids are ``uuid.UUID`` (see
``chat_contracts.fields`` for why). Email addresses and anything secret stay inside the auth service: the bus
carries only what other services need to show a user and to end their sessions.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal, TypeAlias

from pydantic import Field, StringConstraints

from chat_contracts.base import Contract
from chat_contracts.fields import (
    MAX_SESSION_IDS,
    AvatarUrl,
    DisplayName,
    SessionId,
    UserId,
    Username,
    UtcDatetime,
)

SessionRevocationReason: TypeAlias = Literal[
    "logout",
    "logout_all",
    "password_changed",
    "password_reset",
    "account_disabled",
    "refresh_reuse",
    "admin",
    "session_ended",
    "account_deleted",
]


class UserRegistered(Contract):
    """An account was created."""

    type: Literal["user.registered"] = "user.registered"
    user_id: UserId
    username: Username
    display_name: DisplayName
    email_verified: bool
    occurred_at: UtcDatetime


class UserUpdated(Contract):
    """The public profile changed; carries the whole profile, so consumers overwrite rather than merge."""

    type: Literal["user.updated"] = "user.updated"
    user_id: UserId
    username: Username
    display_name: DisplayName
    avatar_url: AvatarUrl | None = None
    occurred_at: UtcDatetime
    email_verified: bool | None = None


class UserDeleted(Contract):
    """The account is gone: its sessions are over and consumers drop what they hold about it."""

    type: Literal["user.deleted"] = "user.deleted"
    user_id: UserId
    occurred_at: UtcDatetime


class UserSessionsRevoked(Contract):
    """Sessions ended; the gateway closes their sockets.

    ``session_ids`` lists the ended sessions; ``None`` means every session of the user.
    """

    type: Literal["user.sessions_revoked"] = "user.sessions_revoked"
    user_id: UserId
    session_ids: Annotated[tuple[SessionId, ...], Field(min_length=1, max_length=MAX_SESSION_IDS)] | None = None
    reason: SessionRevocationReason
    occurred_at: UtcDatetime


KeyId = Annotated[str, StringConstraints(min_length=1, max_length=256, pattern=r"^[A-Za-z0-9_-]+$")]
"""A signing key's ``kid`` as the auth service makes them (base64url) and verifiers accept them (at most 256)."""


class SigningKeyWithdrawn(Contract):
    """A token signing key was withdrawn (leaked): every verifier refuses the tokens it signed, at once.

    Unlike a routine rotation, which lets a retired key's tokens live out their lifetime, this ends them all;
    the gateway closes the sockets that authenticated with one.
    """

    KEY_FIELD: ClassVar[str] = "kid"
    type: Literal["key.withdrawn"] = "key.withdrawn"
    kid: KeyId
    occurred_at: UtcDatetime


UserEvent: TypeAlias = Annotated[
    UserRegistered | UserUpdated | UserDeleted | UserSessionsRevoked | SigningKeyWithdrawn,
    Field(discriminator="type"),
]

PAYLOADS: tuple[type[Contract], ...] = (
    UserRegistered,
    UserUpdated,
    UserDeleted,
    UserSessionsRevoked,
    SigningKeyWithdrawn,
)
