"""Accounts: users, avatars, identities, sessions, refresh tokens, codes, signing keys, OIDC, throttling.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A migration is a snapshot: these lists are copied here, not imported from the domain, so that a later change
# to the domain needs a new migration (a test checks the two agree).
AUTH_METHODS = ("password", "google", "totp", "refresh")
CODE_PURPOSES = ("verify_email", "reset_password")
REVOCATION_REASONS = (
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
)


def _one_of(column: str, values: Sequence[str]) -> sa.ColumnElement[bool]:
    return sa.column(column, sa.String).in_(values)


def _timestamp(name: str, *, nullable: bool = False) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("email_normalized", sa.String(320), nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("username_normalized", sa.String(64), nullable=False),
        sa.Column("display_name", sa.String(100), nullable=False),
        sa.Column("password_hash", sa.String(500), nullable=True),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        _timestamp("email_verified_at", nullable=True),
        sa.Column("totp_secret_encrypted", sa.LargeBinary, nullable=True),
        _timestamp("totp_enabled_at", nullable=True),
        sa.Column("totp_last_step", sa.BigInteger, nullable=True),
        sa.Column("avatar_version", sa.Integer, nullable=False, server_default="0"),
        _timestamp("disabled_at", nullable=True),
        sa.UniqueConstraint("email_normalized", name="users_email_normalized_key"),
        sa.UniqueConstraint("username_normalized", name="users_username_normalized_key"),
        sa.CheckConstraint("avatar_version >= 0", name="users_avatar_version_check"),
        sa.CheckConstraint("totp_last_step >= 0", name="users_totp_last_step_check"),
        # TOTP cannot be on without a secret to check codes against.
        sa.CheckConstraint(
            "totp_enabled_at IS NULL OR totp_secret_encrypted IS NOT NULL", name="users_totp_secret_check"
        ),
    )

    op.create_table(
        "avatars",
        sa.Column(
            "user_id",
            postgresql.UUID(as_uuid=True),
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("content_type", sa.String(100), nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )

    op.create_table(
        "identities",
        sa.Column("issuer", sa.String(500), nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column(
            "user_id",
            postgresql.UUID(as_uuid=True),
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("email", sa.String(320), nullable=False),
        _timestamp("created_at"),
        sa.PrimaryKeyConstraint("issuer", "subject", name="identities_pkey"),
    )
    op.create_index("identities_user_id", "identities", ["user_id"])

    op.create_table(
        "sessions",
        sa.Column("id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column(
            "user_id",
            postgresql.UUID(as_uuid=True),
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            nullable=False,
        ),
        _timestamp("created_at"),
        _timestamp("last_used_at"),
        _timestamp("expires_at"),
        sa.Column("auth_method", sa.String(20), nullable=False),
        sa.Column("user_agent", sa.String(300), nullable=False, server_default=""),
        sa.Column("ip", sa.String(64), nullable=False, server_default=""),
        _timestamp("revoked_at", nullable=True),
        sa.Column("revoked_reason", sa.String(40), nullable=True),
        sa.CheckConstraint(_one_of("auth_method", AUTH_METHODS), name="sessions_auth_method_check"),
        sa.CheckConstraint(_one_of("revoked_reason", REVOCATION_REASONS), name="sessions_revoked_reason_check"),
    )
    op.create_index("sessions_user_id", "sessions", ["user_id"])

    op.create_table(
        "refresh_tokens",
        sa.Column("token_hash", sa.LargeBinary, primary_key=True),
        sa.Column(
            "session_id",
            postgresql.UUID(as_uuid=True),
            sa.ForeignKey("sessions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        _timestamp("created_at"),
        _timestamp("expires_at"),
        _timestamp("used_at", nullable=True),
    )
    op.create_index("refresh_tokens_session_id", "refresh_tokens", ["session_id"])

    op.create_table(
        "email_codes",
        sa.Column("id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column(
            "user_id",
            postgresql.UUID(as_uuid=True),
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("purpose", sa.String(20), nullable=False),
        sa.Column("code_hash", sa.LargeBinary, nullable=False),
        _timestamp("created_at"),
        _timestamp("expires_at"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        _timestamp("consumed_at", nullable=True),
        sa.CheckConstraint(_one_of("purpose", CODE_PURPOSES), name="email_codes_purpose_check"),
        sa.CheckConstraint("attempts >= 0", name="email_codes_attempts_check"),
    )
    op.create_index(
        "email_codes_user_purpose_created",
        "email_codes",
        ["user_id", "purpose", sa.text("created_at DESC")],
    )

    op.create_table(
        "recovery_codes",
        sa.Column(
            "user_id",
            postgresql.UUID(as_uuid=True),
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("code_hash", sa.LargeBinary, nullable=False),
        _timestamp("used_at", nullable=True),
        sa.PrimaryKeyConstraint("user_id", "code_hash", name="recovery_codes_pkey"),
    )

    op.create_table(
        "used_jtis",
        sa.Column("jti", sa.String(200), primary_key=True),
        _timestamp("expires_at"),
    )
    op.create_index("used_jtis_expires_at", "used_jtis", ["expires_at"])

    op.create_table(
        "signing_keys",
        sa.Column("kid", sa.String(100), primary_key=True),
        sa.Column("private_key_encrypted", sa.LargeBinary, nullable=False),
        sa.Column("public_jwk", postgresql.JSONB, nullable=False),
        _timestamp("created_at"),
        _timestamp("retired_at", nullable=True),
    )

    op.create_table(
        "oidc_states",
        sa.Column("state_hash", sa.LargeBinary, primary_key=True),
        sa.Column("browser_hash", sa.LargeBinary, nullable=False),
        sa.Column("nonce", sa.String(200), nullable=False),
        sa.Column("code_verifier", sa.String(200), nullable=False),
        sa.Column("return_to", sa.String(2048), nullable=False),
        _timestamp("created_at"),
        _timestamp("expires_at"),
        sa.Column("extra", postgresql.JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
    )
    op.create_index("oidc_states_expires_at", "oidc_states", ["expires_at"])

    op.create_table(
        "throttle_hits",
        sa.Column("key", sa.String(300), nullable=False),
        _timestamp("window_start"),
        sa.Column("count", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("key", "window_start", name="throttle_hits_pkey"),
        sa.CheckConstraint("count > 0", name="throttle_hits_count_check"),
    )
    # Stale windows are deleted by age across all keys; the primary key cannot serve that.
    op.create_index("throttle_hits_window_start", "throttle_hits", ["window_start"])

    op.create_table(
        "throttle_failures",
        sa.Column("key", sa.String(300), primary_key=True),
        sa.Column("count", sa.Integer, nullable=False),
        _timestamp("last_at"),
        sa.CheckConstraint("count > 0", name="throttle_failures_count_check"),
    )


def downgrade() -> None:
    op.drop_table("throttle_failures")
    op.drop_index("throttle_hits_window_start", table_name="throttle_hits")
    op.drop_table("throttle_hits")
    op.drop_index("oidc_states_expires_at", table_name="oidc_states")
    op.drop_table("oidc_states")
    op.drop_table("signing_keys")
    op.drop_index("used_jtis_expires_at", table_name="used_jtis")
    op.drop_table("used_jtis")
    op.drop_table("recovery_codes")
    op.drop_index("email_codes_user_purpose_created", table_name="email_codes")
    op.drop_table("email_codes")
    op.drop_index("refresh_tokens_session_id", table_name="refresh_tokens")
    op.drop_table("refresh_tokens")
    op.drop_index("sessions_user_id", table_name="sessions")
    op.drop_table("sessions")
    op.drop_index("identities_user_id", table_name="identities")
    op.drop_table("identities")
    op.drop_table("avatars")
    op.drop_table("users")
