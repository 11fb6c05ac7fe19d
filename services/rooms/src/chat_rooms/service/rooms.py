"""Rooms and membership: create, find, change, join, leave, invite, moderate (direct rooms are in ``direct``).
Every rule check goes through ``domain.permissions``; every change emits its event in the same transaction
(outbox)."""

from __future__ import annotations

import math
import uuid
from dataclasses import replace
from datetime import datetime, timedelta

import structlog
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from chat_contracts import rooms as ev
from chat_rooms.domain import permissions, rules
from chat_rooms.domain.errors import Conflict, RoomNotFound, RoomsError
from chat_rooms.domain.model import Ban, History, Invitation, Membership, Role, Room, RoomKind, RoomListing
from chat_rooms.domain.permissions import Action
from chat_rooms.service.context import Actor, RoomsContext
from chat_rooms.service.events import first_event, room_event
from chat_rooms.service.ports import Tx
from chat_rooms.service.room_access import RoomView, add_member, delete_room, require_verified

log = structlog.get_logger("chat.rooms")

CREATABLE: frozenset[RoomKind] = frozenset({"public", "private", "password", "group_dm"})


def visible_without_membership(room: Room) -> bool:
    """Public and password rooms can be seen (name, topic) by anyone signed in; the rest only by members."""
    return room.kind in ("public", "password")


async def _load(
    tx: Tx, room_id: uuid.UUID, actor: Actor, *, for_update: bool = False
) -> tuple[Room, Membership | None]:
    """The room and the caller's membership; 404 when the caller may not know the room exists."""
    room = await tx.room(room_id, for_update=for_update)
    if room is None:
        raise RoomNotFound()
    membership = await tx.membership(room_id, actor.user_id)
    if membership is None and not visible_without_membership(room):
        raise RoomNotFound()
    return room, membership


async def _member_action(
    tx: Tx, room_id: uuid.UUID, actor: Actor, action: Action, *, target: Role | None = None
) -> tuple[Room, Membership]:
    room, membership = await _load(tx, room_id, actor, for_update=True)
    if membership is None:
        raise RoomsError("not_member", "Join the room first.", status=403)
    permissions.require(membership.role, action, room.kind, archived=room.archived, target=target)
    return room, membership


def _hash_password(ctx: RoomsContext, password: str) -> str:
    return ctx.hasher.hash(rules.room_password(password))


async def create_room(
    ctx: RoomsContext,
    actor: Actor,
    *,
    kind: RoomKind,
    name: str | None,
    topic: str | None = None,
    description: str | None = None,
    avatar_url: str | None = None,
    history: History | None = None,
    password: str | None = None,
    members: tuple[uuid.UUID, ...] = (),
) -> RoomView:
    """Create a room with the caller as owner; a group DM also adds ``members`` (up to the size limit)."""
    require_verified(actor)
    if kind not in CREATABLE:
        raise RoomsError("invalid_kind", "Open direct messages with POST /api/rooms/direct.", status=422)
    if kind == "password" and not password:
        raise RoomsError("room_password_required", "A password room needs a password.", status=422)
    if kind != "password" and password:
        raise RoomsError("invalid_room_password", "Only password rooms take a password.", status=422)
    if kind != "group_dm" and members:
        raise RoomsError("invalid_members", "Invite people after creating the room.", status=422)
    others = tuple(dict.fromkeys(m for m in members if m != actor.user_id))
    if kind == "group_dm" and not 1 <= len(others) <= rules.GROUP_DM_MAX_MEMBERS - 1:
        raise RoomsError(
            "invalid_members", f"A group conversation has 2–{rules.GROUP_DM_MAX_MEMBERS} people.", status=422
        )
    clean_name = rules.room_name(name) if name is not None else None
    if clean_name is None and kind != "group_dm":
        raise RoomsError("invalid_name", "Give the room a name.", status=422)
    now = ctx.clock()
    room = Room(
        id=uuid.uuid4(),
        kind=kind,
        name=clean_name,
        topic=rules.topic(topic),
        description=rules.description(description),
        avatar_url=avatar_url,
        history=history or ctx.settings.default_history,
        created_by=actor.user_id,
        created_at=now,
        updated_at=now,
        password_hash=_hash_password(ctx, password) if password else None,
    )
    async with ctx.store.transaction() as tx:
        await _enforce_creation_rate(ctx, tx, actor, now)
        for other in others:
            if await tx.user(other) is None:
                raise RoomsError("user_not_found", "No such user.", status=404)
            if await tx.blocked(other, actor.user_id):
                raise RoomsError("blocked", "One of these people does not accept conversations from you.", status=403)
            if await tx.blocked(actor.user_id, other):
                raise RoomsError("blocked", "You blocked one of these people; unblock them first.", status=403)
        await tx.add_room(room)
        await first_event(
            tx,
            room,
            ev.RoomCreated,
            now,
            kind=room.kind,
            name=room.name,
            topic=room.topic,
            created_by=actor.user_id,
            history=room.history,
        )
        owner = Membership(room_id=room.id, user_id=actor.user_id, role="owner", joined_at=now)
        room = await add_member(tx, room, owner, now, by=None)
        for other in others:
            room = await add_member(
                tx,
                room,
                Membership(room_id=room.id, user_id=other, role="member", joined_at=now),
                now,
                by=actor.user_id,
            )
        await tx.update_room(room)
    log.info("rooms.created", room_id=str(room.id), kind=kind)
    return RoomView(room=room, membership=owner)


async def _enforce_creation_rate(ctx: RoomsContext, tx: Tx, actor: Actor, now: datetime) -> None:
    count = await tx.hit(f"create-room:{actor.user_id}", window=timedelta(hours=1), now=now)
    if count > ctx.settings.rooms_per_user_per_hour:
        raise RoomsError("rate_limited", "Too many new rooms; try again later.", status=429, retry_after=3600.0)


async def get_room(ctx: RoomsContext, actor: Actor, room_id: uuid.UUID) -> RoomView:
    async with ctx.store.transaction() as tx:
        room, membership = await _load(tx, room_id, actor)
    return RoomView(room=room, membership=membership)


async def update_room(
    ctx: RoomsContext,
    actor: Actor,
    room_id: uuid.UUID,
    *,
    changes: dict[str, object],
) -> RoomView:
    """Change name, topic, description, avatar, history visibility or (password rooms) the password."""
    now = ctx.clock()
    async with ctx.store.transaction() as tx:
        room, membership = await _member_action(tx, room_id, actor, "update")
        updated = room
        if "name" in changes:
            value = changes["name"]
            if value is None and room.kind != "group_dm":
                raise RoomsError("invalid_name", "Give the room a name.", status=422)
            updated = replace(updated, name=rules.room_name(str(value)) if value is not None else None)
        if "topic" in changes:
            updated = replace(updated, topic=rules.topic(_optional_str(changes["topic"])))
        if "description" in changes:
            updated = replace(updated, description=rules.description(_optional_str(changes["description"])))
        if "avatar_url" in changes:
            updated = replace(updated, avatar_url=_optional_str(changes["avatar_url"]))
        if "history" in changes:
            history = changes["history"]
            if history not in ("shared", "joined"):
                raise RoomsError("invalid_history", "History is 'shared' or 'joined'.", status=422)
            updated = replace(updated, history=history)
        if "password" in changes:
            if room.kind != "password":
                raise RoomsError("invalid_room_password", "Only password rooms take a password.", status=422)
            updated = replace(updated, password_hash=_hash_password(ctx, str(changes["password"])))
        if updated == room:
            return RoomView(room=room, membership=membership)
        updated = await room_event(
            tx,
            updated,
            ev.RoomUpdated,
            now,
            kind=updated.kind,
            name=updated.name,
            topic=updated.topic,
            by=actor.user_id,
            history=updated.history,
        )
        await tx.update_room(updated)
    return RoomView(room=updated, membership=membership)


def _optional_str(value: object) -> str | None:
    return None if value is None else str(value)


async def archive(ctx: RoomsContext, actor: Actor, room_id: uuid.UUID) -> RoomView:
    now = ctx.clock()
    async with ctx.store.transaction() as tx:
        room, membership = await _member_action(tx, room_id, actor, "archive")
        room = await room_event(tx, replace(room, archived_at=now), ev.RoomArchived, now, by=actor.user_id)
        await tx.update_room(room)
    return RoomView(room=room, membership=membership)


async def unarchive(ctx: RoomsContext, actor: Actor, room_id: uuid.UUID) -> RoomView:
    now = ctx.clock()
    async with ctx.store.transaction() as tx:
        room, membership = await _member_action(tx, room_id, actor, "unarchive")
        if not room.archived:
            return RoomView(room=room, membership=membership)
        room = await room_event(tx, replace(room, archived_at=None), ev.RoomUnarchived, now, by=actor.user_id)
        await tx.update_room(room)
    return RoomView(room=room, membership=membership)


async def delete(ctx: RoomsContext, actor: Actor, room_id: uuid.UUID) -> None:
    """Delete the room; members are told by ``room.deleted`` and the messages service drops its messages."""
    now = ctx.clock()
    async with ctx.store.transaction() as tx:
        room, _ = await _member_action(tx, room_id, actor, "delete")
        await delete_room(tx, room, now, by=actor.user_id)


async def join(ctx: RoomsContext, actor: Actor, room_id: uuid.UUID, *, password: str | None = None) -> RoomView:
    """Join a public room, a password room with its password, or a room you were invited to."""
    require_verified(actor)
    now = ctx.clock()
    failure: RoomsError | None = None
    async with ctx.store.transaction() as tx:
        room = await tx.room(room_id, for_update=True)
        if room is None:
            raise RoomNotFound()
        existing = await tx.membership(room_id, actor.user_id)
        if existing is not None:
            return RoomView(room=room, membership=existing)
        invitation = await tx.invitation(room_id, actor.user_id)
        if invitation is None and not visible_without_membership(room):
            raise RoomNotFound()
        if await tx.ban(room_id, actor.user_id) is not None:
            raise RoomsError("banned", "You are banned from this room.", status=403)
        if room.archived:
            raise RoomsError("room_archived", "The room is archived (read-only).", status=409)
        if room.kind == "password" and invitation is None:
            failure = await _check_room_password(ctx, tx, room, actor, password, now)
        if failure is None:
            if room.kind == "group_dm" and room.member_count >= rules.GROUP_DM_MAX_MEMBERS:
                raise RoomsError("room_full", "This conversation is full.", status=409)
            if invitation is not None:
                await tx.remove_invitation(room_id, actor.user_id)
            membership = Membership(room_id=room.id, user_id=actor.user_id, role="member", joined_at=now)
            try:
                room = await add_member(tx, room, membership, now, by=invitation.invited_by if invitation else None)
            except Conflict:
                raise RoomsError("already_member", "You are already a member.", status=409) from None
            await tx.update_room(room)
    if failure is not None:
        raise failure
    return RoomView(room=room, membership=membership)


async def _check_room_password(
    ctx: RoomsContext, tx: Tx, room: Room, actor: Actor, password: str | None, now: datetime
) -> RoomsError | None:
    """None when the password is right; the error to raise (after committing the failure count) otherwise."""
    key = f"room-password:{room.id}:{actor.user_id}"
    failures = await tx.failures(key)
    free = ctx.settings.room_password_failures_free
    if failures.count >= free and failures.last_at is not None:
        delay = min(ctx.settings.room_password_max_delay_seconds, float(2 ** (failures.count - free)))
        remaining = delay - (now - failures.last_at).total_seconds()
        if remaining > 0:
            return RoomsError(
                "rate_limited",
                "Too many wrong passwords; wait before trying again.",
                status=429,
                retry_after=float(math.ceil(remaining)),
            )
    try:
        ok = password is not None and room.password_hash is not None and ctx.hasher.verify(room.password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        ok = False
    if not ok:
        await tx.record_failure(key, now)
        return RoomsError("wrong_room_password", "The room password is wrong.", status=403)
    await tx.clear_failures(key)
    return None


async def leave(ctx: RoomsContext, actor: Actor, room_id: uuid.UUID) -> None:
    """Leave. An owner hands ownership over first, unless they are the last member: then the room is deleted."""
    now = ctx.clock()
    async with ctx.store.transaction() as tx:
        room, membership = await _member_action(tx, room_id, actor, "leave")
        if membership.role == "owner" and room.member_count > 1:
            raise RoomsError("owner_must_transfer", "Transfer ownership to another member before leaving.", status=409)
        await _remove_member(tx, room, actor.user_id, now, ev.MemberLeft)


async def _remove_member(
    tx: Tx,
    room: Room,
    user_id: uuid.UUID,
    now: datetime,
    event_type: type[ev.MemberLeft | ev.MemberKicked | ev.MemberBanned],
    **fields: object,
) -> Room | None:
    """Remove a membership and emit ``event_type``; deletes the room when it empties. The room, or None."""
    await tx.remove_membership(room.id, user_id)
    room = await room_event(tx, room, event_type, now, user_id=user_id, **fields)
    room = replace(room, member_count=max(0, room.member_count - 1))
    if room.member_count == 0:
        await delete_room(tx, room, now, by=None)
        return None
    await tx.update_room(room)
    return room


async def invite(ctx: RoomsContext, actor: Actor, room_id: uuid.UUID, *, user_id: uuid.UUID) -> None:
    now = ctx.clock()
    async with ctx.store.transaction() as tx:
        room, _ = await _member_action(tx, room_id, actor, "invite")
        if await tx.user(user_id) is None:
            raise RoomsError("user_not_found", "No such user.", status=404)
        if await tx.membership(room_id, user_id) is not None:
            raise RoomsError("already_member", "They are already a member.", status=409)
        if await tx.ban(room_id, user_id) is not None:
            raise RoomsError("banned", "They are banned from this room; unban them first.", status=409)
        if await tx.blocked(user_id, actor.user_id):
            raise RoomsError("blocked", "They do not accept invitations from you.", status=403)
        if await tx.blocked(actor.user_id, user_id):
            raise RoomsError("blocked", "You blocked them; unblock them first.", status=403)
        if room.kind == "group_dm" and room.member_count >= rules.GROUP_DM_MAX_MEMBERS:
            raise RoomsError("room_full", "This conversation is full.", status=409)
        await tx.put_invitation(Invitation(room_id=room_id, user_id=user_id, invited_by=actor.user_id, created_at=now))
        room = await room_event(tx, room, ev.MemberInvited, now, user_id=user_id, by=actor.user_id)
        await tx.update_room(room)


async def accept(ctx: RoomsContext, actor: Actor, room_id: uuid.UUID) -> RoomView:
    """Accept a pending invitation (joining without one is ``join``)."""
    async with ctx.store.transaction() as tx:
        invitation = await tx.invitation(room_id, actor.user_id)
        if invitation is None:
            raise RoomsError("invitation_not_found", "No such invitation.", status=404)
        # A block withdraws the invitations between the two; this covers one sent while the block was made.
        inviter = invitation.invited_by
        if await tx.blocked(inviter, actor.user_id) or await tx.blocked(actor.user_id, inviter):
            raise RoomsError("blocked", "A block stands between you and the person who invited you.", status=403)
    return await join(ctx, actor, room_id)


async def decline(ctx: RoomsContext, actor: Actor, room_id: uuid.UUID) -> None:
    async with ctx.store.transaction() as tx:
        if not await tx.remove_invitation(room_id, actor.user_id):
            raise RoomsError("invitation_not_found", "No such invitation.", status=404)


async def invitations(ctx: RoomsContext, actor: Actor) -> list[tuple[Invitation, Room]]:
    async with ctx.store.transaction() as tx:
        found = []
        for invitation in await tx.invitations_of(actor.user_id):
            room = await tx.room(invitation.room_id)
            if room is not None:
                found.append((invitation, room))
    return found


async def kick(ctx: RoomsContext, actor: Actor, room_id: uuid.UUID, *, user_id: uuid.UUID, reason: str | None) -> None:
    now = ctx.clock()
    async with ctx.store.transaction() as tx:
        target = await tx.membership(room_id, user_id)
        room, _ = await _member_action(tx, room_id, actor, "kick", target=target.role if target else None)
        if target is None:
            raise RoomsError("not_member", "They are not a member.", status=404)
        await _remove_member(tx, room, user_id, now, ev.MemberKicked, by=actor.user_id, reason=reason)


async def ban(ctx: RoomsContext, actor: Actor, room_id: uuid.UUID, *, user_id: uuid.UUID, reason: str | None) -> None:
    """Ban a member or anyone else: they lose membership and invitation and cannot join or be invited again."""
    now = ctx.clock()
    async with ctx.store.transaction() as tx:
        target = await tx.membership(room_id, user_id)
        room, _ = await _member_action(tx, room_id, actor, "ban", target=target.role if target else None)
        if user_id == actor.user_id:
            raise RoomsError("invalid_target", "You cannot ban yourself.", status=422)
        if await tx.user(user_id) is None and target is None:
            raise RoomsError("user_not_found", "No such user.", status=404)
        await tx.put_ban(Ban(room_id=room_id, user_id=user_id, banned_by=actor.user_id, reason=reason, created_at=now))
        await tx.remove_invitation(room_id, user_id)
        if target is not None:
            await tx.remove_membership(room_id, user_id)
            room = replace(room, member_count=max(0, room.member_count - 1))
        room = await room_event(tx, room, ev.MemberBanned, now, user_id=user_id, by=actor.user_id, reason=reason)
        await tx.update_room(room)


async def unban(ctx: RoomsContext, actor: Actor, room_id: uuid.UUID, *, user_id: uuid.UUID) -> None:
    now = ctx.clock()
    async with ctx.store.transaction() as tx:
        room, _ = await _member_action(tx, room_id, actor, "unban")
        if not await tx.remove_ban(room_id, user_id):
            raise RoomsError("ban_not_found", "They are not banned.", status=404)
        room = await room_event(tx, room, ev.MemberUnbanned, now, user_id=user_id, by=actor.user_id)
        await tx.update_room(room)


async def bans(ctx: RoomsContext, actor: Actor, room_id: uuid.UUID) -> list[Ban]:
    async with ctx.store.transaction() as tx:
        await _member_action(tx, room_id, actor, "unban")
        return list(await tx.bans(room_id))


async def change_role(
    ctx: RoomsContext, actor: Actor, room_id: uuid.UUID, *, user_id: uuid.UUID, role: Role
) -> Membership:
    """Make a member an admin or a member again (owners only; ownership moves with ``transfer_ownership``)."""
    if role == "owner":
        raise RoomsError("invalid_role", "Use the ownership transfer to make someone the owner.", status=422)
    now = ctx.clock()
    async with ctx.store.transaction() as tx:
        target = await tx.membership(room_id, user_id)
        room, _ = await _member_action(tx, room_id, actor, "change_role", target=target.role if target else None)
        if target is None:
            raise RoomsError("not_member", "They are not a member.", status=404)
        if target.role == role:
            return target
        changed = replace(target, role=role)
        await tx.update_membership(changed)
        room = await room_event(
            tx, room, ev.MemberRoleChanged, now, user_id=user_id, old_role=target.role, new_role=role, by=actor.user_id
        )
        await tx.update_room(room)
    return changed


async def transfer_ownership(ctx: RoomsContext, actor: Actor, room_id: uuid.UUID, *, user_id: uuid.UUID) -> None:
    """Make another member the owner; the previous owner becomes an admin."""
    now = ctx.clock()
    async with ctx.store.transaction() as tx:
        room, membership = await _member_action(tx, room_id, actor, "transfer_ownership")
        target = await tx.membership(room_id, user_id)
        if target is None or user_id == actor.user_id:
            raise RoomsError("not_member", "Ownership can only go to another member.", status=422)
        await tx.update_membership(replace(target, role="owner"))
        await tx.update_membership(replace(membership, role="admin"))
        room = await room_event(
            tx,
            room,
            ev.MemberRoleChanged,
            now,
            user_id=user_id,
            old_role=target.role,
            new_role="owner",
            by=actor.user_id,
        )
        room = await room_event(
            tx,
            room,
            ev.MemberRoleChanged,
            now,
            user_id=actor.user_id,
            old_role="owner",
            new_role="admin",
            by=actor.user_id,
        )
        await tx.update_room(room)


async def members(
    ctx: RoomsContext, actor: Actor, room_id: uuid.UUID, *, after: tuple[datetime, uuid.UUID] | None, limit: int
) -> list[Membership]:
    async with ctx.store.transaction() as tx:
        room, membership = await _load(tx, room_id, actor)
        if membership is None and room.kind != "public":
            raise RoomsError("not_member", "Only members see who is here.", status=403)
        return list(await tx.members(room_id, after=after, limit=limit))


async def membership_of(ctx: RoomsContext, actor: Actor, room_id: uuid.UUID, user_id: uuid.UUID) -> Membership:
    """Another service's membership check; the caller must be that user or a member of the room."""
    async with ctx.store.transaction() as tx:
        asked = await tx.membership(room_id, user_id)
        mine = asked if user_id == actor.user_id else await tx.membership(room_id, actor.user_id)
    if asked is None or mine is None:
        raise RoomsError("not_member", "Not a member.", status=404)
    return asked


async def directory(
    ctx: RoomsContext, *, query: str | None, after: tuple[str, uuid.UUID] | None, limit: int
) -> list[Room]:
    async with ctx.store.transaction() as tx:
        key = rules.search_key(query.strip()) if query and query.strip() else None
        return list(await tx.directory(query=key, after=after, limit=limit))


async def my_rooms(
    ctx: RoomsContext, actor: Actor, *, after: tuple[datetime, uuid.UUID] | None, limit: int
) -> list[RoomListing]:
    async with ctx.store.transaction() as tx:
        return list(await tx.rooms_of(actor.user_id, after=after, limit=limit))
