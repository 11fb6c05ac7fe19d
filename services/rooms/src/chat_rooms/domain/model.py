"""The rooms service's records. Frozen dataclasses: a change is a new value written back through the store."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

RoomKind = Literal["public", "private", "password", "direct", "group_dm"]
Role = Literal["owner", "admin", "member"]
History = Literal["shared", "joined"]


@dataclass(frozen=True, slots=True)
class Room:
    """A room. ``version`` grows by one with every change and stamps every event about the room."""

    id: uuid.UUID
    kind: RoomKind
    name: str | None
    topic: str | None
    description: str | None
    avatar_url: str | None
    history: History
    created_by: uuid.UUID
    created_at: datetime
    updated_at: datetime
    version: int = 1
    password_hash: str | None = None
    archived_at: datetime | None = None
    dm_key: str | None = None
    """For direct rooms: the two user ids, sorted and joined, unique, so asking twice returns the same room."""
    member_count: int = 0
    blocked: bool = False
    """For direct rooms: one of the two has blocked the other. Kept in step with the blocks (under the pair's lock)
    and announced as ``room.blocked`` / ``room.unblocked``, so the messages service and the gateway can refuse
    writes in the room (docs/decisions/0009)."""

    @property
    def archived(self) -> bool:
        return self.archived_at is not None


@dataclass(frozen=True, slots=True)
class Membership:
    room_id: uuid.UUID
    user_id: uuid.UUID
    role: Role
    joined_at: datetime


@dataclass(frozen=True, slots=True)
class Invitation:
    room_id: uuid.UUID
    user_id: uuid.UUID
    invited_by: uuid.UUID
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Ban:
    room_id: uuid.UUID
    user_id: uuid.UUID
    banned_by: uuid.UUID
    reason: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class UserProfile:
    """What the rooms service knows about an account, projected from chat.users.events."""

    user_id: uuid.UUID
    username: str
    display_name: str
    updated_at: datetime
    avatar_url: str | None = None


@dataclass(frozen=True, slots=True)
class RoomListing:
    """A room in the public directory or in "my rooms", with the caller's membership when there is one."""

    room: Room
    role: Role | None = None
    joined_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Contact:
    """A contact request or an accepted contact between two users; ``user_low`` < ``user_high`` (one row a pair)."""

    user_low: uuid.UUID
    user_high: uuid.UUID
    requested_by: uuid.UUID
    created_at: datetime
    accepted_at: datetime | None = None

    def other(self, user_id: uuid.UUID) -> uuid.UUID:
        return self.user_high if user_id == self.user_low else self.user_low


@dataclass(frozen=True, slots=True)
class Block:
    blocker: uuid.UUID
    blocked: uuid.UUID
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Failures:
    """Consecutive failed attempts under one throttling key."""

    count: int = 0
    last_at: datetime | None = None
