"""What the messages service keeps from other services' events: rooms and memberships (chat.rooms.events) and
usernames for mentions (chat.users.events).

Room events carry the room's version: an event is applied only when it is newer than the stored one, its effect is
written before the version is advanced, and every effect is idempotent, so a crash or a redelivery replays safely.

Joins, leaves, removals, bans and renames are also kept as the room's activity (``domain.activity``), placed after
the room's highest seq at that moment, so clients show them between the messages after a reload too.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import structlog

from chat_contracts import rooms as ev
from chat_contracts.users import UserDeleted, UserRegistered, UserUpdated
from chat_messages.domain.activity import Activity, ActivityKind
from chat_messages.domain.model import Member, RoomState
from chat_messages.service.context import MessagesContext
from chat_messages.service.owner import RoomOwner

log = structlog.get_logger("chat.messages.projection")


async def apply_room_event(ctx: MessagesContext, owner: RoomOwner, data: ev.RoomEvent) -> None:
    """Keep what a chat.rooms.events event changed, once: a version already applied is skipped."""
    room_id, version = data.room_id, data.room_version
    store = ctx.store
    current = await store.room(room_id)
    if current is not None and version <= current.version:
        return  # already applied (redelivery or replay)
    state = current or RoomState(room_id=room_id, version=0)
    if isinstance(data, ev.RoomCreated):
        state = replace(state, kind=data.kind, history=data.history or "shared", name=data.name, name_known=True)
    elif isinstance(data, ev.RoomUpdated):
        history = data.history or state.history
        state = replace(state, kind=data.kind, history=history, name=data.name, name_known=True)
    elif isinstance(data, ev.RoomArchived):
        state = replace(state, archived=True)
    elif isinstance(data, ev.RoomUnarchived):
        state = replace(state, archived=False)
    elif isinstance(data, ev.RoomBlocked | ev.RoomUnblocked):
        state = replace(state, blocked=isinstance(data, ev.RoomBlocked))
    elif isinstance(data, ev.RoomDeleted):
        grace = ctx.settings.deleted_room_retention_days
        if grace:
            await store.schedule_purge(room_id, data.occurred_at + timedelta(days=grace))
        else:
            await store.drop_room(room_id)
            await ctx.attachments.drop_room(room_id)
        owner.forget(room_id)
        state = replace(state, deleted=True)
        log.info("messages.room_deleted", room_id=str(room_id), purge_after_days=grace)
    elif isinstance(data, ev.MemberJoined):
        joined_after = await store.last_seq(room_id)
        await store.put_member(
            Member(room_id=room_id, user_id=data.user_id, role=data.role, joined_after_seq=joined_after)
        )
    elif isinstance(data, ev.MemberLeft | ev.MemberKicked | ev.MemberBanned):
        await store.remove_member(room_id, data.user_id)
    elif isinstance(data, ev.MemberRoleChanged):
        member = await store.member(room_id, data.user_id)
        if member is not None:
            await store.put_member(replace(member, role=data.new_role))
    await _record_activity(ctx, current, data)
    await store.apply_room(replace(state, version=version))
    await owner.projected(room_id, version)


_REMOVALS: dict[str, ActivityKind] = {"room.member_kicked": "kicked", "room.member_banned": "banned"}


async def _record_activity(ctx: MessagesContext, before: RoomState | None, data: ev.RoomEvent) -> None:
    """Keep a join, leave, removal, ban or rename (a ``RoomUpdated`` whose name differs from the one known
    ``before`` it) as the room's activity, after the room's highest seq (read after a join's own, so a member who
    sees history from joining sees their join). Stored before the room's version advances, once per version."""
    kind: ActivityKind
    if isinstance(data, ev.MemberJoined):
        kind, user_id, by, name = "joined", data.user_id, data.by, None
    elif isinstance(data, ev.MemberLeft):
        kind, user_id, by, name = "left", data.user_id, None, None
    elif isinstance(data, ev.MemberKicked | ev.MemberBanned):
        kind, user_id, by, name = _REMOVALS[data.type], data.user_id, data.by, None
    elif isinstance(data, ev.RoomUpdated) and before is not None and before.name_known and data.name != before.name:
        kind, user_id, by, name = "renamed", None, data.by, data.name
    else:
        return
    after_seq = await ctx.store.last_seq(data.room_id)
    await ctx.store.put_activity(
        Activity(
            room_id=data.room_id,
            room_version=data.room_version,
            kind=kind,
            after_seq=after_seq,
            occurred_at=data.occurred_at,
            user_id=user_id,
            by=by,
            name=name,
        )
    )


def note_room_event(owner: RoomOwner, data: ev.RoomEvent) -> None:
    """Every instance hears every room event (a broadcast subscription): what its ledgers keep of that room is
    older now, so the next command of the room reads it again from the projection."""
    owner.stale(data.room_id, data.room_version)


async def keep_username(ctx: MessagesContext, data: UserRegistered | UserUpdated) -> None:
    """Remember a user's current username, which mentions are resolved against."""
    await ctx.store.put_user(data.user_id, data.username)


async def forget_username(ctx: MessagesContext, data: UserDeleted) -> None:
    await ctx.store.forget_user(data.user_id)
