"""What the rooms service does with chat.users.events: keep a profile projection and clean up deleted accounts.

Idempotent: an event id is processed once (``mark_processed``); profile writes overwrite, so a replay in order
ends in the same state.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

import structlog

from chat_contracts import rooms as ev
from chat_contracts.users import UserDeleted, UserRegistered, UserUpdated
from chat_rooms.domain.model import Membership, UserProfile
from chat_rooms.service.context import RoomsContext
from chat_rooms.service.events import room_event
from chat_rooms.service.ports import Tx
from chat_rooms.service.room_access import delete_room

log = structlog.get_logger("chat.rooms.users")

_RANK = {"owner": 0, "admin": 1, "member": 2}


async def keep_profile(ctx: RoomsContext, data: UserRegistered | UserUpdated, *, event_id: uuid.UUID) -> None:
    """Keep the profile an account event carries, once per event id."""
    async with ctx.store.transaction() as tx:
        if await tx.mark_processed(event_id, at=ctx.clock()):
            await tx.put_user(
                UserProfile(
                    user_id=data.user_id,
                    username=data.username,
                    display_name=data.display_name,
                    updated_at=data.occurred_at,
                    # user.updated carries the whole profile: no avatar there means none (registration has none).
                    avatar_url=data.avatar_url if isinstance(data, UserUpdated) else None,
                )
            )


async def forget_user(ctx: RoomsContext, data: UserDeleted, *, event_id: uuid.UUID) -> None:
    """Remove a deleted account from every room, once per event id; an owner's room passes to the
    longest-standing admin, then member; a room left empty is deleted."""
    async with ctx.store.transaction() as tx:
        if await tx.mark_processed(event_id, at=ctx.clock()):
            await _forget(tx, data.user_id, data.occurred_at)


async def _forget(tx: Tx, user_id: uuid.UUID, now: datetime) -> None:
    """Leave every room, then drop the profile."""
    for membership in await tx.memberships_of(user_id):
        room = await tx.room(membership.room_id, for_update=True)
        if room is None:
            continue
        await tx.remove_membership(room.id, user_id)
        room = await room_event(tx, room, ev.MemberLeft, now, user_id=user_id)
        room = replace(room, member_count=max(0, room.member_count - 1))
        if room.member_count == 0:
            await delete_room(tx, room, now, by=None)
            continue
        if membership.role == "owner":
            successor = _successor(await tx.members(room.id, limit=10_000))
            if successor is not None:
                await tx.update_membership(replace(successor, role="owner"))
                room = await room_event(
                    tx,
                    room,
                    ev.MemberRoleChanged,
                    now,
                    user_id=successor.user_id,
                    old_role=successor.role,
                    # The departing owner hands over (the contract needs a ``by``; nobody else acted).
                    new_role="owner",
                    by=user_id,
                )
        await tx.update_room(room)
    await tx.delete_user(user_id)
    log.info("rooms.user_forgotten", user_id=str(user_id))


def _successor(members: Sequence[Membership]) -> Membership | None:
    if not members:
        return None
    return min(members, key=lambda m: (_RANK[m.role], m.joined_at, str(m.user_id)))
