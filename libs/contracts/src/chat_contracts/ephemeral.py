"""Events on ``chat.ephemeral``: typing and presence, from gateway instances to gateway instances.

Key: ``room_id``. Presence is fanned out per room: the gateway publishes one ``PresenceChanged`` per room the
user is in, so every event is addressed to exactly the room members allowed to see it and nothing is delivered
to a non-member. Ids are ``uuid.UUID`` (see ``chat_contracts.fields``).

No service stores these and the topic keeps them only for an hour. Every typing indicator carries its own
expiry, so a lost "stopped typing" cannot leave one on screen.
"""

from __future__ import annotations

from typing import Annotated, Literal, TypeAlias

from pydantic import Field

from chat_contracts.base import Contract
from chat_contracts.fields import RoomId, UserId, UtcDatetime

PresenceStatus: TypeAlias = Literal["online", "away", "offline"]


class TypingChanged(Contract):
    """``user_id`` started or stopped typing in the room.

    Clients drop a ``typing`` indicator at ``expires_at`` unless a newer event renews it; when ``typing`` is
    False, ``expires_at`` is the moment typing stopped.
    """

    type: Literal["typing.changed"] = "typing.changed"
    room_id: RoomId
    user_id: UserId
    typing: bool
    expires_at: UtcDatetime


class PresenceChanged(Contract):
    """``user_id``'s status as members of this room see it; ``last_seen`` is when they were last active."""

    type: Literal["presence.changed"] = "presence.changed"
    room_id: RoomId
    user_id: UserId
    status: PresenceStatus
    last_seen: UtcDatetime | None = None


EphemeralEvent: TypeAlias = Annotated[TypingChanged | PresenceChanged, Field(discriminator="type")]

PAYLOADS: tuple[type[Contract], ...] = (TypingChanged, PresenceChanged)
