"""What the room use-case modules share: the caller's view of a room, the verified-email gate on creating and
joining, adding a member with its ``member.joined`` event and deleting a room with its ``room.deleted`` event
(outbox, same transaction)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime

import structlog

from chat_contracts import rooms as ev
from chat_rooms.domain.errors import RoomsError
from chat_rooms.domain.model import Membership, Room
from chat_rooms.service.context import Actor
from chat_rooms.service.events import room_event
from chat_rooms.service.ports import Tx

log = structlog.get_logger("chat.rooms")


@dataclass(frozen=True, slots=True)
class RoomView:
    """A room as one caller sees it."""

    room: Room
    membership: Membership | None


def require_verified(actor: Actor) -> None:
    """Only people with a verified email address create rooms, open conversations or join."""
    if not actor.email_verified:
        raise RoomsError("email_unverified", "Verify your email address first.", status=403)


async def add_member(tx: Tx, room: Room, membership: Membership, now: datetime, *, by: uuid.UUID | None) -> Room:
    """Store ``membership``, emit ``member.joined`` and return the room with one more member (not yet saved)."""
    await tx.add_membership(membership)
    room = await room_event(tx, room, ev.MemberJoined, now, user_id=membership.user_id, role=membership.role, by=by)
    return replace(room, member_count=room.member_count + 1)


async def delete_room(tx: Tx, room: Room, now: datetime, *, by: uuid.UUID | None) -> None:
    """Emit ``room.deleted`` and delete the room with its memberships, invitations and bans; ``by`` is None when
    no one asked (the last member left, or the last account was deleted)."""
    await room_event(tx, room, ev.RoomDeleted, now, by=by)
    await tx.delete_room(room.id)
    log.info("rooms.deleted", room_id=str(room.id))
