"""What the rooms use cases need from the outside: the store (one transaction at a time) and a clock.

The PostgreSQL store (adapters/postgres/store.py) and the in-memory fake (testing/fakes.py) implement
``RoomsStore``; the same contract suite (testing/store_contract/) runs against both.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta
from typing import Protocol

from chat_contracts.envelope import Envelope
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

Clock = Callable[[], datetime]


class Tx(Protocol):
    """One database transaction: everything written through it, events included, commits or rolls back together.

    ``for_update`` reads lock the row until the transaction ends, so concurrent changes to one room serialize
    (and its ``version`` and events stay in order).
    """

    # rooms
    async def add_room(self, room: Room) -> None:
        """Insert; raises ``Conflict("dm_key")`` when a direct room for that pair exists."""

    async def room(self, room_id: uuid.UUID, *, for_update: bool = False) -> Room | None: ...

    async def room_by_dm_key(self, dm_key: str) -> Room | None: ...

    async def update_room(self, room: Room) -> None:
        """Write every field back."""

    async def delete_room(self, room_id: uuid.UUID) -> None:
        """Delete the room with its memberships, invitations and bans."""

    async def directory(self, *, query: str | None, after: tuple[str, uuid.UUID] | None, limit: int) -> Sequence[Room]:
        """Unarchived public and password rooms whose search key contains ``query`` (case-folded), ordered by
        (search key of the name, id), strictly after the ``after`` cursor."""

    async def rooms_of(
        self, user_id: uuid.UUID, *, after: tuple[datetime, uuid.UUID] | None, limit: int
    ) -> Sequence[RoomListing]:
        """The user's rooms with their role, newest membership first: ordered by (joined_at desc, room id desc),
        strictly after the ``after`` cursor."""

    # memberships
    async def membership(self, room_id: uuid.UUID, user_id: uuid.UUID) -> Membership | None: ...

    async def add_membership(self, membership: Membership) -> None:
        """Insert; raises ``Conflict("membership")`` when the user is already a member."""

    async def update_membership(self, membership: Membership) -> None: ...

    async def remove_membership(self, room_id: uuid.UUID, user_id: uuid.UUID) -> bool:
        """Delete; False when there was no such membership."""

    async def members(
        self, room_id: uuid.UUID, *, after: tuple[datetime, uuid.UUID] | None = None, limit: int = 1000
    ) -> Sequence[Membership]:
        """Members ordered by (joined_at, user id), strictly after ``after``."""

    async def memberships_of(self, user_id: uuid.UUID) -> Sequence[Membership]: ...

    # invitations and bans
    async def put_invitation(self, invitation: Invitation) -> None:
        """Insert or replace the invitation of this user to this room."""

    async def invitation(self, room_id: uuid.UUID, user_id: uuid.UUID) -> Invitation | None: ...

    async def remove_invitation(self, room_id: uuid.UUID, user_id: uuid.UUID) -> bool: ...

    async def invitations_of(self, user_id: uuid.UUID) -> Sequence[Invitation]:
        """Pending invitations of the user, newest first."""

    async def put_ban(self, ban: Ban) -> None:
        """Insert or replace."""

    async def ban(self, room_id: uuid.UUID, user_id: uuid.UUID) -> Ban | None: ...

    async def remove_ban(self, room_id: uuid.UUID, user_id: uuid.UUID) -> bool: ...

    async def bans(self, room_id: uuid.UUID) -> Sequence[Ban]:
        """Bans of the room, newest first."""

    # the users projection (from chat.users.events)
    async def put_user(self, profile: UserProfile) -> None:
        """Insert or replace; raises nothing when a username moves from one user to another."""

    async def user(self, user_id: uuid.UUID) -> UserProfile | None: ...

    async def users(self, user_ids: Sequence[uuid.UUID]) -> Sequence[UserProfile]:
        """The known profiles among ``user_ids`` (one query; unknown ids are left out), in no particular order."""

    async def user_by_username(self, username: str) -> UserProfile | None:
        """Case-insensitive lookup."""

    async def delete_user(self, user_id: uuid.UUID) -> None:
        """Drop the profile and the user's invitations, contacts and blocks (memberships are the caller's job)."""

    # contacts and blocks
    async def contact(self, first: uuid.UUID, second: uuid.UUID) -> Contact | None:
        """The pair's contact row, whichever order the ids come in."""

    async def put_contact(self, contact: Contact) -> None: ...

    async def remove_contact(self, first: uuid.UUID, second: uuid.UUID) -> bool: ...

    async def contacts_of(self, user_id: uuid.UUID) -> Sequence[Contact]:
        """Requests and contacts involving the user, newest first."""

    async def lock_pair(self, first: uuid.UUID, second: uuid.UUID) -> None:
        """Hold the pair's lock, whichever order the ids come in, until the transaction ends: blocking, unblocking
        and creating the pair's direct room take it, so a direct room never misses a block made meanwhile."""

    async def put_block(self, block: Block) -> None: ...

    async def remove_block(self, blocker: uuid.UUID, blocked: uuid.UUID) -> bool: ...

    async def blocked(self, blocker: uuid.UUID, blocked: uuid.UUID) -> bool: ...

    async def blocks_of(self, blocker: uuid.UUID) -> Sequence[Block]: ...

    # throttling
    async def hit(self, key: str, *, window: timedelta, now: datetime) -> int:
        """Count one event under ``key`` in the fixed window containing ``now``; the count so far."""

    async def failures(self, key: str) -> Failures: ...

    async def record_failure(self, key: str, now: datetime) -> Failures: ...

    async def clear_failures(self, key: str) -> None: ...

    # consumed events (idempotent consumers)
    async def mark_processed(self, event_id: uuid.UUID, *, at: datetime) -> bool:
        """Record a consumed event's id; False when it was processed before."""

    # events
    async def emit(self, envelope: Envelope, *, topic: str) -> None:
        """Queue an event in the outbox of this transaction."""


class RoomsStore(Protocol):
    def transaction(self) -> AbstractAsyncContextManager[Tx]: ...
