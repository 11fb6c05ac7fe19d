"""The auth service's records. Frozen dataclasses: a change is a new value written back through the store."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

AuthMethod = Literal["password", "google", "totp", "refresh"]
CodePurpose = Literal["verify_email", "reset_password"]
RevocationReason = Literal[
    "logout",
    "logout_all",
    "ended",
    "ended_others",
    "password_changed",
    "password_reset",
    "account_disabled",
    "account_deleted",
    "refresh_reuse",
    "expired",
]


@dataclass(frozen=True, slots=True)
class User:
    """An account. ``email_normalized`` and ``username_normalized`` are the unique keys."""

    id: uuid.UUID
    email: str
    email_normalized: str
    username: str
    username_normalized: str
    display_name: str
    password_hash: str | None
    created_at: datetime
    updated_at: datetime
    email_verified_at: datetime | None = None
    totp_secret_encrypted: bytes | None = None
    totp_enabled_at: datetime | None = None
    totp_last_step: int | None = None
    avatar_version: int = 0
    disabled_at: datetime | None = None

    @property
    def email_verified(self) -> bool:
        return self.email_verified_at is not None

    @property
    def totp_enabled(self) -> bool:
        return self.totp_enabled_at is not None


@dataclass(frozen=True, slots=True)
class Session:
    """One signed-in device: a refresh-token family. Ending it revokes every token of the family."""

    id: uuid.UUID
    user_id: uuid.UUID
    created_at: datetime
    last_used_at: datetime
    expires_at: datetime
    auth_method: AuthMethod
    user_agent: str = ""
    ip: str = ""
    revoked_at: datetime | None = None
    revoked_reason: RevocationReason | None = None

    def active(self, now: datetime) -> bool:
        return self.revoked_at is None and now < self.expires_at


@dataclass(frozen=True, slots=True)
class RefreshToken:
    """A refresh token, known only by the SHA-256 of its value; ``used_at`` is set when it is rotated."""

    token_hash: bytes
    session_id: uuid.UUID
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class EmailCode:
    """A 6-digit code sent by email, stored as an HMAC bound to its user and purpose."""

    id: uuid.UUID
    user_id: uuid.UUID
    purpose: CodePurpose
    code_hash: bytes
    created_at: datetime
    expires_at: datetime
    attempts: int = 0
    consumed_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class SigningKey:
    """An Ed25519 signing key; the private half is encrypted at rest. Retired keys stay published a while;
    a withdrawn one (leaked) is published no more, its private half erased, and only its kid remembered."""

    kid: str
    private_key_encrypted: bytes
    public_jwk: dict[str, Any]
    created_at: datetime
    retired_at: datetime | None = None
    withdrawn_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Identity:
    """An external identity (OIDC issuer + subject) linked to an account."""

    issuer: str
    subject: str
    user_id: uuid.UUID
    email: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Failures:
    """Consecutive failed attempts under one throttling key."""

    count: int = 0
    last_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class OidcState:
    """A pending OIDC sign-in: single use, bound to the browser that started it."""

    state_hash: bytes
    browser_hash: bytes
    nonce: str
    code_verifier: str
    return_to: str
    created_at: datetime
    expires_at: datetime
    extra: dict[str, Any] = field(default_factory=dict)
