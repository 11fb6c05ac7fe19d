"""The rooms database's tables as SQLAlchemy Core objects, for building queries.

Migrations own the schema; this module mirrors migration head (a test compares the two).

User ids are plain uuids with no foreign key to ``users``: that table is a projection of chat.users.events,
and events about users and rooms arrive in any order, so a membership may well name a user not yet projected.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Final, get_args

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    UniqueConstraint,
    column,
    false,
    text,
)
from sqlalchemy.dialects.postgresql import UUID

from chat_rooms.domain.model import History, Role, RoomKind
from chat_runtime.outbox import outbox_table
from chat_runtime.pg_throttle import UtcDateTime, throttle_tables

DM_KEY_TAKEN: Final = "rooms_dm_key_key"
MEMBERSHIP_TAKEN: Final = "memberships_pkey"
USERNAME_TAKEN: Final = "users_username_key_key"

LISTED_KINDS: Final[tuple[RoomKind, ...]] = ("public", "password")
"""Kinds the public directory lists (unarchived rooms only)."""
LISTED: Final = "archived_at IS NULL AND kind IN ('public', 'password')"
"""Predicate of the directory's partial indexes. The directory query must state it with literal values (not
bound parameters) so that the planner can prove it implies this predicate, whatever plan it caches."""

NAME_KEY_MAX: Final = 600
"""``name_key`` is cut to this many characters: NFKC can expand one character to eighteen, and a btree entry
must stay under about 2.7 kB (600 characters of at most 4 bytes, plus the id). Real names never come close."""

metadata = MetaData()

outbox = outbox_table(metadata)


def _at(name: str, *, nullable: bool = False) -> Column[datetime]:
    return Column(name, UtcDateTime(), nullable=nullable)


def _uuid(name: str, *, nullable: bool = False) -> Column[uuid.UUID]:
    return Column(name, UUID(as_uuid=True), nullable=nullable)


def _room_fk() -> ForeignKey:
    return ForeignKey("rooms.id", ondelete="CASCADE")


rooms = Table(
    "rooms",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("kind", String(20), nullable=False),
    Column("name", String(100), nullable=True),
    # search_key(name or ""), computed by the store (Python's casefold has no SQL equivalent); "C" collation
    # so that the order is code-point order in every deployment, and prefix LIKE can use the btree.
    Column("name_key", String(NAME_KEY_MAX, collation="C"), nullable=False),
    Column("topic", String(1000), nullable=True),
    Column("description", String(2000), nullable=True),
    Column("avatar_url", String(2048), nullable=True),
    Column("history", String(20), nullable=False),
    _uuid("created_by"),
    _at("created_at"),
    _at("updated_at"),
    Column("version", Integer, nullable=False),
    Column("password_hash", String(500), nullable=True),
    _at("archived_at", nullable=True),
    Column("dm_key", String(100), nullable=True),
    Column("member_count", Integer, nullable=False),
    Column("blocked", Boolean, nullable=False, server_default=false()),
    UniqueConstraint("dm_key", name=DM_KEY_TAKEN),
    CheckConstraint(column("kind", String).in_(get_args(RoomKind)), name="rooms_kind_check"),
    CheckConstraint(column("history", String).in_(get_args(History)), name="rooms_history_check"),
    CheckConstraint("version >= 1", name="rooms_version_check"),
    CheckConstraint("member_count >= 0", name="rooms_member_count_check"),
    CheckConstraint("(kind = 'direct') = (dm_key IS NOT NULL)", name="rooms_dm_key_check"),
    CheckConstraint("kind <> 'password' OR password_hash IS NOT NULL", name="rooms_password_hash_check"),
    CheckConstraint("kind = 'direct' OR NOT blocked", name="rooms_blocked_check"),
)
Index(
    "rooms_directory_name_trgm",
    rooms.c.name_key,
    postgresql_using="gin",
    postgresql_ops={"name_key": "gin_trgm_ops"},
    postgresql_where=text(LISTED),
)
Index("rooms_directory_order", rooms.c.name_key, rooms.c.id, postgresql_where=text(LISTED))

memberships = Table(
    "memberships",
    metadata,
    Column("room_id", UUID(as_uuid=True), _room_fk(), nullable=False),
    _uuid("user_id"),
    Column("role", String(20), nullable=False),
    _at("joined_at"),
    PrimaryKeyConstraint("room_id", "user_id", name=MEMBERSHIP_TAKEN),
    CheckConstraint(column("role", String).in_(get_args(Role)), name="memberships_role_check"),
)
Index("memberships_room_joined", memberships.c.room_id, memberships.c.joined_at, memberships.c.user_id)
Index(
    "memberships_user_joined",
    memberships.c.user_id,
    memberships.c.joined_at.desc(),
    memberships.c.room_id.desc(),
)

invitations = Table(
    "invitations",
    metadata,
    Column("room_id", UUID(as_uuid=True), _room_fk(), nullable=False),
    _uuid("user_id"),
    _uuid("invited_by"),
    _at("created_at"),
    PrimaryKeyConstraint("room_id", "user_id", name="invitations_pkey"),
)
Index("invitations_user_created", invitations.c.user_id, invitations.c.created_at.desc())

bans = Table(
    "bans",
    metadata,
    Column("room_id", UUID(as_uuid=True), _room_fk(), nullable=False),
    _uuid("user_id"),
    _uuid("banned_by"),
    Column("reason", String(500), nullable=True),
    _at("created_at"),
    PrimaryKeyConstraint("room_id", "user_id", name="bans_pkey"),
)

users = Table(
    "users",
    metadata,
    Column("user_id", UUID(as_uuid=True), primary_key=True),
    Column("username", String(64), nullable=False),
    # username.casefold(); NULL once another user has taken the username (the newer claim wins the lookup).
    Column("username_key", String(200), nullable=True),
    Column("display_name", String(100), nullable=False),
    _at("updated_at"),
    Column("avatar_url", String(2048), nullable=True),
    UniqueConstraint("username_key", name=USERNAME_TAKEN),
)

contacts = Table(
    "contacts",
    metadata,
    _uuid("user_low"),
    _uuid("user_high"),
    _uuid("requested_by"),
    _at("created_at"),
    _at("accepted_at", nullable=True),
    PrimaryKeyConstraint("user_low", "user_high", name="contacts_pkey"),
    CheckConstraint("user_low < user_high", name="contacts_order_check"),
    CheckConstraint("requested_by IN (user_low, user_high)", name="contacts_requested_by_check"),
    Index("contacts_user_high", "user_high"),
)

blocks = Table(
    "blocks",
    metadata,
    _uuid("blocker"),
    _uuid("blocked"),
    _at("created_at"),
    PrimaryKeyConstraint("blocker", "blocked", name="blocks_pkey"),
    Index("blocks_blocked", "blocked"),
)


throttle_hits, throttle_failures = throttle_tables(metadata)

processed_events = Table(
    "processed_events",
    metadata,
    Column("event_id", UUID(as_uuid=True), primary_key=True),
    _at("processed_at"),
    Index("processed_events_processed_at", "processed_at"),
)
