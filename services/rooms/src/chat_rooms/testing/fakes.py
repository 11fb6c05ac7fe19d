"""In-memory stand-ins for unit tests: a rooms store with real transaction semantics and a settable clock."""

from __future__ import annotations

import asyncio
import copy
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from chat_contracts.envelope import Envelope
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
from chat_rooms.domain.rules import search_key

DIRECTORY_KINDS = ("public", "password")


@dataclass
class _State:
    rooms: dict[uuid.UUID, Room] = field(default_factory=dict)
    memberships: dict[tuple[uuid.UUID, uuid.UUID], Membership] = field(default_factory=dict)
    invitations: dict[tuple[uuid.UUID, uuid.UUID], Invitation] = field(default_factory=dict)
    bans: dict[tuple[uuid.UUID, uuid.UUID], Ban] = field(default_factory=dict)
    users: dict[uuid.UUID, UserProfile] = field(default_factory=dict)
    username_keys: dict[str, uuid.UUID] = field(default_factory=dict)
    """casefolded username -> the user who holds it (like the PostgreSQL ``username_key``)."""
    contacts: dict[tuple[uuid.UUID, uuid.UUID], Contact] = field(default_factory=dict)
    blocks: dict[tuple[uuid.UUID, uuid.UUID], Block] = field(default_factory=dict)
    hits: dict[tuple[str, int], int] = field(default_factory=dict)
    failures: dict[str, Failures] = field(default_factory=dict)
    processed: set[uuid.UUID] = field(default_factory=set)
    outbox: list[tuple[str, Envelope]] = field(default_factory=list)


def _pair(first: uuid.UUID, second: uuid.UUID) -> tuple[uuid.UUID, uuid.UUID]:
    low, high = sorted((first, second))
    return low, high


class FakeTx:
    def __init__(self, state: _State) -> None:
        self.s = state

    async def add_room(self, room: Room) -> None:
        if room.dm_key is not None and any(r.dm_key == room.dm_key for r in self.s.rooms.values()):
            raise Conflict("dm_key")
        self.s.rooms[room.id] = room

    async def room(self, room_id: uuid.UUID, *, for_update: bool = False) -> Room | None:
        return self.s.rooms.get(room_id)

    async def room_by_dm_key(self, dm_key: str) -> Room | None:
        return next((r for r in self.s.rooms.values() if r.dm_key == dm_key), None)

    async def update_room(self, room: Room) -> None:
        self.s.rooms[room.id] = room

    async def delete_room(self, room_id: uuid.UUID) -> None:
        self.s.rooms.pop(room_id, None)
        for table in (self.s.memberships, self.s.invitations, self.s.bans):
            for key in [k for k in table if k[0] == room_id]:
                del table[key]

    async def directory(self, *, query: str | None, after: tuple[str, uuid.UUID] | None, limit: int) -> Sequence[Room]:
        found = [
            r
            for r in self.s.rooms.values()
            if r.kind in DIRECTORY_KINDS
            and r.archived_at is None
            and r.name is not None
            and (query is None or search_key(query) in search_key(r.name))
        ]
        ordered = sorted(found, key=lambda r: (search_key(r.name or ""), str(r.id)))
        if after is not None:
            ordered = [r for r in ordered if (search_key(r.name or ""), str(r.id)) > (after[0], str(after[1]))]
        return ordered[:limit]

    async def rooms_of(
        self, user_id: uuid.UUID, *, after: tuple[datetime, uuid.UUID] | None, limit: int
    ) -> Sequence[RoomListing]:
        mine = [m for m in self.s.memberships.values() if m.user_id == user_id]
        ordered = sorted(mine, key=lambda m: (m.joined_at, str(m.room_id)), reverse=True)
        if after is not None:
            ordered = [m for m in ordered if (m.joined_at, str(m.room_id)) < (after[0], str(after[1]))]
        return [
            RoomListing(room=self.s.rooms[m.room_id], role=m.role, joined_at=m.joined_at)
            for m in ordered[:limit]
            if m.room_id in self.s.rooms
        ]

    async def membership(self, room_id: uuid.UUID, user_id: uuid.UUID) -> Membership | None:
        return self.s.memberships.get((room_id, user_id))

    async def add_membership(self, membership: Membership) -> None:
        key = (membership.room_id, membership.user_id)
        if key in self.s.memberships:
            raise Conflict("membership")
        self.s.memberships[key] = membership

    async def update_membership(self, membership: Membership) -> None:
        self.s.memberships[(membership.room_id, membership.user_id)] = membership

    async def remove_membership(self, room_id: uuid.UUID, user_id: uuid.UUID) -> bool:
        return self.s.memberships.pop((room_id, user_id), None) is not None

    async def members(
        self, room_id: uuid.UUID, *, after: tuple[datetime, uuid.UUID] | None = None, limit: int = 1000
    ) -> Sequence[Membership]:
        ordered = sorted(
            (m for m in self.s.memberships.values() if m.room_id == room_id),
            key=lambda m: (m.joined_at, str(m.user_id)),
        )
        if after is not None:
            ordered = [m for m in ordered if (m.joined_at, str(m.user_id)) > (after[0], str(after[1]))]
        return ordered[:limit]

    async def memberships_of(self, user_id: uuid.UUID) -> Sequence[Membership]:
        return [m for m in self.s.memberships.values() if m.user_id == user_id]

    async def put_invitation(self, invitation: Invitation) -> None:
        self.s.invitations[(invitation.room_id, invitation.user_id)] = invitation

    async def invitation(self, room_id: uuid.UUID, user_id: uuid.UUID) -> Invitation | None:
        return self.s.invitations.get((room_id, user_id))

    async def remove_invitation(self, room_id: uuid.UUID, user_id: uuid.UUID) -> bool:
        return self.s.invitations.pop((room_id, user_id), None) is not None

    async def invitations_of(self, user_id: uuid.UUID) -> Sequence[Invitation]:
        mine = [i for i in self.s.invitations.values() if i.user_id == user_id]
        return sorted(mine, key=lambda i: i.created_at, reverse=True)

    async def put_ban(self, ban: Ban) -> None:
        self.s.bans[(ban.room_id, ban.user_id)] = ban

    async def ban(self, room_id: uuid.UUID, user_id: uuid.UUID) -> Ban | None:
        return self.s.bans.get((room_id, user_id))

    async def remove_ban(self, room_id: uuid.UUID, user_id: uuid.UUID) -> bool:
        return self.s.bans.pop((room_id, user_id), None) is not None

    async def bans(self, room_id: uuid.UUID) -> Sequence[Ban]:
        return sorted(
            (b for b in self.s.bans.values() if b.room_id == room_id), key=lambda b: b.created_at, reverse=True
        )

    async def put_user(self, profile: UserProfile) -> None:
        # As on PostgreSQL: the profile written last takes the username; whoever held it keeps their profile
        # but is no longer found by it.
        self._drop_username_keys(profile.user_id)
        self.s.username_keys[profile.username.casefold()] = profile.user_id
        self.s.users[profile.user_id] = profile

    def _drop_username_keys(self, user_id: uuid.UUID) -> None:
        self.s.username_keys = {k: v for k, v in self.s.username_keys.items() if v != user_id}

    async def user(self, user_id: uuid.UUID) -> UserProfile | None:
        return self.s.users.get(user_id)

    async def users(self, user_ids: Sequence[uuid.UUID]) -> Sequence[UserProfile]:
        return [self.s.users[u] for u in dict.fromkeys(user_ids) if u in self.s.users]

    async def user_by_username(self, username: str) -> UserProfile | None:
        holder = self.s.username_keys.get(username.casefold())
        return self.s.users.get(holder) if holder is not None else None

    async def delete_user(self, user_id: uuid.UUID) -> None:
        self.s.users.pop(user_id, None)
        self._drop_username_keys(user_id)
        self.s.invitations = {k: v for k, v in self.s.invitations.items() if v.user_id != user_id}
        self.s.contacts = {k: v for k, v in self.s.contacts.items() if user_id not in k}
        self.s.blocks = {k: v for k, v in self.s.blocks.items() if user_id not in k}

    async def contact(self, first: uuid.UUID, second: uuid.UUID) -> Contact | None:
        return self.s.contacts.get(_pair(first, second))

    async def put_contact(self, contact: Contact) -> None:
        self.s.contacts[(contact.user_low, contact.user_high)] = contact

    async def remove_contact(self, first: uuid.UUID, second: uuid.UUID) -> bool:
        return self.s.contacts.pop(_pair(first, second), None) is not None

    async def contacts_of(self, user_id: uuid.UUID) -> Sequence[Contact]:
        mine = [c for c in self.s.contacts.values() if user_id in (c.user_low, c.user_high)]
        return sorted(mine, key=lambda c: c.created_at, reverse=True)

    async def lock_pair(self, first: uuid.UUID, second: uuid.UUID) -> None:
        return None  # transactions here run one at a time

    async def put_block(self, block: Block) -> None:
        self.s.blocks[(block.blocker, block.blocked)] = block

    async def remove_block(self, blocker: uuid.UUID, blocked: uuid.UUID) -> bool:
        return self.s.blocks.pop((blocker, blocked), None) is not None

    async def blocked(self, blocker: uuid.UUID, blocked: uuid.UUID) -> bool:
        return (blocker, blocked) in self.s.blocks

    async def blocks_of(self, blocker: uuid.UUID) -> Sequence[Block]:
        mine = [b for b in self.s.blocks.values() if b.blocker == blocker]
        return sorted(mine, key=lambda b: b.created_at, reverse=True)

    async def hit(self, key: str, *, window: timedelta, now: datetime) -> int:
        slot = (key, int(now.timestamp()) // int(window.total_seconds()))
        self.s.hits[slot] = self.s.hits.get(slot, 0) + 1
        return self.s.hits[slot]

    async def failures(self, key: str) -> Failures:
        return self.s.failures.get(key, Failures())

    async def record_failure(self, key: str, now: datetime) -> Failures:
        current = self.s.failures.get(key, Failures())
        self.s.failures[key] = Failures(count=current.count + 1, last_at=now)
        return self.s.failures[key]

    async def clear_failures(self, key: str) -> None:
        self.s.failures.pop(key, None)

    async def mark_processed(self, event_id: uuid.UUID, *, at: datetime) -> bool:
        if event_id in self.s.processed:
            return False
        self.s.processed.add(event_id)
        return True

    async def emit(self, envelope: Envelope, *, topic: str) -> None:
        self.s.outbox.append((topic, envelope))


class FakeRoomsStore:
    """Serializable transactions over in-memory state: a failed transaction leaves no trace."""

    def __init__(self) -> None:
        self.state = _State()
        self._lock = asyncio.Lock()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[FakeTx]:
        async with self._lock:
            working = copy.deepcopy(self.state)
            yield FakeTx(working)
            self.state = working

    def emitted(self) -> list[Envelope]:
        return [envelope for _, envelope in self.state.outbox]


class FakeClock:
    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 11, 21, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)
