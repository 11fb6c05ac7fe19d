"""Rooms: rooms, memberships, invitations, bans, the users projection, contacts, blocks, throttling, consumed events.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
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
ROOM_KINDS = ("public", "private", "password", "direct", "group_dm")
HISTORIES = ("shared", "joined")
ROLES = ("owner", "admin", "member")
LISTED = "archived_at IS NULL AND kind IN ('public', 'password')"
NAME_KEY_MAX = 600


def _one_of(column: str, values: Sequence[str]) -> sa.ColumnElement[bool]:
    return sa.column(column, sa.String).in_(values)


def _timestamp(name: str, *, nullable: bool = False) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _uuid(name: str) -> sa.Column[object]:
    return sa.Column(name, postgresql.UUID(as_uuid=True), nullable=False)


def _room_id() -> sa.Column[object]:
    return sa.Column(
        "room_id", postgresql.UUID(as_uuid=True), sa.ForeignKey("rooms.id", ondelete="CASCADE"), nullable=False
    )


def upgrade() -> None:
    # Trigram indexes make "name contains" searches indexed. pg_trgm is a trusted extension: the database's
    # owner may create it without being a superuser.
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")

    op.create_table(
        "rooms",
        sa.Column("id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("name", sa.String(100), nullable=True),
        sa.Column("name_key", sa.String(NAME_KEY_MAX, collation="C"), nullable=False),
        sa.Column("topic", sa.String(1000), nullable=True),
        sa.Column("description", sa.String(2000), nullable=True),
        sa.Column("avatar_url", sa.String(2048), nullable=True),
        sa.Column("history", sa.String(20), nullable=False),
        _uuid("created_by"),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("password_hash", sa.String(500), nullable=True),
        _timestamp("archived_at", nullable=True),
        sa.Column("dm_key", sa.String(100), nullable=True),
        sa.Column("member_count", sa.Integer, nullable=False),
        # One direct room per pair of users: asking twice finds the first.
        sa.UniqueConstraint("dm_key", name="rooms_dm_key_key"),
        sa.CheckConstraint(_one_of("kind", ROOM_KINDS), name="rooms_kind_check"),
        sa.CheckConstraint(_one_of("history", HISTORIES), name="rooms_history_check"),
        sa.CheckConstraint("version >= 1", name="rooms_version_check"),
        sa.CheckConstraint("member_count >= 0", name="rooms_member_count_check"),
        sa.CheckConstraint("(kind = 'direct') = (dm_key IS NOT NULL)", name="rooms_dm_key_check"),
        sa.CheckConstraint("kind <> 'password' OR password_hash IS NOT NULL", name="rooms_password_hash_check"),
    )
    # The directory: only listed rooms are searched, so both indexes leave out every other room. The trigram
    # index answers "name_key LIKE '%query%'" (prefixes included); the btree walks (name_key, id) pages.
    op.create_index(
        "rooms_directory_name_trgm",
        "rooms",
        ["name_key"],
        postgresql_using="gin",
        postgresql_ops={"name_key": "gin_trgm_ops"},
        postgresql_where=sa.text(LISTED),
    )
    op.create_index("rooms_directory_order", "rooms", ["name_key", "id"], postgresql_where=sa.text(LISTED))

    op.create_table(
        "memberships",
        _room_id(),
        _uuid("user_id"),
        sa.Column("role", sa.String(20), nullable=False),
        _timestamp("joined_at"),
        sa.PrimaryKeyConstraint("room_id", "user_id", name="memberships_pkey"),
        sa.CheckConstraint(_one_of("role", ROLES), name="memberships_role_check"),
    )
    # A room's members in join order, and a user's rooms newest membership first, both paged by keyset.
    op.create_index("memberships_room_joined", "memberships", ["room_id", "joined_at", "user_id"])
    op.create_index(
        "memberships_user_joined",
        "memberships",
        ["user_id", sa.text("joined_at DESC"), sa.text("room_id DESC")],
    )

    op.create_table(
        "invitations",
        _room_id(),
        _uuid("user_id"),
        _uuid("invited_by"),
        _timestamp("created_at"),
        sa.PrimaryKeyConstraint("room_id", "user_id", name="invitations_pkey"),
    )
    op.create_index("invitations_user_created", "invitations", ["user_id", sa.text("created_at DESC")])

    op.create_table(
        "bans",
        _room_id(),
        _uuid("user_id"),
        _uuid("banned_by"),
        sa.Column("reason", sa.String(500), nullable=True),
        _timestamp("created_at"),
        sa.PrimaryKeyConstraint("room_id", "user_id", name="bans_pkey"),
    )

    op.create_table(
        "users",
        sa.Column("user_id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column("username", sa.String(64), nullable=False),
        # NULL when another user has since taken the username (UNIQUE allows any number of NULLs).
        sa.Column("username_key", sa.String(200), nullable=True),
        sa.Column("display_name", sa.String(100), nullable=False),
        _timestamp("updated_at"),
        sa.UniqueConstraint("username_key", name="users_username_key_key"),
    )

    op.create_table(
        "contacts",
        _uuid("user_low"),
        _uuid("user_high"),
        _uuid("requested_by"),
        _timestamp("created_at"),
        _timestamp("accepted_at", nullable=True),
        sa.PrimaryKeyConstraint("user_low", "user_high", name="contacts_pkey"),
        # One row a pair, whichever user asked.
        sa.CheckConstraint("user_low < user_high", name="contacts_order_check"),
        sa.CheckConstraint("requested_by IN (user_low, user_high)", name="contacts_requested_by_check"),
    )
    op.create_index("contacts_user_high", "contacts", ["user_high"])

    op.create_table(
        "blocks",
        _uuid("blocker"),
        _uuid("blocked"),
        _timestamp("created_at"),
        sa.PrimaryKeyConstraint("blocker", "blocked", name="blocks_pkey"),
    )
    # Deleting a user also drops the blocks against them.
    op.create_index("blocks_blocked", "blocks", ["blocked"])

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

    op.create_table(
        "processed_events",
        sa.Column("event_id", postgresql.UUID(as_uuid=True), primary_key=True),
        _timestamp("processed_at"),
    )
    op.create_index("processed_events_processed_at", "processed_events", ["processed_at"])


def downgrade() -> None:
    # pg_trgm stays: other objects may use it, and upgrading again finds it in place.
    op.drop_index("processed_events_processed_at", table_name="processed_events")
    op.drop_table("processed_events")
    op.drop_table("throttle_failures")
    op.drop_index("throttle_hits_window_start", table_name="throttle_hits")
    op.drop_table("throttle_hits")
    op.drop_index("blocks_blocked", table_name="blocks")
    op.drop_table("blocks")
    op.drop_index("contacts_user_high", table_name="contacts")
    op.drop_table("contacts")
    op.drop_table("users")
    op.drop_table("bans")
    op.drop_index("invitations_user_created", table_name="invitations")
    op.drop_table("invitations")
    op.drop_index("memberships_user_joined", table_name="memberships")
    op.drop_index("memberships_room_joined", table_name="memberships")
    op.drop_table("memberships")
    op.drop_index("rooms_directory_order", table_name="rooms")
    op.drop_index("rooms_directory_name_trgm", table_name="rooms")
    op.drop_table("rooms")
