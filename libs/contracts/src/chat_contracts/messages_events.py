"""Events on ``chat.messages.events``: what happened to messages, published by the messages service.

Key: ``room_id``, so a room's events arrive in the order the service decided them. Ids are ``uuid.UUID`` (see
``chat_contracts.fields``).

``seq`` is the message's position in its room (1, 2, 3… with no gaps); edits, deletions and reactions repeat
the seq of the message they change. ``version`` counts the changes to one message: it is 1 when created and
grows by one with each edit, deletion or reaction change, so a consumer holding a newer version ignores an
older event.

``request_id`` repeats the command's, when the event answers one, so the gateway can ack the right socket. It
is None for events with no command behind them.
"""

from __future__ import annotations

from typing import Annotated, Literal, TypeAlias

from pydantic import Field, NonNegativeFloat, PositiveInt

from chat_contracts.base import Contract
from chat_contracts.fields import (
    MAX_ATTACHMENTS,
    MAX_MENTIONS,
    MAX_REACTION_KINDS,
    AttachmentId,
    ClientMsgId,
    Emoji,
    ErrorText,
    MessageBody,
    MessageId,
    Part,
    RequestId,
    RoomId,
    Seq,
    SeqMarker,
    UserId,
    Username,
    UtcDatetime,
    Version,
)
from chat_contracts.messages_commands import CommandType, ReactionAction

RejectionCode: TypeAlias = Literal[
    "not_member",
    "room_archived",
    "too_long",
    "invalid_reply",
    "rate_limited",
    "blocked",
    "user_blocked",
    "invalid",
    "not_found",
    "forbidden",
]
"""Why a command was refused.

``blocked``: the text breaks a moderation rule. ``user_blocked``: the room is a direct room whose two people are
blocked from each other (``room.blocked``), so nobody writes in it until the block is lifted. ``not_found``: the
message to edit, delete or react to does not exist (or is deleted). ``forbidden``: the actor is a member but may
not do this (for example edit someone else's message).
"""


class MentionedUser(Part):
    """A user the body mentions, resolved when the message was accepted."""

    user_id: UserId
    username: Username


class Mentions(Part):
    """Who a message notifies: named users, and ``room`` when it mentions everyone (@room, @everyone)."""

    users: tuple[MentionedUser, ...] = Field(default=(), max_length=MAX_MENTIONS)
    room: bool = False


class MessageCreated(Contract):
    """A message was accepted and stored durably with the next ``seq`` of its room."""

    type: Literal["message.created"] = "message.created"
    message_id: MessageId
    room_id: RoomId
    seq: Seq
    sender_id: UserId
    client_msg_id: ClientMsgId
    body: MessageBody
    reply_to: MessageId | None = None
    attachment_ids: tuple[AttachmentId, ...] = Field(default=(), max_length=MAX_ATTACHMENTS)
    mentions: Mentions = Mentions()
    created_at: UtcDatetime
    request_id: RequestId | None = None


class MessageEdited(Contract):
    """A message's body was replaced."""

    type: Literal["message.edited"] = "message.edited"
    message_id: MessageId
    room_id: RoomId
    seq: Seq
    body: MessageBody
    edited_by: UserId
    edited_at: UtcDatetime
    version: Version
    request_id: RequestId | None = None


class MessageDeleted(Contract):
    """A message became a tombstone: its body, attachments and reactions are gone, its ``seq`` stays taken."""

    type: Literal["message.deleted"] = "message.deleted"
    message_id: MessageId
    room_id: RoomId
    seq: Seq
    deleted_by: UserId
    deleted_at: UtcDatetime
    version: Version
    request_id: RequestId | None = None


class ReactionChanged(Contract):
    """``user_id`` added or removed ``emoji``; ``counts`` is the message's full reaction tally afterwards."""

    type: Literal["message.reaction_changed"] = "message.reaction_changed"
    message_id: MessageId
    room_id: RoomId
    seq: Seq
    emoji: Emoji
    user_id: UserId
    action: ReactionAction
    counts: dict[Emoji, PositiveInt] = Field(default_factory=dict, max_length=MAX_REACTION_KINDS)
    version: Version
    request_id: RequestId | None = None


class ReadMarkerMoved(Contract):
    """``user_id`` has read the room up to ``up_to_seq``.

    Answers ``MarkRead``; when the command would have moved the marker backwards, ``up_to_seq`` is where the
    marker stays.
    """

    type: Literal["message.read_marker_moved"] = "message.read_marker_moved"
    room_id: RoomId
    user_id: UserId
    up_to_seq: SeqMarker
    request_id: RequestId | None = None


class DeliveryMarkerMoved(Contract):
    """``user_id``'s clients have received the room up to ``up_to_seq``.

    Answers ``AcknowledgeDelivery``; when the command would have moved the marker backwards, ``up_to_seq`` is
    where the marker stays.
    """

    type: Literal["message.delivery_marker_moved"] = "message.delivery_marker_moved"
    room_id: RoomId
    user_id: UserId
    up_to_seq: SeqMarker
    request_id: RequestId | None = None


class MessageRejected(Contract):
    """The messages service refused ``command``; nothing changed.

    ``sender_id`` is whoever issued the command; ``client_msg_id`` is set when the command was
    ``SendMessage``. ``retry_after`` (seconds) is set for ``rate_limited``.
    """

    type: Literal["message.rejected"] = "message.rejected"
    room_id: RoomId
    sender_id: UserId
    command: CommandType
    client_msg_id: ClientMsgId | None = None
    request_id: RequestId
    code: RejectionCode
    message: ErrorText
    retry_after: NonNegativeFloat | None = None


MessageEvent: TypeAlias = Annotated[
    MessageCreated
    | MessageEdited
    | MessageDeleted
    | ReactionChanged
    | ReadMarkerMoved
    | DeliveryMarkerMoved
    | MessageRejected,
    Field(discriminator="type"),
]

PAYLOADS: tuple[type[Contract], ...] = (
    MessageCreated,
    MessageEdited,
    MessageDeleted,
    ReactionChanged,
    ReadMarkerMoved,
    DeliveryMarkerMoved,
    MessageRejected,
)
