"""Commands on ``chat.messages.commands``: what the gateway asks the messages service to do for a user.

Key: ``room_id``, so one room's commands are handled in order by one consumer. Ids are ``uuid.UUID`` (see
``chat_contracts.fields``).

Every command names who issued it (``sender_id`` for ``SendMessage``, ``actor_id`` for the rest), already
authenticated by the gateway, and a ``request_id`` the gateway chose. The messages service answers every
command with exactly one event on ``chat.messages.events`` repeating that ``request_id``: the resulting event,
or ``MessageRejected``. A command the service has already applied (a redelivery) is answered again with the
original outcome, never applied twice.

Bounds here are wire limits; the messages service enforces the product rules (for example a body of at most
``MAX_BODY_CHARS`` characters after NFC normalization, non-empty unless the message has attachments).
"""

from __future__ import annotations

from typing import Annotated, Literal, TypeAlias

from pydantic import Field

from chat_contracts.base import Contract
from chat_contracts.fields import (
    MAX_ATTACHMENTS,
    AttachmentId,
    ClientMsgId,
    Emoji,
    MessageBody,
    MessageId,
    RequestId,
    RoomId,
    SeqMarker,
    UserId,
    Version,
)

ReactionAction: TypeAlias = Literal["add", "remove"]

CommandType: TypeAlias = Literal[
    "message.send",
    "message.edit",
    "message.delete",
    "message.react",
    "message.mark_read",
    "message.acknowledge_delivery",
]
"""The ``type`` of every command on this topic; ``MessageRejected.command`` names one."""


class SendMessage(Contract):
    """Post a message; re-sending with the same ``client_msg_id`` returns the original message."""

    type: Literal["message.send"] = "message.send"
    room_id: RoomId
    sender_id: UserId
    client_msg_id: ClientMsgId
    body: MessageBody
    reply_to: MessageId | None = None
    attachment_ids: tuple[AttachmentId, ...] = Field(default=(), max_length=MAX_ATTACHMENTS)
    request_id: RequestId
    room_version: Version | None = None
    """The room version at which the gateway last saw the actor as a member: a membership projection behind it
    waits a moment for the join instead of refusing a member who has just joined."""


class EditMessage(Contract):
    """Replace a message's body."""

    type: Literal["message.edit"] = "message.edit"
    room_id: RoomId
    actor_id: UserId
    message_id: MessageId
    body: MessageBody
    request_id: RequestId
    room_version: Version | None = None
    """The room version at which the gateway last saw the actor as a member: a membership projection behind it
    waits a moment for the join instead of refusing a member who has just joined."""


class DeleteMessage(Contract):
    """Replace a message with a tombstone."""

    type: Literal["message.delete"] = "message.delete"
    room_id: RoomId
    actor_id: UserId
    message_id: MessageId
    request_id: RequestId
    room_version: Version | None = None
    """The room version at which the gateway last saw the actor as a member: a membership projection behind it
    waits a moment for the join instead of refusing a member who has just joined."""


class ReactToMessage(Contract):
    """Add or remove the actor's ``emoji`` reaction on a message."""

    type: Literal["message.react"] = "message.react"
    room_id: RoomId
    actor_id: UserId
    message_id: MessageId
    emoji: Emoji
    action: ReactionAction
    request_id: RequestId
    room_version: Version | None = None
    """The room version at which the gateway last saw the actor as a member: a membership projection behind it
    waits a moment for the join instead of refusing a member who has just joined."""


class MarkRead(Contract):
    """The actor has read the room up to ``up_to_seq``; a marker never moves backwards."""

    type: Literal["message.mark_read"] = "message.mark_read"
    room_id: RoomId
    actor_id: UserId
    up_to_seq: SeqMarker
    request_id: RequestId
    room_version: Version | None = None
    """The room version at which the gateway last saw the actor as a member: a membership projection behind it
    waits a moment for the join instead of refusing a member who has just joined."""


class AcknowledgeDelivery(Contract):
    """The actor's client has received the room up to ``up_to_seq``; a marker never moves backwards."""

    type: Literal["message.acknowledge_delivery"] = "message.acknowledge_delivery"
    room_id: RoomId
    actor_id: UserId
    up_to_seq: SeqMarker
    request_id: RequestId
    room_version: Version | None = None
    """The room version at which the gateway last saw the actor as a member: a membership projection behind it
    waits a moment for the join instead of refusing a member who has just joined."""


MessageCommand: TypeAlias = Annotated[
    SendMessage | EditMessage | DeleteMessage | ReactToMessage | MarkRead | AcknowledgeDelivery,
    Field(discriminator="type"),
]

PAYLOADS: tuple[type[Contract], ...] = (
    SendMessage,
    EditMessage,
    DeleteMessage,
    ReactToMessage,
    MarkRead,
    AcknowledgeDelivery,
)
