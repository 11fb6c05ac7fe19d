"""Events on ``chat.ephemeral``: typing and presence, from gateway instances to gateway instances.

Key: ``room_id``. Presence is fanned out per room, so every event is addressed to exactly the room members allowed
to see it and nothing is delivered to a non-member. A gateway collects what changed in each room for a short
interval and publishes it as one ``PresenceChanges`` per room, so a room whose members all reconnect at once costs
a record per interval, not one per member (``PresenceChanged``, one member, is still read from older gateways).
Ids are ``uuid.UUID`` (see ``chat_contracts.fields``).

No service stores these and the topic keeps them only for an hour. Every typing indicator carries its own
expiry, so a lost "stopped typing" cannot leave one on screen.

Presence across gateway instances: each instance reports what it sees of a user (``instance_id``), and every
instance shows a user as online when any instance reports them online, away when none says online and one says
away, offline otherwise. Each instance sends a ``GatewayHeartbeat`` every few seconds; the reports of an instance
that fell silent (crashed) or restarted (new ``started_at``) are forgotten.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Final, Literal, TypeAlias

from pydantic import Field

from chat_contracts.base import Contract
from chat_contracts.fields import Part, RoomId, UserId, UtcDatetime

PresenceStatus: TypeAlias = Literal["online", "away", "offline"]
MAX_PRESENCE_CHANGES: Final = 1000
"""Members in one ``PresenceChanges``; a gateway splits a longer list."""


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
    instance_id: str | None = Field(default=None, max_length=40)
    """The gateway instance whose connections this report describes (None: a gateway before instance reports)."""


class PresenceReport(Part):
    """One member's status, as one ``PresenceChanges`` reports it."""

    user_id: UserId
    status: PresenceStatus
    last_seen: UtcDatetime | None = None


class PresenceChanges(Contract):
    """The statuses of members of this room that changed on gateway ``instance_id`` in one interval (each user
    once, the latest)."""

    type: Literal["presence.changes"] = "presence.changes"
    room_id: RoomId
    instance_id: str = Field(max_length=40)
    changes: tuple[PresenceReport, ...] = Field(min_length=1, max_length=MAX_PRESENCE_CHANGES)


NO_ROOM: Final = uuid.UUID(int=0)
"""The ``room_id`` of records about a gateway instance rather than a room (they share one partition)."""


class GatewayHeartbeat(Contract):
    """Gateway ``instance_id`` (started at ``started_at``) is alive; sent every ``interval_seconds``.

    ``room_id`` is always ``NO_ROOM``. An instance not heard from for three intervals is taken to be gone, and
    the presence it reported is forgotten. A heartbeat with a ``started_at`` not seen before means the instance
    (re)started: its earlier reports are forgotten and the other instances re-announce the presence they see, so
    the newcomer learns it.
    """

    type: Literal["gateway.heartbeat"] = "gateway.heartbeat"
    room_id: RoomId
    instance_id: str = Field(max_length=40)
    started_at: UtcDatetime
    interval_seconds: float = Field(gt=0, le=3600)


EphemeralEvent: TypeAlias = Annotated[
    TypingChanged | PresenceChanged | PresenceChanges | GatewayHeartbeat, Field(discriminator="type")
]

PAYLOADS: tuple[type[Contract], ...] = (TypingChanged, PresenceChanged, PresenceChanges, GatewayHeartbeat)
