"""Contacts (friend requests) and blocks between two users. Their events go on chat.social.events; a block that
closes or reopens the pair's direct room also announces it on chat.rooms.events (``align_direct_room``)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import structlog

from chat_contracts import social
from chat_rooms.domain.errors import RoomsError
from chat_rooms.domain.model import Block, Contact, UserProfile
from chat_rooms.service.context import Actor, RoomsContext
from chat_rooms.service.direct import align_direct_room
from chat_rooms.service.events import social_event
from chat_rooms.service.ports import Tx

log = structlog.get_logger("chat.rooms.contacts")

REQUESTS_PER_HOUR = 50


@dataclass(frozen=True, slots=True)
class ContactView:
    other: UserProfile | None
    other_id: uuid.UUID
    state: str  # "contact" | "incoming" | "outgoing"
    since: datetime


async def _other(tx: Tx, actor: Actor, other_id: uuid.UUID) -> UserProfile:
    if other_id == actor.user_id:
        raise RoomsError("invalid_target", "That is you.", status=422)
    profile = await tx.user(other_id)
    if profile is None:
        raise RoomsError("user_not_found", "No such user.", status=404)
    return profile


def _pair(first: uuid.UUID, second: uuid.UUID) -> tuple[uuid.UUID, uuid.UUID]:
    low, high = sorted((first, second))
    return low, high


async def request(ctx: RoomsContext, actor: Actor, *, other_id: uuid.UUID) -> str:
    """Ask to become contacts; a request crossing theirs makes you contacts at once. Returns the state."""
    now = ctx.clock()
    async with ctx.store.transaction() as tx:
        await _other(tx, actor, other_id)
        if await tx.hit(f"contact-request:{actor.user_id}", window=timedelta(hours=1), now=now) > REQUESTS_PER_HOUR:
            raise RoomsError("rate_limited", "Too many contact requests; try later.", status=429, retry_after=3600.0)
        if await tx.blocked(other_id, actor.user_id) or await tx.blocked(actor.user_id, other_id):
            raise RoomsError("blocked", "You cannot become contacts while a block is in place.", status=403)
        existing = await tx.contact(actor.user_id, other_id)
        if existing is not None:
            if existing.accepted_at is not None:
                return "contact"
            if existing.requested_by == actor.user_id:
                return "outgoing"
            await tx.put_contact(replace(existing, accepted_at=now))
            await social_event(tx, social.ContactAccepted, now, user_id=actor.user_id, other_id=other_id)
            return "contact"
        low, high = _pair(actor.user_id, other_id)
        await tx.put_contact(Contact(user_low=low, user_high=high, requested_by=actor.user_id, created_at=now))
        await social_event(tx, social.ContactRequested, now, user_id=actor.user_id, other_id=other_id)
    return "outgoing"


async def accept(ctx: RoomsContext, actor: Actor, *, other_id: uuid.UUID) -> None:
    now = ctx.clock()
    async with ctx.store.transaction() as tx:
        existing = await tx.contact(actor.user_id, other_id)
        if existing is None or existing.accepted_at is not None or existing.requested_by == actor.user_id:
            raise RoomsError("request_not_found", "No request from them to accept.", status=404)
        # A block ends every request; this covers one made while the block was being made.
        if await tx.blocked(other_id, actor.user_id) or await tx.blocked(actor.user_id, other_id):
            raise RoomsError("blocked", "You cannot become contacts while a block is in place.", status=403)
        await tx.put_contact(replace(existing, accepted_at=now))
        await social_event(tx, social.ContactAccepted, now, user_id=actor.user_id, other_id=other_id)


async def end(ctx: RoomsContext, actor: Actor, *, other_id: uuid.UUID) -> str:
    """Decline an incoming request, cancel an outgoing one or remove a contact; returns which it was."""
    now = ctx.clock()
    async with ctx.store.transaction() as tx:
        existing = await tx.contact(actor.user_id, other_id)
        if existing is None:
            raise RoomsError("contact_not_found", "No request or contact with them.", status=404)
        if existing.accepted_at is not None:
            reason = "removed"
        elif existing.requested_by == actor.user_id:
            reason = "cancelled"
        else:
            reason = "declined"
        await tx.remove_contact(actor.user_id, other_id)
        await social_event(tx, social.ContactEnded, now, user_id=actor.user_id, other_id=other_id, reason=reason)
    return reason


async def contacts(ctx: RoomsContext, actor: Actor) -> list[ContactView]:
    async with ctx.store.transaction() as tx:
        found = []
        for contact in await tx.contacts_of(actor.user_id):
            other_id = contact.other(actor.user_id)
            if contact.accepted_at is not None:
                state, since = "contact", contact.accepted_at
            else:
                state = "outgoing" if contact.requested_by == actor.user_id else "incoming"
                since = contact.created_at
            found.append(ContactView(other=await tx.user(other_id), other_id=other_id, state=state, since=since))
    return found


async def block(ctx: RoomsContext, actor: Actor, *, other_id: uuid.UUID) -> None:
    """Block someone. Until either of you lifts every block between you, neither can open a direct room with,
    invite, add to a group conversation or ask to be a contact of the other; your direct room, if you have one,
    is closed to writing (docs/decisions/0009). A contact, a request and invitations between you end."""
    now = ctx.clock()
    async with ctx.store.transaction() as tx:
        await _other(tx, actor, other_id)
        await tx.lock_pair(actor.user_id, other_id)
        if await tx.blocked(actor.user_id, other_id):
            return
        await tx.put_block(Block(blocker=actor.user_id, blocked=other_id, created_at=now))
        if await tx.remove_contact(actor.user_id, other_id):
            await social_event(tx, social.ContactEnded, now, user_id=actor.user_id, other_id=other_id, reason="blocked")
        await _withdraw_invitations(tx, actor.user_id, other_id)
        await social_event(tx, social.UserBlocked, now, user_id=actor.user_id, other_id=other_id)
        await align_direct_room(tx, actor.user_id, other_id, now)
    log.info("rooms.user_blocked")


async def _withdraw_invitations(tx: Tx, first: uuid.UUID, second: uuid.UUID) -> None:
    """Drop the pending invitations either of the two sent the other (as a decline would, without an event)."""
    for invitee, inviter in ((first, second), (second, first)):
        for invitation in await tx.invitations_of(invitee):
            if invitation.invited_by == inviter:
                await tx.remove_invitation(invitation.room_id, invitee)


async def unblock(ctx: RoomsContext, actor: Actor, *, other_id: uuid.UUID) -> None:
    """Lift your block; your direct room opens again unless they block you too."""
    now = ctx.clock()
    async with ctx.store.transaction() as tx:
        await tx.lock_pair(actor.user_id, other_id)
        if not await tx.remove_block(actor.user_id, other_id):
            raise RoomsError("block_not_found", "You have not blocked them.", status=404)
        await social_event(tx, social.UserUnblocked, now, user_id=actor.user_id, other_id=other_id)
        await align_direct_room(tx, actor.user_id, other_id, now)


async def blocks(ctx: RoomsContext, actor: Actor) -> list[Block]:
    async with ctx.store.transaction() as tx:
        return list(await tx.blocks_of(actor.user_id))
