"""The rooms, members, profiles, contacts and events the store contract stores, and a transaction that rolls back:
shared by every area of the suite and by the PostgreSQL store's own tests; and ``ReadsOutbox``, the one hook the
test module implements, for the areas that check what a store committed to its outbox.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from chat_contracts.envelope import Envelope
from chat_contracts.examples import example
from chat_contracts.rooms import RoomCreated
from chat_rooms.domain.model import Contact, Membership, Role, Room, RoomKind, UserProfile
from chat_rooms.domain.rules import dm_key, search_key
from chat_rooms.service.ports import RoomsStore, Tx

T0 = datetime(2030, 1, 1, tzinfo=UTC)
"""A fixed instant, aligned on the minute, hour and day (throttle windows start there)."""
HOUR = timedelta(hours=1)
PASSWORD_HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA"


class _Boom(Exception):
    """Raised inside a transaction to roll it back."""


async def roll_back(store: RoomsStore, work: Callable[[Tx], Awaitable[None]]) -> None:
    """Run ``work`` in a transaction that then fails, so nothing it did may remain."""
    with pytest.raises(_Boom):
        await _fail_after(store, work)


async def _fail_after(store: RoomsStore, work: Callable[[Tx], Awaitable[None]]) -> None:
    async with store.transaction() as tx:
        await work(tx)
        raise _Boom


def a_room(
    name: str | None = "general",
    *,
    kind: RoomKind = "public",
    created_by: uuid.UUID | None = None,
    at: datetime = T0,
    archived_at: datetime | None = None,
) -> Room:
    """A room of ``kind`` (password rooms come with a hash); direct rooms come from ``a_direct_room``."""
    return Room(
        id=uuid.uuid4(),
        kind=kind,
        name=name,
        topic=None,
        description=None,
        avatar_url=None,
        history="shared",
        created_by=created_by or uuid.uuid4(),
        created_at=at,
        updated_at=at,
        password_hash=PASSWORD_HASH if kind == "password" else None,
        archived_at=archived_at,
    )


def a_direct_room(first: uuid.UUID, second: uuid.UUID, *, at: datetime = T0) -> Room:
    return replace(a_room(None, kind="direct", created_by=first, at=at), dm_key=dm_key(first, second))


def a_membership(room: Room, user_id: uuid.UUID, role: Role = "member", *, at: datetime = T0) -> Membership:
    return Membership(room_id=room.id, user_id=user_id, role=role, joined_at=at)


def a_profile(username: str, *, user_id: uuid.UUID | None = None, at: datetime = T0) -> UserProfile:
    return UserProfile(
        user_id=user_id or uuid.uuid4(),
        username=username,
        display_name=f"{username.title()} Example",
        updated_at=at,
    )


def a_contact(first: uuid.UUID, second: uuid.UUID, *, at: datetime = T0, accepted: bool = False) -> Contact:
    """A request from ``first`` to ``second`` (accepted when asked)."""
    low, high = sorted((first, second))
    return Contact(
        user_low=low,
        user_high=high,
        requested_by=first,
        created_at=at,
        accepted_at=at + HOUR if accepted else None,
    )


def an_event(room: Room) -> Envelope:
    data = example(RoomCreated, room_id=room.id, kind=room.kind, name=room.name, created_by=room.created_by)
    return Envelope.wrap(data, source="rooms", key=str(room.id))


def users(count: int) -> list[uuid.UUID]:
    """``count`` user ids in ascending order (the order ties are broken in)."""
    return sorted(uuid.uuid4() for _ in range(count))


def ids_of(items: Sequence[Room | Envelope]) -> list[uuid.UUID]:
    return [item.id for item in items]


def cursor_after(room: Room) -> tuple[str, uuid.UUID]:
    """The directory cursor that follows ``room``."""
    return search_key(room.name or ""), room.id


class ReadsOutbox:
    """A contract area that reads the events a store committed (each store keeps its outbox its own way)."""

    async def emitted(self, store: RoomsStore) -> list[Envelope]:
        """Every event ``store`` committed to its outbox, oldest first."""
        raise NotImplementedError
