"""Direct rooms: the one-to-one conversation of a pair, opened on first use and closed while either of the two
blocks the other. Every change emits its event in the same transaction (outbox)."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime

import structlog

from chat_contracts import rooms as ev
from chat_rooms.domain import rules
from chat_rooms.domain.errors import Conflict, RoomsError
from chat_rooms.domain.model import Membership, Room
from chat_rooms.service.context import Actor, RoomsContext
from chat_rooms.service.events import first_event, room_event
from chat_rooms.service.ports import Tx
from chat_rooms.service.room_access import RoomView, add_member, require_verified

log = structlog.get_logger("chat.rooms")


async def open_direct(ctx: RoomsContext, actor: Actor, *, other_id: uuid.UUID) -> tuple[RoomView, bool]:
    """The direct room of the caller and ``other_id``, created on first use; asking twice gives the same room.
    Returns (view, created)."""
    require_verified(actor)
    if other_id == actor.user_id:
        raise RoomsError("invalid_members", "A direct conversation needs someone else.", status=422)
    key = rules.dm_key(actor.user_id, other_id)
    now = ctx.clock()
    async with ctx.store.transaction() as tx:
        if await tx.user(other_id) is None:
            raise RoomsError("user_not_found", "No such user.", status=404)
        if await tx.blocked(other_id, actor.user_id) or await tx.blocked(actor.user_id, other_id):
            raise RoomsError("blocked", "Direct messages between you are blocked.", status=403)
        if ctx.settings.dm_policy == "contacts":
            contact = await tx.contact(actor.user_id, other_id)
            if contact is None or contact.accepted_at is None:
                raise RoomsError("not_a_contact", "Only contacts can message each other here.", status=403)
        existing = await tx.room_by_dm_key(key)
        if existing is not None:
            membership = await tx.membership(existing.id, actor.user_id)
            return RoomView(room=existing, membership=membership), False
    room = Room(
        id=uuid.uuid4(),
        kind="direct",
        name=None,
        topic=None,
        description=None,
        avatar_url=None,
        history="shared",
        created_by=actor.user_id,
        created_at=now,
        updated_at=now,
        dm_key=key,
    )
    try:
        async with ctx.store.transaction() as tx:
            # Under the pair's lock, so that a block made since the check above is seen here, or waits for this
            # room to exist and then closes it (``align_direct_room``).
            await tx.lock_pair(actor.user_id, other_id)
            if await tx.blocked(other_id, actor.user_id) or await tx.blocked(actor.user_id, other_id):
                raise RoomsError("blocked", "Direct messages between you are blocked.", status=403)
            await tx.add_room(room)
            await first_event(tx, room, ev.RoomCreated, now, kind="direct", created_by=actor.user_id, history="shared")
            mine = Membership(room_id=room.id, user_id=actor.user_id, role="member", joined_at=now)
            room = await add_member(tx, room, mine, now, by=None)
            room = await add_member(
                tx,
                room,
                Membership(room_id=room.id, user_id=other_id, role="member", joined_at=now),
                now,
                by=actor.user_id,
            )
            await tx.update_room(room)
    except Conflict:
        # The other person opened it at the same moment: theirs is the room.
        async with ctx.store.transaction() as tx:
            found = await tx.room_by_dm_key(key)
            if found is None:
                raise
            return RoomView(room=found, membership=await tx.membership(found.id, actor.user_id)), False
    return RoomView(room=room, membership=mine), True


async def align_direct_room(tx: Tx, first: uuid.UUID, second: uuid.UUID, now: datetime) -> None:
    """Bring the pair's direct room, if they have one, in line with the blocks between them: closed while either
    blocks the other, open again once neither does; a change is announced (``room.blocked``, ``room.unblocked``).
    The caller holds the pair's lock."""
    found = await tx.room_by_dm_key(rules.dm_key(first, second))
    room = await tx.room(found.id, for_update=True) if found is not None else None
    if room is None:
        return
    blocked = await tx.blocked(first, second) or await tx.blocked(second, first)
    if room.blocked == blocked:
        return
    event = ev.RoomBlocked if blocked else ev.RoomUnblocked
    room = await room_event(tx, replace(room, blocked=blocked), event, now)
    await tx.update_room(room)
    log.info("rooms.direct_room_blocked" if blocked else "rooms.direct_room_unblocked", room_id=str(room.id))
