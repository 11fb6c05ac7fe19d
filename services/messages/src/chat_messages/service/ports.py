"""What the messages use cases need from the outside: the message store and a clock.

MongoDB (adapters/mongo_store.py) and the in-memory fake (testing/fakes.py) implement ``MessageStore``; one
contract suite (testing/store_contract/) runs against both. There are no multi-document transactions: every
method is one atomic document operation, and the use cases are written so that a crash between two of them
loses nothing and a redelivered command changes nothing (decisions/0006).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from chat_messages.domain.activity import Activity
from chat_messages.domain.model import (
    Attachment,
    Change,
    MarkerKind,
    Markers,
    Member,
    Message,
    RoomState,
    message_id_for,
)

Clock = Callable[[], datetime]
InsertResult = Literal["inserted", "duplicate_client_msg_id", "duplicate_seq"]
Refusal = Literal["duplicate_client_msg_id", "duplicate_seq"]


@dataclass(frozen=True, slots=True)
class InsertOutcome:
    """What an ordered insert of several messages did."""

    inserted: int
    """How many of the messages, from the first, are stored."""
    refused: Refusal | None = None
    """Why the next one was not (None when all were): its client_msg_id is stored already (whatever else
    collided), or another message has its seq."""


def require_derived_ids(messages: Sequence[Message]) -> None:
    """Raise ``ValueError`` unless each message's id is ``message_id_for(room_id, client_msg_id)``: a store may hold
    a room to one message per client_msg_id by its unique message ids alone."""
    for message in messages:
        if message.id != message_id_for(message.room_id, message.client_msg_id):
            raise ValueError(
                f"message {message.id} of room {message.room_id}: its id is not the one its client_msg_id derives"
            )


class MessageStore(Protocol):
    # the rooms projection
    async def room(self, room_id: uuid.UUID) -> RoomState | None: ...

    async def apply_room(self, state: RoomState) -> bool:
        """Store ``state`` if its version is greater than the stored one (or none is stored); True when stored."""

    async def member(self, room_id: uuid.UUID, user_id: uuid.UUID) -> Member | None: ...

    async def put_member(self, member: Member) -> None:
        """Insert or replace."""

    async def remove_member(self, room_id: uuid.UUID, user_id: uuid.UUID) -> None: ...

    async def memberships(self, user_id: uuid.UUID) -> Sequence[Member]: ...

    async def members(self, room_id: uuid.UUID) -> Sequence[Member]: ...

    async def members_of(self, room_id: uuid.UUID, user_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, Member]:
        """The memberships of those users who are members (one read)."""

    async def drop_room(self, room_id: uuid.UUID) -> None:
        """Delete the room's messages, activity, members and markers (its RoomState stays, marked deleted, by the
        caller)."""

    # the room's activity (joins, leaves, removals, bans, renames)
    async def put_activity(self, activity: Activity) -> None:
        """Store it unless the room has one with its room_version already (a replayed event keeps the first)."""

    async def activity(
        self,
        room_id: uuid.UUID,
        *,
        from_seq: int = 0,
        after_seq: int | None = None,
        before_seq: int | None = None,
        after_version: int = 0,
        limit: int,
    ) -> Sequence[Activity]:
        """The room's activity with ``from_seq <= after_seq`` (inclusive), above ``after_seq`` and below
        ``before_seq`` (both exclusive, on the activity's ``after_seq``) and a room_version above
        ``after_version``: the first ``limit`` by room_version."""

    # the users projection (mentions)
    async def put_user(self, user_id: uuid.UUID, username: str) -> None:
        """Insert or replace; a username moving to another user leaves the previous holder without it."""

    async def users_by_username(self, usernames: Sequence[str]) -> dict[str, uuid.UUID]:
        """Case-insensitive; keys are the case-folded usernames found."""

    async def forget_user(self, user_id: uuid.UUID) -> None: ...

    # messages
    async def last_seq(self, room_id: uuid.UUID) -> int:
        """The room's highest seq, 0 when it has none."""

    async def insert_message(self, message: Message) -> InsertResult:
        """Insert; unique (room_id, client_msg_id) and (room_id, seq) decide the result. ``ValueError`` for a
        message whose id is not the one its client_msg_id derives (``require_derived_ids``)."""

    async def insert_messages(self, messages: Sequence[Message]) -> InsertOutcome:
        """Insert in order (one write), stopping at the first message a uniqueness rule refuses; ``ValueError``
        (nothing written) as ``insert_message``."""

    async def advance_heads(self, heads: Mapping[uuid.UUID, int]) -> None:
        """Raise each room's head document to at least the given seq (never lower it); one write."""

    async def message(self, room_id: uuid.UUID, message_id: uuid.UUID) -> Message | None: ...

    async def message_by_client_msg_id(self, room_id: uuid.UUID, client_msg_id: str) -> Message | None: ...

    async def apply_change(
        self, room_id: uuid.UUID, message_id: uuid.UUID, change: Change
    ) -> tuple[Message, bool] | None:
        """Apply ``change`` atomically unless its request_id was already applied to this message (the last 64 are
        remembered): an edit replaces the body and tokens, keeps the old body in ``edits`` and sets ``edited_at``;
        a deletion empties body, tokens, mentions, reactions, edits and attachments and sets ``deleted_at`` /
        ``deleted_by``; a reaction adds the user to (or removes them from) the emoji's list, once, keeping the order
        people reacted in. Edits and reactions never apply to a deleted message (a race with a deletion cannot
        bring content back). An applied change raises ``version`` by 1.
        Returns (the message as read right after it, whether this call applied it), or None when there is no such
        message. (The read follows the write: a change another writer made in between shows in it too.)"""

    async def history(
        self,
        room_id: uuid.UUID,
        *,
        before_seq: int | None = None,
        after_seq: int | None = None,
        min_seq: int = 0,
        limit: int,
        newest_first: bool,
    ) -> Sequence[Message]:
        """Messages (deleted ones included, as tombstones) with ``min_seq < seq``, below ``before_seq`` and/or
        above ``after_seq``; ``newest_first`` picks both the order and which end of the range the page comes from."""

    async def replies(self, room_id: uuid.UUID, message_id: uuid.UUID, *, limit: int) -> Sequence[Message]:
        """Messages replying to ``message_id``, oldest first."""

    async def search(
        self,
        rooms: Sequence[tuple[uuid.UUID, int]],
        tokens: Sequence[str],
        *,
        limit: int,
        before: tuple[datetime, int] | None,
    ) -> Sequence[Message]:
        """Undeleted messages of the given rooms (each with the lowest seq the caller may see, exclusive) whose
        tokens include every one of ``tokens``, newest first by (created_at, seq), strictly before ``before``."""

    # markers
    async def move_marker(self, room_id: uuid.UUID, user_id: uuid.UUID, kind: MarkerKind, seq: int) -> bool:
        """Raise the marker to ``seq`` if that is higher (never lower); True when it moved."""

    async def markers(self, room_id: uuid.UUID) -> Sequence[Markers]: ...

    async def marker(self, room_id: uuid.UUID, user_id: uuid.UUID) -> Markers: ...

    async def count_unread(
        self, room_id: uuid.UUID, user_id: uuid.UUID, *, after_seq: int, up_to_seq: int | None = None
    ) -> int:
        """Undeleted messages with ``after_seq`` < seq <= ``up_to_seq`` (no upper bound when None) not sent by
        ``user_id``."""

    async def count_unread_mentions(
        self, room_id: uuid.UUID, user_id: uuid.UUID, *, after_seq: int, up_to_seq: int | None = None
    ) -> int:
        """Of those, the ones that mention ``user_id`` by name or mention the whole room."""

    # retention
    async def set_retention(self, room_id: uuid.UUID, days: int | None) -> None:
        """Keep the room's messages ``days`` days, or forever (None)."""

    async def retention(self, room_id: uuid.UUID) -> int | None: ...

    async def retention_policies(self) -> Sequence[tuple[uuid.UUID, int]]:
        """Every room with a limited retention, and its days."""

    async def delete_messages_before(self, room_id: uuid.UUID, before: datetime) -> int:
        """Delete the room's messages created before ``before`` except its newest one, which keeps the room's
        highest seq so a seq is never reused, and its activity that occurred before ``before``; the number of
        messages deleted."""

    async def schedule_purge(self, room_id: uuid.UUID, at: datetime) -> None:
        """Remember to drop a deleted room's data at ``at``."""

    async def due_purges(self, now: datetime) -> Sequence[uuid.UUID]:
        """Rooms whose purge time has come."""

    async def purge_done(self, room_id: uuid.UUID) -> None: ...


class AttachmentStore(Protocol):
    """Files of messages (GridFS in MongoDB); every read is scoped to the room."""

    async def put(self, attachment: Attachment, data: bytes) -> None:
        """Store the bytes with their description; ``attachment.id`` is the file id."""

    async def get(self, room_id: uuid.UUID, attachment_id: uuid.UUID) -> Attachment | None:
        """The description, if the file exists and belongs to the room."""

    async def open(self, room_id: uuid.UUID, attachment_id: uuid.UUID) -> bytes | None:
        """The bytes, if the file exists and belongs to the room."""

    async def delete(self, room_id: uuid.UUID, attachment_id: uuid.UUID) -> None: ...

    async def drop_room(self, room_id: uuid.UUID) -> None:
        """Delete every file of the room."""
