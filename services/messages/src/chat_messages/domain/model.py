"""The messages service's records."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from chat_contracts.ids import name_uuid

History = Literal["shared", "joined"]
MarkerKind = Literal["read", "delivered"]


@dataclass(frozen=True, slots=True)
class MentionedUser:
    user_id: uuid.UUID
    username: str


@dataclass(frozen=True, slots=True)
class Edit:
    body: str
    edited_at: datetime


def message_id_for(room_id: uuid.UUID, client_msg_id: str) -> uuid.UUID:
    """A message's id: the name-based UUID of its ``client_msg_id`` in its room (version 5, the room's id as the
    namespace). The same send made again has the same id, so a store's unique message id is also the rule that a
    room holds one message per client_msg_id (docs/decisions/0016-message-ids-from-client-msg-id.md)."""
    return name_uuid(room_id, client_msg_id)


@dataclass(frozen=True, slots=True)
class Message:
    """One message. ``seq`` is dense per room; ``version`` grows by one with each edit, deletion or reaction; ``id``
    is ``message_id_for(room_id, client_msg_id)``."""

    id: uuid.UUID
    room_id: uuid.UUID
    seq: int
    sender_id: uuid.UUID
    client_msg_id: str
    body: str
    created_at: datetime
    tokens: tuple[str, ...] = ()
    reply_to: uuid.UUID | None = None
    attachment_ids: tuple[uuid.UUID, ...] = ()
    mentions: tuple[MentionedUser, ...] = ()
    mentions_room: bool = False
    version: int = 1
    edited_at: datetime | None = None
    edits: tuple[Edit, ...] = ()
    """Earlier bodies, oldest first."""
    deleted_at: datetime | None = None
    deleted_by: uuid.UUID | None = None
    reactions: dict[str, tuple[uuid.UUID, ...]] = field(default_factory=dict)
    """Emoji → who reacted, in the order they did."""

    @property
    def deleted(self) -> bool:
        return self.deleted_at is not None

    def counts(self) -> dict[str, int]:
        return {emoji: len(users) for emoji, users in self.reactions.items() if users}


@dataclass(frozen=True, slots=True)
class RoomState:
    """What this service knows about a room, projected from chat.rooms.events (``version`` is the room's)."""

    room_id: uuid.UUID
    version: int
    kind: str = "public"
    archived: bool = False
    history: History = "shared"
    deleted: bool = False
    blocked: bool = False
    """A direct room whose two people are blocked from each other (``domain.blocks``)."""
    name: str | None = None
    name_known: bool = False
    """Whether ``name`` is the room's (rooms projected before names were kept learn it from their next event):
    a rename is recorded only when the name it replaces is known."""


@dataclass(frozen=True, slots=True)
class Member:
    """A membership, projected from chat.rooms.events. ``joined_after_seq``: the room's highest seq when they
    joined, for rooms whose history starts at joining."""

    room_id: uuid.UUID
    user_id: uuid.UUID
    role: str
    joined_after_seq: int = 0


@dataclass(frozen=True, slots=True)
class Markers:
    room_id: uuid.UUID
    user_id: uuid.UUID
    read_seq: int = 0
    delivered_seq: int = 0


@dataclass(frozen=True, slots=True)
class Change:
    """One change to a message, applied atomically and at most once per ``request_id``."""

    request_id: str
    at: datetime
    edit_body: str | None = None
    edit_tokens: tuple[str, ...] = ()
    delete_by: uuid.UUID | None = None
    reaction: tuple[str, uuid.UUID, Literal["add", "remove"]] | None = None


@dataclass(frozen=True, slots=True)
class Attachment:
    """An uploaded file. ``content_type`` was sniffed from the bytes, never taken from the client."""

    id: uuid.UUID
    room_id: uuid.UUID
    uploader_id: uuid.UUID
    filename: str
    content_type: str
    size: int
    created_at: datetime
    width: int | None = None
    height: int | None = None
