"""The rooms store on PostgreSQL: one ``engine.begin()`` block per transaction, SQLAlchemy Core queries."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import fields
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import (
    ColumnElement,
    RowMapping,
    Select,
    Table,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import insert as upsert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from chat_rooms.adapters.postgres.tables import (
    DM_KEY_TAKEN,
    LISTED,
    MEMBERSHIP_TAKEN,
    NAME_KEY_MAX,
    USERNAME_TAKEN,
    bans,
    blocks,
    contacts,
    invitations,
    memberships,
    processed_events,
    rooms,
    throttle_failures,
    throttle_hits,
    users,
)
from chat_rooms.domain import rules
from chat_rooms.domain.errors import Conflict
from chat_rooms.domain.model import (
    Ban,
    Block,
    Contact,
    Failures,
    Invitation,
    Membership,
    Room,
    RoomListing,
    UserProfile,
)
from chat_runtime import pg_throttle
from chat_runtime.pg_store import PgStore, PgTx, unique_constraint

_CONFLICTS: Final[Mapping[str, str]] = {DM_KEY_TAKEN: "dm_key", MEMBERSHIP_TAKEN: "membership"}

_ROOM_COLUMNS: Final = tuple(rooms.c[f.name] for f in fields(Room))
"""The columns a ``Room`` is read from (``name_key`` is the store's own)."""

_KEEP_PROCESSED_FOR: Final = timedelta(days=30)
"""Consumed event ids are remembered this long: far longer than any redelivery or replay the consumers expect."""
_USERNAME_ATTEMPTS: Final = 3
"""``put_user`` retries this often when a concurrent transaction committed the same username first."""
_LIKE_ESCAPE: Final = "\\"
_CUSTOM_PLANS: Final = text("SET LOCAL plan_cache_mode = force_custom_plan")


class PostgresRoomsStore(PgStore["PostgresTx"]):
    """``RoomsStore`` on PostgreSQL; ``on_commit`` runs after each commit that queued events."""

    def __init__(self, engine: AsyncEngine, *, on_commit: Callable[[], None] | None = None) -> None:
        super().__init__(engine, PostgresTx, on_commit=on_commit)


class PostgresTx(PgTx):
    """``Tx`` on one connection inside an open transaction."""

    conflicts = _CONFLICTS
    conflict = Conflict

    # rooms

    async def add_room(self, room: Room) -> None:
        await self._write_unique(insert(rooms).values(_room_columns(room)))

    async def room(self, room_id: uuid.UUID, *, for_update: bool = False) -> Room | None:
        query = select(*_ROOM_COLUMNS).where(rooms.c.id == room_id)
        if for_update:
            # FOR NO KEY UPDATE: serializes the room's writers without blocking inserts of its memberships,
            # invitations and bans (their foreign keys only take KEY SHARE on the room).
            query = query.with_for_update(key_share=True)
        return await self._one(query, Room)

    async def room_by_dm_key(self, dm_key: str) -> Room | None:
        return await self._one(select(*_ROOM_COLUMNS).where(rooms.c.dm_key == dm_key), Room)

    async def update_room(self, room: Room) -> None:
        values = _room_columns(room)
        del values["id"]
        await self._write_unique(update(rooms).where(rooms.c.id == room.id).values(values))

    async def delete_room(self, room_id: uuid.UUID) -> None:
        # Memberships, invitations and bans go with it through ON DELETE CASCADE.
        await self._db.execute(delete(rooms).where(rooms.c.id == room_id))

    async def directory(self, *, query: str | None, after: tuple[str, uuid.UUID] | None, limit: int) -> Sequence[Room]:
        # The best plan depends on the search string: a rare one wants the trigram index, a common one the walk
        # in key order. psycopg prepares statements it runs often, and PostgreSQL would then settle on one
        # generic plan for every string, so plan each search for its own values (until the transaction ends).
        await self._db.execute(_CUSTOM_PLANS)
        return await self._all(directory_query(query=query, after=after, limit=limit), Room)

    async def rooms_of(
        self, user_id: uuid.UUID, *, after: tuple[datetime, uuid.UUID] | None, limit: int
    ) -> Sequence[RoomListing]:
        query = (
            select(*_ROOM_COLUMNS, memberships.c.role, memberships.c.joined_at)
            .select_from(memberships.join(rooms, rooms.c.id == memberships.c.room_id))
            .where(memberships.c.user_id == user_id)
            .order_by(memberships.c.joined_at.desc(), memberships.c.room_id.desc())
            .limit(limit)
        )
        if after is not None:
            query = query.where(tuple_(memberships.c.joined_at, memberships.c.room_id) < after)
        return [_listing(row._mapping) for row in await self._db.execute(query)]

    # memberships

    async def membership(self, room_id: uuid.UUID, user_id: uuid.UUID) -> Membership | None:
        query = select(memberships).where(memberships.c.room_id == room_id, memberships.c.user_id == user_id)
        return await self._one(query, Membership)

    async def add_membership(self, membership: Membership) -> None:
        await self._write_unique(insert(memberships).values(_columns(membership)))

    async def update_membership(self, membership: Membership) -> None:
        statement = (
            update(memberships)
            .where(memberships.c.room_id == membership.room_id, memberships.c.user_id == membership.user_id)
            .values(role=membership.role, joined_at=membership.joined_at)
        )
        await self._db.execute(statement)

    async def remove_membership(self, room_id: uuid.UUID, user_id: uuid.UUID) -> bool:
        return await self._delete(memberships, memberships.c.room_id == room_id, memberships.c.user_id == user_id)

    async def members(
        self, room_id: uuid.UUID, *, after: tuple[datetime, uuid.UUID] | None = None, limit: int = 1000
    ) -> Sequence[Membership]:
        query = (
            select(memberships)
            .where(memberships.c.room_id == room_id)
            .order_by(memberships.c.joined_at, memberships.c.user_id)
            .limit(limit)
        )
        if after is not None:
            query = query.where(tuple_(memberships.c.joined_at, memberships.c.user_id) > after)
        return await self._all(query, Membership)

    async def memberships_of(self, user_id: uuid.UUID) -> Sequence[Membership]:
        query = (
            select(memberships)
            .where(memberships.c.user_id == user_id)
            .order_by(memberships.c.joined_at.desc(), memberships.c.room_id.desc())
        )
        return await self._all(query, Membership)

    # invitations and bans

    async def put_invitation(self, invitation: Invitation) -> None:
        await self._put(invitations, _columns(invitation))

    async def invitation(self, room_id: uuid.UUID, user_id: uuid.UUID) -> Invitation | None:
        query = select(invitations).where(invitations.c.room_id == room_id, invitations.c.user_id == user_id)
        return await self._one(query, Invitation)

    async def remove_invitation(self, room_id: uuid.UUID, user_id: uuid.UUID) -> bool:
        return await self._delete(invitations, invitations.c.room_id == room_id, invitations.c.user_id == user_id)

    async def invitations_of(self, user_id: uuid.UUID) -> Sequence[Invitation]:
        query = (
            select(invitations)
            .where(invitations.c.user_id == user_id)
            .order_by(invitations.c.created_at.desc(), invitations.c.room_id.desc())
        )
        return await self._all(query, Invitation)

    async def put_ban(self, ban: Ban) -> None:
        await self._put(bans, _columns(ban))

    async def ban(self, room_id: uuid.UUID, user_id: uuid.UUID) -> Ban | None:
        return await self._one(select(bans).where(bans.c.room_id == room_id, bans.c.user_id == user_id), Ban)

    async def remove_ban(self, room_id: uuid.UUID, user_id: uuid.UUID) -> bool:
        return await self._delete(bans, bans.c.room_id == room_id, bans.c.user_id == user_id)

    async def bans(self, room_id: uuid.UUID) -> Sequence[Ban]:
        query = select(bans).where(bans.c.room_id == room_id).order_by(bans.c.created_at.desc(), bans.c.user_id.desc())
        return await self._all(query, Ban)

    # the users projection

    async def put_user(self, profile: UserProfile) -> None:
        values = {**_columns(profile), "username_key": profile.username.casefold()}
        statement = upsert(users).values(values)
        statement = statement.on_conflict_do_update(
            index_elements=[users.c.user_id],
            set_={name: statement.excluded[name] for name in values if name != "user_id"},
        )
        # Usernames move between accounts, and events about different users arrive in any order: the profile
        # written last takes the username, whoever held it before keeps their profile but is no longer found
        # by it. A concurrent transaction may commit the same username between the two statements; then the
        # insert fails on the unique key and, with a fresh snapshot, the next attempt sees and clears it.
        for attempt in range(1, _USERNAME_ATTEMPTS + 1):
            await self._db.execute(
                update(users)
                .where(users.c.username_key == values["username_key"], users.c.user_id != profile.user_id)
                .values(username_key=None)
            )
            try:
                async with self._db.begin_nested():
                    await self._db.execute(statement)
            except IntegrityError as exc:
                if attempt == _USERNAME_ATTEMPTS or unique_constraint(exc) != USERNAME_TAKEN:
                    raise
            else:
                return

    async def user(self, user_id: uuid.UUID) -> UserProfile | None:
        return await self._one(select(*_profile_columns()).where(users.c.user_id == user_id), UserProfile)

    async def users(self, user_ids: Sequence[uuid.UUID]) -> Sequence[UserProfile]:
        if not user_ids:
            return []
        return await self._all(select(*_profile_columns()).where(users.c.user_id.in_(user_ids)), UserProfile)

    async def user_by_username(self, username: str) -> UserProfile | None:
        query = select(*_profile_columns()).where(users.c.username_key == username.casefold())
        return await self._one(query, UserProfile)

    async def delete_user(self, user_id: uuid.UUID) -> None:
        await self._db.execute(delete(users).where(users.c.user_id == user_id))
        await self._db.execute(delete(invitations).where(invitations.c.user_id == user_id))
        await self._db.execute(
            delete(contacts).where(or_(contacts.c.user_low == user_id, contacts.c.user_high == user_id))
        )
        await self._db.execute(delete(blocks).where(or_(blocks.c.blocker == user_id, blocks.c.blocked == user_id)))

    # contacts and blocks

    async def contact(self, first: uuid.UUID, second: uuid.UUID) -> Contact | None:
        return await self._one(select(contacts).where(*_pair(first, second)), Contact)

    async def put_contact(self, contact: Contact) -> None:
        await self._put(contacts, _columns(contact))

    async def remove_contact(self, first: uuid.UUID, second: uuid.UUID) -> bool:
        return await self._delete(contacts, *_pair(first, second))

    async def contacts_of(self, user_id: uuid.UUID) -> Sequence[Contact]:
        query = (
            select(contacts)
            .where(or_(contacts.c.user_low == user_id, contacts.c.user_high == user_id))
            .order_by(contacts.c.created_at.desc(), contacts.c.user_low.desc(), contacts.c.user_high.desc())
        )
        return await self._all(query, Contact)

    async def lock_pair(self, first: uuid.UUID, second: uuid.UUID) -> None:
        # A transaction-scoped advisory lock: the pair may have no row to lock yet (no direct room, no block).
        # Two pairs that hash alike only wait for each other.
        key = f"pair:{rules.dm_key(first, second)}"
        await self._db.execute(select(func.pg_advisory_xact_lock(func.hashtextextended(key, 0))))

    async def put_block(self, block: Block) -> None:
        await self._put(blocks, _columns(block))

    async def remove_block(self, blocker: uuid.UUID, blocked: uuid.UUID) -> bool:
        return await self._delete(blocks, blocks.c.blocker == blocker, blocks.c.blocked == blocked)

    async def blocked(self, blocker: uuid.UUID, blocked: uuid.UUID) -> bool:
        query = select(exists().where(blocks.c.blocker == blocker, blocks.c.blocked == blocked))
        return bool((await self._db.execute(query)).scalar_one())

    async def blocks_of(self, blocker: uuid.UUID) -> Sequence[Block]:
        query = (
            select(blocks)
            .where(blocks.c.blocker == blocker)
            .order_by(blocks.c.created_at.desc(), blocks.c.blocked.desc())
        )
        return await self._all(query, Block)

    # throttling

    async def hit(self, key: str, *, window: timedelta, now: datetime) -> int:
        return await pg_throttle.hit(self._db, throttle_hits, key, window=window, now=now)

    async def failures(self, key: str) -> Failures:
        count, last_at = await pg_throttle.failures(self._db, throttle_failures, key)
        return Failures(count=count, last_at=last_at)

    async def record_failure(self, key: str, now: datetime) -> Failures:
        count, last_at = await pg_throttle.record_failure(self._db, throttle_failures, key, now)
        return Failures(count=count, last_at=last_at)

    async def clear_failures(self, key: str) -> None:
        await pg_throttle.clear_failures(self._db, throttle_failures, key)

    # consumed events

    async def mark_processed(self, event_id: uuid.UUID, *, at: datetime) -> bool:
        await self._prune(processed_events, processed_events.c.processed_at < at - _KEEP_PROCESSED_FOR)
        statement = (
            upsert(processed_events)
            .values(event_id=event_id, processed_at=at)
            .on_conflict_do_nothing()
            .returning(processed_events.c.event_id)
        )
        return (await self._db.execute(statement)).first() is not None

    # events

    # helpers

    async def _put(self, table: Table, values: dict[str, Any]) -> None:
        """Insert ``values``, or overwrite the row with the same primary key."""
        key = [c.name for c in table.primary_key.columns]
        statement = upsert(table).values(values)
        statement = statement.on_conflict_do_update(
            index_elements=key, set_={name: statement.excluded[name] for name in values if name not in key}
        )
        await self._db.execute(statement)

    async def _delete(self, table: Table, *where: ColumnElement[bool]) -> bool:
        """Delete the row ``where`` selects; False when there was none."""
        statement = delete(table).where(*where).returning(*table.primary_key.columns)
        return (await self._db.execute(statement)).first() is not None


def directory_query(*, query: str | None, after: tuple[str, uuid.UUID] | None, limit: int) -> Select[Any]:
    """The directory's query: listed rooms whose name key contains ``query``, after the cursor, in key order.

    The listing predicate is the partial indexes' own text, so they apply to every plan; the substring match is
    ``LIKE`` with the query's wildcards escaped, which the trigram index answers.
    """
    statement = select(*_ROOM_COLUMNS).where(text(LISTED)).order_by(rooms.c.name_key, rooms.c.id).limit(limit)
    if query:
        pattern = f"%{_escape_like(_name_key(query))}%"
        statement = statement.where(rooms.c.name_key.like(pattern, escape=_LIKE_ESCAPE))
    if after is not None:
        after_key, after_id = after
        statement = statement.where(tuple_(rooms.c.name_key, rooms.c.id) > (after_key[:NAME_KEY_MAX], after_id))
    return statement


def _name_key(name: str) -> str:
    return rules.search_key(name)[:NAME_KEY_MAX]


def _escape_like(value: str) -> str:
    """``value`` as a LIKE pattern that matches it literally: the escape character first, then the wildcards."""
    escaped = value.replace(_LIKE_ESCAPE, _LIKE_ESCAPE * 2)
    return escaped.replace("%", _LIKE_ESCAPE + "%").replace("_", _LIKE_ESCAPE + "_")


def _columns(record: Any) -> dict[str, Any]:
    return {f.name: getattr(record, f.name) for f in fields(record)}


def _room_columns(room: Room) -> dict[str, Any]:
    return {**_columns(room), "name_key": _name_key(room.name or "")}


def _profile_columns() -> tuple[Any, ...]:
    return tuple(users.c[f.name] for f in fields(UserProfile))


def _listing(row: RowMapping) -> RoomListing:
    room = Room(**{column.name: row[column.name] for column in _ROOM_COLUMNS})
    return RoomListing(room=room, role=row["role"], joined_at=row["joined_at"])


def _pair(first: uuid.UUID, second: uuid.UUID) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
    low, high = sorted((first, second))
    return contacts.c.user_low == low, contacts.c.user_high == high


def _failures(row: RowMapping) -> Failures:
    # Row.count is tuple.count, hence the mapping.
    return Failures(count=row["count"], last_at=row["last_at"])
