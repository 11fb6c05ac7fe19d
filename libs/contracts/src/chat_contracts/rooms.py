"""Events on ``chat.rooms.events``: rooms and their membership, published by the rooms service.

Key: ``room_id``, so every event about one room is ordered. Ids are ``uuid.UUID`` (see
``chat_contracts.fields``).

``room_version``: every event about a room carries the room's version after the change. The rooms service
raises it by one in the same transaction as the change (``RoomCreated`` is version 1), so it only grows.
Consumers keep the last version they applied per room and skip any event whose ``room_version`` is not
greater: redelivered and replayed events then change nothing. Consumers must rely only on "greater than",
never on "exactly one more".

Membership is carried only by the ``Member*`` events: creating a room publishes ``RoomCreated`` followed by a
``MemberJoined`` for every initial member (the creator as owner), so a membership projection needs one code
path. A user is a member from ``MemberJoined`` until ``MemberLeft``, ``MemberKicked``, ``MemberBanned`` or
``RoomDeleted``; an invitation (``MemberInvited``) does not make anyone a member.

``by`` names the user who made the change; where it is optional, ``None`` means the platform or the member
themselves made it.
"""

from __future__ import annotations

from typing import Annotated, Literal, TypeAlias

from pydantic import Field

from chat_contracts.base import Contract
from chat_contracts.fields import Reason, RoomId, RoomName, RoomTopic, UserId, UtcDatetime, Version

RoomKind: TypeAlias = Literal["public", "private", "password", "direct", "group_dm"]
RoomRole: TypeAlias = Literal["owner", "admin", "member"]
HistoryVisibility: TypeAlias = Literal["shared", "joined"]
"""``shared``: members see the whole history; ``joined``: members see messages from when they joined."""


class RoomCreated(Contract):
    """A room exists. ``name`` is None for direct and unnamed group conversations."""

    type: Literal["room.created"] = "room.created"
    room_id: RoomId
    room_version: Version
    kind: RoomKind
    name: RoomName | None = None
    topic: RoomTopic | None = None
    created_by: UserId
    occurred_at: UtcDatetime
    history: HistoryVisibility | None = None


class RoomUpdated(Contract):
    """The room's settings changed; carries all of them, so consumers overwrite rather than merge."""

    type: Literal["room.updated"] = "room.updated"
    room_id: RoomId
    room_version: Version
    kind: RoomKind
    name: RoomName | None = None
    topic: RoomTopic | None = None
    by: UserId | None = None
    occurred_at: UtcDatetime
    history: HistoryVisibility | None = None


class RoomArchived(Contract):
    """The room is read-only: history stays readable, nobody can post."""

    type: Literal["room.archived"] = "room.archived"
    room_id: RoomId
    room_version: Version
    by: UserId | None = None
    occurred_at: UtcDatetime


class RoomUnarchived(Contract):
    """An archived room accepts messages again."""

    type: Literal["room.unarchived"] = "room.unarchived"
    room_id: RoomId
    room_version: Version
    by: UserId | None = None
    occurred_at: UtcDatetime


class RoomBlocked(Contract):
    """A direct room whose two people are now blocked from each other (one blocked the other, or both did).
    Nobody can post, edit, delete or react in it, and neither sees the other's typing, presence or receipts
    there; its history stays readable. Only direct rooms have it (docs/decisions/0009)."""

    type: Literal["room.blocked"] = "room.blocked"
    room_id: RoomId
    room_version: Version
    occurred_at: UtcDatetime


class RoomUnblocked(Contract):
    """The last block between the two people of a direct room was lifted: it works again as before."""

    type: Literal["room.unblocked"] = "room.unblocked"
    room_id: RoomId
    room_version: Version
    occurred_at: UtcDatetime


class RoomDeleted(Contract):
    """The room is gone, with its membership; consumers drop what they hold about it."""

    type: Literal["room.deleted"] = "room.deleted"
    room_id: RoomId
    room_version: Version
    by: UserId | None = None
    occurred_at: UtcDatetime


class MemberJoined(Contract):
    """``user_id`` is a member with ``role``; ``by`` added them, None when they joined on their own."""

    type: Literal["room.member_joined"] = "room.member_joined"
    room_id: RoomId
    room_version: Version
    user_id: UserId
    role: RoomRole
    by: UserId | None = None
    occurred_at: UtcDatetime


class MemberLeft(Contract):
    """``user_id`` left on their own (or their account was deleted)."""

    type: Literal["room.member_left"] = "room.member_left"
    room_id: RoomId
    room_version: Version
    user_id: UserId
    occurred_at: UtcDatetime


class MemberInvited(Contract):
    """``user_id`` may join; they are not a member until ``MemberJoined``."""

    type: Literal["room.member_invited"] = "room.member_invited"
    room_id: RoomId
    room_version: Version
    user_id: UserId
    by: UserId
    occurred_at: UtcDatetime


class MemberKicked(Contract):
    """``by`` removed ``user_id``; they may join again."""

    type: Literal["room.member_kicked"] = "room.member_kicked"
    room_id: RoomId
    room_version: Version
    user_id: UserId
    by: UserId
    reason: Reason | None = None
    occurred_at: UtcDatetime


class MemberBanned(Contract):
    """``by`` removed ``user_id`` (if a member) and forbids them to join until ``MemberUnbanned``."""

    type: Literal["room.member_banned"] = "room.member_banned"
    room_id: RoomId
    room_version: Version
    user_id: UserId
    by: UserId
    reason: Reason | None = None
    occurred_at: UtcDatetime


class MemberUnbanned(Contract):
    """``user_id`` may join again; it does not make them a member."""

    type: Literal["room.member_unbanned"] = "room.member_unbanned"
    room_id: RoomId
    room_version: Version
    user_id: UserId
    by: UserId
    occurred_at: UtcDatetime


class MemberRoleChanged(Contract):
    """A member's role changed from ``old_role`` to ``new_role``."""

    type: Literal["room.member_role_changed"] = "room.member_role_changed"
    room_id: RoomId
    room_version: Version
    user_id: UserId
    old_role: RoomRole
    new_role: RoomRole
    by: UserId
    occurred_at: UtcDatetime


RoomEvent: TypeAlias = Annotated[
    RoomCreated
    | RoomUpdated
    | RoomArchived
    | RoomUnarchived
    | RoomBlocked
    | RoomUnblocked
    | RoomDeleted
    | MemberJoined
    | MemberLeft
    | MemberInvited
    | MemberKicked
    | MemberBanned
    | MemberUnbanned
    | MemberRoleChanged,
    Field(discriminator="type"),
]

PAYLOADS: tuple[type[Contract], ...] = (
    RoomCreated,
    RoomUpdated,
    RoomArchived,
    RoomUnarchived,
    RoomBlocked,
    RoomUnblocked,
    RoomDeleted,
    MemberJoined,
    MemberLeft,
    MemberInvited,
    MemberKicked,
    MemberBanned,
    MemberUnbanned,
    MemberRoleChanged,
)
