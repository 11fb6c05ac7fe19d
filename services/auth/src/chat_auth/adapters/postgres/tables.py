"""The auth database's tables as SQLAlchemy Core objects, for building queries.

Migrations own the schema; this module mirrors migration head (a test compares the two).
"""

from __future__ import annotations

from datetime import datetime
from typing import get_args

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    UniqueConstraint,
    column,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID

from chat_auth.domain.model import AuthMethod, CodePurpose, RevocationReason
from chat_runtime.outbox import outbox_table
from chat_runtime.pg_throttle import UtcDateTime, throttle_tables

EMAIL_TAKEN = "users_email_normalized_key"
USERNAME_TAKEN = "users_username_normalized_key"
IDENTITY_TAKEN = "identities_pkey"

metadata = MetaData()

outbox = outbox_table(metadata)


def _at(name: str, *, nullable: bool = False) -> Column[datetime]:
    return Column(name, UtcDateTime(), nullable=nullable)


def _user_fk() -> ForeignKey:
    return ForeignKey("users.id", ondelete="CASCADE")


users = Table(
    "users",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("email", String(320), nullable=False),
    Column("email_normalized", String(320), nullable=False),
    Column("username", String(64), nullable=False),
    Column("username_normalized", String(64), nullable=False),
    Column("display_name", String(100), nullable=False),
    Column("password_hash", String(500), nullable=True),
    _at("created_at"),
    _at("updated_at"),
    _at("email_verified_at", nullable=True),
    Column("totp_secret_encrypted", LargeBinary, nullable=True),
    _at("totp_enabled_at", nullable=True),
    Column("totp_last_step", BigInteger, nullable=True),
    Column("avatar_version", Integer, nullable=False, server_default=text("0")),
    _at("disabled_at", nullable=True),
    UniqueConstraint("email_normalized", name=EMAIL_TAKEN),
    UniqueConstraint("username_normalized", name=USERNAME_TAKEN),
    CheckConstraint("avatar_version >= 0", name="users_avatar_version_check"),
    CheckConstraint("totp_last_step >= 0", name="users_totp_last_step_check"),
    CheckConstraint("totp_enabled_at IS NULL OR totp_secret_encrypted IS NOT NULL", name="users_totp_secret_check"),
)

avatars = Table(
    "avatars",
    metadata,
    Column("user_id", UUID(as_uuid=True), _user_fk(), primary_key=True),
    Column("content_type", String(100), nullable=False),
    Column("data", LargeBinary, nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False, server_default=func.now()),
)

identities = Table(
    "identities",
    metadata,
    Column("issuer", String(500), nullable=False),
    Column("subject", String(255), nullable=False),
    Column("user_id", UUID(as_uuid=True), _user_fk(), nullable=False),
    Column("email", String(320), nullable=False),
    _at("created_at"),
    PrimaryKeyConstraint("issuer", "subject", name=IDENTITY_TAKEN),
    Index("identities_user_id", "user_id"),
)

sessions = Table(
    "sessions",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("user_id", UUID(as_uuid=True), _user_fk(), nullable=False),
    _at("created_at"),
    _at("last_used_at"),
    _at("expires_at"),
    Column("auth_method", String(20), nullable=False),
    Column("user_agent", String(300), nullable=False, server_default=text("''")),
    Column("ip", String(64), nullable=False, server_default=text("''")),
    _at("revoked_at", nullable=True),
    Column("revoked_reason", String(40), nullable=True),
    CheckConstraint(column("auth_method", String).in_(get_args(AuthMethod)), name="sessions_auth_method_check"),
    CheckConstraint(
        column("revoked_reason", String).in_(get_args(RevocationReason)), name="sessions_revoked_reason_check"
    ),
    Index("sessions_user_id", "user_id"),
)

refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    Column("token_hash", LargeBinary, primary_key=True),
    Column("session_id", UUID(as_uuid=True), ForeignKey("sessions.id", ondelete="CASCADE"), nullable=False),
    _at("created_at"),
    _at("expires_at"),
    _at("used_at", nullable=True),
    Index("refresh_tokens_session_id", "session_id"),
)

email_codes = Table(
    "email_codes",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("user_id", UUID(as_uuid=True), _user_fk(), nullable=False),
    Column("purpose", String(20), nullable=False),
    Column("code_hash", LargeBinary, nullable=False),
    _at("created_at"),
    _at("expires_at"),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    _at("consumed_at", nullable=True),
    CheckConstraint(column("purpose", String).in_(get_args(CodePurpose)), name="email_codes_purpose_check"),
    CheckConstraint("attempts >= 0", name="email_codes_attempts_check"),
)
Index(
    "email_codes_user_purpose_created",
    email_codes.c.user_id,
    email_codes.c.purpose,
    email_codes.c.created_at.desc(),
)

recovery_codes = Table(
    "recovery_codes",
    metadata,
    Column("user_id", UUID(as_uuid=True), _user_fk(), nullable=False),
    Column("code_hash", LargeBinary, nullable=False),
    _at("used_at", nullable=True),
    PrimaryKeyConstraint("user_id", "code_hash", name="recovery_codes_pkey"),
)

used_jtis = Table(
    "used_jtis",
    metadata,
    Column("jti", String(200), primary_key=True),
    _at("expires_at"),
    Index("used_jtis_expires_at", "expires_at"),
)

signing_keys = Table(
    "signing_keys",
    metadata,
    Column("kid", String(100), primary_key=True),
    Column("private_key_encrypted", LargeBinary, nullable=False),
    Column("public_jwk", JSONB, nullable=False),
    _at("created_at"),
    _at("retired_at", nullable=True),
    _at("withdrawn_at", nullable=True),
)

oidc_states = Table(
    "oidc_states",
    metadata,
    Column("state_hash", LargeBinary, primary_key=True),
    Column("browser_hash", LargeBinary, nullable=False),
    Column("nonce", String(200), nullable=False),
    Column("code_verifier", String(200), nullable=False),
    Column("return_to", String(2048), nullable=False),
    _at("created_at"),
    _at("expires_at"),
    Column("extra", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Index("oidc_states_expires_at", "expires_at"),
)


throttle_hits, throttle_failures = throttle_tables(metadata)
