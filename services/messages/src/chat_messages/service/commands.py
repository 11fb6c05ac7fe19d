"""Handling chat.messages.commands: every command gets exactly one answer event carrying its request_id.

Write, then publish; the bus commits the offset after the handler returns. A redelivered command finds its
effect already stored (by client_msg_id, or by request_id inside the message) and publishes the answer again.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import replace

import structlog

from chat_contracts import messages_commands as cmd
from chat_contracts import messages_events as ev
from chat_contracts.base import Contract
from chat_contracts.envelope import Envelope
from chat_contracts.topics import MESSAGES_EVENTS
from chat_messages.domain import blocks, text
from chat_messages.domain.errors import Rejection
from chat_messages.domain.model import Change, MarkerKind, Member, MentionedUser, Message, RoomState
from chat_messages.service.attachments import validate_for_send
from chat_messages.service.context import MessagesContext

log = structlog.get_logger("chat.messages")

SOURCE = "messages"
Command = (
    cmd.SendMessage | cmd.EditMessage | cmd.DeleteMessage | cmd.ReactToMessage | cmd.MarkRead | cmd.AcknowledgeDelivery
)
MAX_SEQ_RETRIES = 50
MEMBERSHIP_WAIT_SECONDS = 3.0
MEMBERSHIP_POLL_SECONDS = 0.05


class SeqCache:
    """The highest seq this instance stored per room; a hint, corrected by the unique index on conflict."""

    def __init__(self) -> None:
        self._last: dict[uuid.UUID, int] = {}
        self.stored_count = 0
        """Messages this instance stored (tests and metrics)."""

    async def next(self, ctx: MessagesContext, room_id: uuid.UUID, *, refresh: bool) -> int:
        if refresh or room_id not in self._last:
            self._last[room_id] = await ctx.store.last_seq(room_id)
        return self._last[room_id] + 1

    def stored(self, room_id: uuid.UUID, seq: int) -> None:
        self._last[room_id] = max(seq, self._last.get(room_id, 0))
        self.stored_count += 1

    def forget(self, room_id: uuid.UUID) -> None:
        self._last.pop(room_id, None)


async def handle_command(ctx: MessagesContext, seqs: SeqCache, envelope: Envelope) -> None:
    """The bus handler for chat.messages.commands."""
    data = envelope.data
    try:
        if isinstance(data, cmd.SendMessage):
            await send(ctx, seqs, data, envelope.correlation_id)
        elif isinstance(data, cmd.EditMessage):
            await edit(ctx, data, envelope.correlation_id)
        elif isinstance(data, cmd.DeleteMessage):
            await delete(ctx, data, envelope.correlation_id)
        elif isinstance(data, cmd.ReactToMessage):
            await react(ctx, data, envelope.correlation_id)
        elif isinstance(data, cmd.MarkRead | cmd.AcknowledgeDelivery):
            await move_marker(ctx, data, envelope.correlation_id)
    except Rejection as rejection:
        await _reject(ctx, data, rejection, envelope.correlation_id)


async def _publish(ctx: MessagesContext, data: Contract, correlation_id: str) -> None:
    await ctx.publisher.publish(MESSAGES_EVENTS, data, correlation_id=correlation_id, source=SOURCE)


async def _reject(ctx: MessagesContext, data: Contract, rejection: Rejection, correlation_id: str) -> None:
    if not isinstance(data, Command):
        raise TypeError(f"not a message command: {type(data).__name__}")
    actor = data.sender_id if isinstance(data, cmd.SendMessage) else data.actor_id
    log.info("messages.rejected", code=rejection.code, command=data.type)
    await _publish(
        ctx,
        ev.MessageRejected(
            room_id=data.room_id,
            sender_id=actor,
            command=data.type,
            client_msg_id=data.client_msg_id if isinstance(data, cmd.SendMessage) else None,
            request_id=data.request_id,
            code=rejection.code,
            message=rejection.message,
            retry_after=rejection.retry_after,
        ),
        correlation_id,
    )


async def _member(
    ctx: MessagesContext, room_id: uuid.UUID, user_id: uuid.UUID, *, seen_at: int | None = None
) -> tuple[RoomState, Member]:
    """The room and the user's membership, or ``not_member``.

    ``seen_at`` is the room version at which the gateway saw the user as a member. When this projection has not
    reached it yet (a join, or a change such as ``room.blocked``, is still on its way through chat.rooms.events),
    wait for it a moment (``MEMBERSHIP_WAIT_SECONDS``): someone who has just joined is not refused, and a room
    the gateway already showed as closed is not written to.
    """
    deadline = time.monotonic() + MEMBERSHIP_WAIT_SECONDS
    while True:
        room = await ctx.store.room(room_id)
        member = await ctx.store.member(room_id, user_id) if room is not None and not room.deleted else None
        behind = seen_at is not None and (room is None or room.version < seen_at)
        if not behind or time.monotonic() >= deadline:
            if room is not None and member is not None:
                return room, member
            raise Rejection("not_member", "You are not a member of this room.")
        await asyncio.sleep(MEMBERSHIP_POLL_SECONDS)


def _writable(room: RoomState) -> None:
    if room.archived:
        raise Rejection("room_archived", "The room is archived (read-only).")
    if (refusal := blocks.write_refusal(room)) is not None:
        raise refusal


def created_event(message: Message, request_id: str | None) -> ev.MessageCreated:
    return ev.MessageCreated(
        message_id=message.id,
        room_id=message.room_id,
        seq=message.seq,
        sender_id=message.sender_id,
        client_msg_id=message.client_msg_id,
        body=message.body,
        reply_to=message.reply_to,
        attachment_ids=message.attachment_ids,
        mentions=ev.Mentions(
            users=tuple(ev.MentionedUser(user_id=m.user_id, username=m.username) for m in message.mentions),
            room=message.mentions_room,
        ),
        created_at=message.created_at,
        request_id=request_id,
    )


async def send(ctx: MessagesContext, seqs: SeqCache, command: cmd.SendMessage, correlation_id: str) -> None:
    """Store the message with the room's next seq (once per client_msg_id) and announce it."""
    existing = await ctx.store.message_by_client_msg_id(command.room_id, command.client_msg_id)
    if existing is not None:
        await _repeat(ctx, existing, command, correlation_id)
        return
    room, _member_row = await _member(ctx, command.room_id, command.sender_id, seen_at=command.room_version)
    _writable(room)
    await validate_for_send(ctx.attachments, command.room_id, command.sender_id, command.attachment_ids)
    body = text.normalize_body(command.body, has_attachments=bool(command.attachment_ids))
    ctx.moderation.check(body)
    if command.reply_to is not None:
        parent = await ctx.store.message(command.room_id, command.reply_to)
        if parent is None:
            raise Rejection("invalid_reply", "You can only reply to a message of the same room.")
    now = ctx.clock()
    wait = await ctx.store.take_token(
        f"send:{command.room_id}:{command.sender_id}",
        capacity=ctx.settings.send_burst,
        refill_per_second=ctx.settings.send_per_second,
        now=now,
    )
    if wait > 0:
        raise Rejection("rate_limited", "You are sending too fast.", retry_after=round(wait, 3))
    names, room_mention = text.mentioned_names(body)
    found = await ctx.store.users_by_username(names) if names else {}
    message = Message(
        id=uuid.uuid4(),
        room_id=command.room_id,
        seq=0,
        sender_id=command.sender_id,
        client_msg_id=command.client_msg_id,
        body=body,
        created_at=now,
        tokens=text.tokens(body),
        reply_to=command.reply_to,
        attachment_ids=tuple(command.attachment_ids),
        mentions=tuple(MentionedUser(user_id=found[name], username=name) for name in names if name in found),
        mentions_room=room_mention,
    )
    refresh = False
    for _ in range(MAX_SEQ_RETRIES):
        seq = await seqs.next(ctx, command.room_id, refresh=refresh)
        candidate = replace(message, seq=seq)
        result = await ctx.store.insert_message(candidate)
        if result == "inserted":
            seqs.stored(command.room_id, seq)
            log.info("message.persisted", room_id=str(command.room_id), seq=seq)
            await _publish(ctx, created_event(candidate, command.request_id), correlation_id)
            return
        if result == "duplicate_client_msg_id":
            stored = await ctx.store.message_by_client_msg_id(command.room_id, command.client_msg_id)
            if stored is not None:
                await _repeat(ctx, stored, command, correlation_id)
                return
        refresh = True  # another instance took this seq: re-read the highest and try the next one
    raise RuntimeError(f"could not assign a seq in room {command.room_id} after {MAX_SEQ_RETRIES} tries")


async def _repeat(ctx: MessagesContext, existing: Message, command: cmd.SendMessage, correlation_id: str) -> None:
    """The same client_msg_id again: the original message answers (same id, same seq)."""
    if existing.sender_id != command.sender_id:
        raise Rejection("invalid", "This client_msg_id is already used in this room.")
    log.info("message.resent", room_id=str(existing.room_id), seq=existing.seq)
    await _publish(ctx, created_event(existing, command.request_id), correlation_id)


async def _target(ctx: MessagesContext, room_id: uuid.UUID, message_id: uuid.UUID) -> Message:
    message = await ctx.store.message(room_id, message_id)
    if message is None:
        raise Rejection("not_found", "No such message in this room.")
    return message


async def edit(ctx: MessagesContext, command: cmd.EditMessage, correlation_id: str) -> None:
    room, _ = await _member(ctx, command.room_id, command.actor_id, seen_at=command.room_version)
    message = await _target(ctx, command.room_id, command.message_id)
    if message.sender_id != command.actor_id:
        raise Rejection("forbidden", "Only the author can edit a message.")
    if message.deleted:
        raise Rejection("not_found", "The message was deleted.")
    _writable(room)
    body = text.normalize_body(command.body, has_attachments=bool(message.attachment_ids))
    ctx.moderation.check(body)
    change = Change(request_id=command.request_id, at=ctx.clock(), edit_body=body, edit_tokens=text.tokens(body))
    result = await ctx.store.apply_change(command.room_id, command.message_id, change)
    if result is None:
        raise Rejection("not_found", "No such message in this room.")
    updated, _ = result
    await _publish(
        ctx,
        ev.MessageEdited(
            message_id=updated.id,
            room_id=updated.room_id,
            seq=updated.seq,
            body=updated.body,
            edited_by=command.actor_id,
            edited_at=updated.edited_at or change.at,
            version=updated.version,
            request_id=command.request_id,
        ),
        correlation_id,
    )


async def delete(ctx: MessagesContext, command: cmd.DeleteMessage, correlation_id: str) -> None:
    room, member = await _member(ctx, command.room_id, command.actor_id, seen_at=command.room_version)
    message = await _target(ctx, command.room_id, command.message_id)
    if message.sender_id != command.actor_id and member.role not in ("owner", "admin"):
        raise Rejection("forbidden", "Only the author or a room admin can delete a message.")
    _writable(room)
    change = Change(request_id=command.request_id, at=ctx.clock(), delete_by=command.actor_id)
    result = await ctx.store.apply_change(command.room_id, command.message_id, change)
    if result is None:
        raise Rejection("not_found", "No such message in this room.")
    updated, _ = result
    for attachment_id in message.attachment_ids:  # the files go with the message
        await ctx.attachments.delete(command.room_id, attachment_id)
    await _publish(
        ctx,
        ev.MessageDeleted(
            message_id=updated.id,
            room_id=updated.room_id,
            seq=updated.seq,
            deleted_by=updated.deleted_by or command.actor_id,
            deleted_at=updated.deleted_at or change.at,
            version=updated.version,
            request_id=command.request_id,
        ),
        correlation_id,
    )


async def react(ctx: MessagesContext, command: cmd.ReactToMessage, correlation_id: str) -> None:
    room, _ = await _member(ctx, command.room_id, command.actor_id, seen_at=command.room_version)
    message = await _target(ctx, command.room_id, command.message_id)
    if message.deleted:
        raise Rejection("not_found", "The message was deleted.")
    _writable(room)
    change = Change(
        request_id=command.request_id, at=ctx.clock(), reaction=(command.emoji, command.actor_id, command.action)
    )
    result = await ctx.store.apply_change(command.room_id, command.message_id, change)
    if result is None:
        raise Rejection("not_found", "No such message in this room.")
    updated, _ = result
    await _publish(
        ctx,
        ev.ReactionChanged(
            message_id=updated.id,
            room_id=updated.room_id,
            seq=updated.seq,
            emoji=command.emoji,
            user_id=command.actor_id,
            action=command.action,
            counts=updated.counts(),
            version=updated.version,
            request_id=command.request_id,
        ),
        correlation_id,
    )


async def move_marker(
    ctx: MessagesContext, command: cmd.MarkRead | cmd.AcknowledgeDelivery, correlation_id: str
) -> None:
    """Read and delivery markers only move forward, and never past the room's last message."""
    await _member(ctx, command.room_id, command.actor_id, seen_at=command.room_version)
    kind: MarkerKind = "read" if isinstance(command, cmd.MarkRead) else "delivered"
    last = await ctx.store.last_seq(command.room_id)
    await ctx.store.move_marker(command.room_id, command.actor_id, kind, min(command.up_to_seq, last))
    markers = await ctx.store.marker(command.room_id, command.actor_id)
    if kind == "read":
        answer: Contract = ev.ReadMarkerMoved(
            room_id=command.room_id, user_id=command.actor_id, up_to_seq=markers.read_seq, request_id=command.request_id
        )
    else:
        answer = ev.DeliveryMarkerMoved(
            room_id=command.room_id,
            user_id=command.actor_id,
            up_to_seq=markers.delivered_seq,
            request_id=command.request_id,
        )
    await _publish(ctx, answer, correlation_id)
