"""What clients send on the socket (validated models) and the shape of every ack.

Every client event that expects an answer gets an ack ``{"ok": true, ...}`` or
``{"ok": false, "error": {"code", "message", "retry_after"?}}`` (docs/protocol.md lists the events and codes).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from chat_contracts.fields import (
    MAX_ATTACHMENTS,
    MAX_ROOMS_PER_SUBSCRIBE,
    AttachmentId,
    BodyText,
    ClientMsgId,
    Emoji,
    MessageId,
    RoomId,
    SeqMarker,
    Token,
)
from chat_contracts.messages_out import MessageOut

Ack = dict[str, Any]


def ok(**fields: Any) -> Ack:
    return {"ok": True, **fields}


def fail(code: str, message: str, *, retry_after: float | None = None) -> Ack:
    error: dict[str, Any] = {"code": code, "message": message}
    if retry_after is not None:
        error["retry_after"] = retry_after
    return {"ok": False, "error": error}


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Subscribe(_In):
    room_id: RoomId
    last_seq: SeqMarker | None = None


class SubscribeMany(_In):
    rooms: list[Subscribe] = Field(min_length=1, max_length=MAX_ROOMS_PER_SUBSCRIBE)

    @model_validator(mode="after")
    def _distinct(self) -> SubscribeMany:
        if len({room.room_id for room in self.rooms}) != len(self.rooms):
            raise ValueError("each room may appear once")
        return self


class RoomRef(_In):
    room_id: RoomId


class Send(_In):
    room_id: RoomId
    client_msg_id: ClientMsgId
    body: BodyText = ""
    reply_to: MessageId | None = None
    attachment_ids: list[AttachmentId] = Field(default_factory=list, max_length=MAX_ATTACHMENTS)


class Edit(_In):
    room_id: RoomId
    message_id: MessageId
    body: BodyText


class Delete(_In):
    room_id: RoomId
    message_id: MessageId


class React(_In):
    room_id: RoomId
    message_id: MessageId
    emoji: Emoji
    action: Literal["add", "remove"]


class Marker(_In):
    room_id: RoomId
    seq: SeqMarker


class Typing(_In):
    room_id: RoomId


class SetPresence(_In):
    status: Literal["online", "away"]


class Refresh(_In):
    token: Token


# --- what the gateway sends: acks and server events (documented in docs/asyncapi/socketio.json) -----------------


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorBody(_Out):
    code: str
    message: str
    retry_after: float | None = None


class ErrorAck(_Out):
    """Any refused event."""

    ok: Literal[False]
    error: ErrorBody


class PresenceEntry(_Out):
    user_id: uuid.UUID
    status: Literal["online", "away", "offline"]
    last_seen: datetime | None


class SubscribeAck(_Out):
    ok: Literal[True]
    room_id: uuid.UUID
    recovered: bool | None
    """None: no last_seq was given; True: every later message was replayed; False: too many, reload history."""
    seq: int | None
    """The room's current seq (None when history could not be read)."""
    replayed: int | None = None
    changes_recovered: bool | None = None
    """False: edits, reactions and deletions of messages at or before last_seq, markers and members are not
    replayed; reload them."""
    presence: list[PresenceEntry]


class RoomError(ErrorAck):
    room_id: uuid.UUID


class SubscribeManyAck(_Out):
    ok: Literal[True]
    results: list[SubscribeAck | RoomError]


class RoomAck(_Out):
    ok: Literal[True]
    room_id: uuid.UUID


class SendAck(_Out):
    ok: Literal[True]
    message_id: uuid.UUID
    seq: int
    room_id: uuid.UUID


class VersionAck(_Out):
    ok: Literal[True]
    version: int


class ReactAck(_Out):
    ok: Literal[True]
    version: int
    counts: dict[str, int]


class MarkerAck(_Out):
    ok: Literal[True]
    seq: int


class TypingAck(_Out):
    ok: Literal[True]
    room_id: uuid.UUID
    ttl_seconds: float


class PresenceAck(_Out):
    ok: Literal[True]
    status: Literal["online", "away"] = Field(description="this user's status on this instance, across their sockets")
    seen_as: Literal["online", "away"] = Field(
        description="what other members are shown: online while any of the user's devices anywhere is online"
    )


class RefreshAck(_Out):
    ok: Literal[True]
    expires_at: datetime


class TypingOut(_Out):
    room_id: uuid.UUID
    user_id: uuid.UUID
    typing: bool
    expires_at: datetime


class PresenceOut(_Out):
    room_id: uuid.UUID
    user_id: uuid.UUID
    status: Literal["online", "away", "offline"]
    last_seen: datetime | None


class PresenceChangesOut(_Out):
    room_id: uuid.UUID
    changes: list[PresenceEntry]


class RoomAddedOut(_Out):
    room_id: uuid.UUID
    role: str
    by: uuid.UUID | None
    """Who added you (None: you joined yourself)."""


class RoomInvitedOut(_Out):
    room_id: uuid.UUID
    by: uuid.UUID


class RoomEventOut(BaseModel):
    """A chat.rooms.events event as it is on the topic (``type``, ``room_id``, ``room_version`` and the event's
    own fields: see docs/asyncapi/kafka.json); ``room_version`` orders them."""

    model_config = ConfigDict(extra="allow")

    type: str
    room_id: uuid.UUID
    room_version: int


class RoomRemovedOut(_Out):
    room_id: uuid.UUID


class SessionEndedOut(_Out):
    reason: str
    """token_expired, slow_consumer, or why the session ended (logout, refresh_reuse, account_deleted, …)."""


class AuthExpiringOut(_Out):
    expires_at: datetime
    seconds_left: float


@dataclass(frozen=True)
class ClientEvent:
    summary: str
    payload: type[BaseModel]
    ack: type[BaseModel]


CLIENT_EVENTS: Final[dict[str, ClientEvent]] = {
    "room:subscribe": ClientEvent("Receive a room's events, recovering those after last_seq", Subscribe, SubscribeAck),
    "room:subscribe_many": ClientEvent(
        f"Subscribe to up to {MAX_ROOMS_PER_SUBSCRIBE} rooms in one event", SubscribeMany, SubscribeManyAck
    ),
    "room:unsubscribe": ClientEvent("Stop receiving a room's events", RoomRef, RoomAck),
    "message:send": ClientEvent("Send a message; acked once stored, with its seq", Send, SendAck),
    "message:edit": ClientEvent("Replace a message's body", Edit, VersionAck),
    "message:delete": ClientEvent("Delete a message (a tombstone keeps its seq)", Delete, VersionAck),
    "message:react": ClientEvent("Add or remove a reaction", React, ReactAck),
    "room:read": ClientEvent("Move the read marker forward", Marker, MarkerAck),
    "room:delivered": ClientEvent("Acknowledge delivery up to a seq", Marker, MarkerAck),
    "typing:start": ClientEvent("Start or renew typing in a room", Typing, TypingAck),
    "typing:stop": ClientEvent("Stop typing in a room", Typing, RoomAck),
    "presence:set": ClientEvent("Set this socket online or away", SetPresence, PresenceAck),
    "auth:refresh": ClientEvent("Hand a live socket a fresh access token of the same user", Refresh, RefreshAck),
}
"""Every event a client may send, its payload and its success ack (a refusal is an ``ErrorAck``)."""

EVENT_LIMITS: Final[dict[str, tuple[float, int]]] = {
    "typing:start": (2.0, 6),
    "typing:stop": (2.0, 6),
    "presence:set": (1.0, 5),
    "auth:refresh": (0.2, 3),
    "room:subscribe_many": (0.5, 4),
}
"""Events with a budget of their own (per second, burst) besides the user's budget for all events."""

GATEWAY_EVENTS: Final[dict[str, tuple[str, type[BaseModel]]]] = {
    "message:new": ("A new message (live, or replayed on recovery), in seq order per room", MessageOut),
    "typing": ("A member started or stopped typing", TypingOut),
    "presence": ("A member's status changed", PresenceOut),
    "presence:changes": (
        "Several members' statuses changed at about the same time (each member once, the latest status)",
        PresenceChangesOut,
    ),
    "room:removed": ("You left, were kicked or banned; the socket no longer receives the room", RoomRemovedOut),
    "room:added": ("You are now a member of a room (to every socket of yours)", RoomAddedOut),
    "room:invited": ("You were invited to a room (to every socket of yours)", RoomInvitedOut),
    "room:event": ("Something happened in a room you subscribe to: members, roles, name, archive", RoomEventOut),
    "session:ended": ("Why the socket is about to be closed", SessionEndedOut),
    "auth:expiring": ("The access token expires soon: send auth:refresh", AuthExpiringOut),
}
"""Server events the gateway itself makes; message events mirror chat.messages.events (see ``MESSAGE_EVENTS``)."""

MESSAGE_EVENTS: Final[dict[str, str]] = {
    "message:edited": "message.edited",
    "message:deleted": "message.deleted",
    "message:reaction": "message.reaction_changed",
    "room:read": "message.read_marker_moved",
    "room:delivered": "message.delivery_marker_moved",
}
"""Socket event → the chat.messages.events type it carries (without ``type`` and ``request_id``); ``message:new``
(from ``message.created``) is a ``MessageOut`` instead."""
