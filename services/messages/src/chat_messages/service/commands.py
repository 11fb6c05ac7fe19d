"""Handling chat.messages.commands a batch at a time: every command gets exactly one answer event carrying its
request_id (decisions/0006, 0011).

For one batch (the ready records of one partition, in order):

1. The rooms' ledgers and the senders' memberships are made ready: a read only for what the owner does not
   hold in memory (``service/owner.py``).
2. Sends are checked and numbered in memory, in order: membership, the room's state, body, moderation, reply,
   the sender's budget, mentions.
3. Consecutive sends are stored with one ordered insert. A change (edit, deletion, reaction, marker) first writes
   the sends before it, then applies itself with one store operation.
4. The answers are published together, after the writes; the bus commits the offsets after that.

A redelivered batch finds its messages stored (the insert is refused by client_msg_id, and the stored message
answers) and its changes applied (the request id is remembered inside the message), and publishes the same
answers again. A send whose seq another instance took (a stale owner after a rebalance) reloads the room's last
seq and is numbered again; no seq is ever skipped or used twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TypeAlias

import structlog

from chat_contracts import messages_commands as cmd
from chat_contracts import messages_events as ev
from chat_contracts.base import Contract
from chat_contracts.topics import MESSAGES_EVENTS
from chat_messages.domain import blocks, text
from chat_messages.domain.errors import Rejection
from chat_messages.domain.model import Change, MarkerKind, Member, MentionedUser, Message, message_id_for
from chat_messages.service.attachments import validate_for_send
from chat_messages.service.context import MessagesContext
from chat_messages.service.owner import RoomLedger, RoomOwner
from chat_runtime.bus.port import Outgoing
from chat_runtime.together import together

log = structlog.get_logger("chat.messages")

SOURCE = "messages"
Command = (
    cmd.SendMessage | cmd.EditMessage | cmd.DeleteMessage | cmd.ReactToMessage | cmd.MarkRead | cmd.AcknowledgeDelivery
)
Correlated: TypeAlias = tuple[Command, str]
"""A command and its correlation id, which its answer carries on."""
MAX_SEQ_RETRIES = 50


@dataclass(eq=False)
class _Send:
    """One SendMessage of the batch, from its checks to its answer."""

    command: cmd.SendMessage
    correlation_id: str
    ledger: RoomLedger
    message: Message | None = None
    """Numbered and waiting to be stored; the stored message once it is (or the one that was already)."""
    answer: Contract | None = None
    same_as: _Send | None = None
    """An earlier send of this batch with the same client_msg_id: this one is answered with its outcome."""


@dataclass(frozen=True, slots=True)
class _Done:
    answer: Contract
    correlation_id: str


async def handle_commands(ctx: MessagesContext, owner: RoomOwner, commands: Sequence[Correlated]) -> None:
    """Answer a batch of chat.messages.commands (or a batch of one), in order."""
    if not commands:
        return
    ledgers, actors = await _ledgers(owner, [data for data, _ in commands])
    answers: list[_Send | _Done] = []
    unwritten: list[_Send] = []
    planned: dict[tuple[uuid.UUID, str], _Send] = {}
    next_seqs: dict[uuid.UUID, int] = {}
    locks = [ledgers[room_id].lock for room_id in sorted(ledgers)]
    for lock in locks:  # in one order, so two batches never wait for each other in a circle
        await lock.acquire()
    try:
        await together([owner.load_members(ledgers[room_id], users) for room_id, users in actors.items()])
        for data, correlation_id in commands:
            ledger = ledgers[data.room_id]
            if isinstance(data, cmd.SendMessage):
                send = _Send(command=data, correlation_id=correlation_id, ledger=ledger)
                try:
                    await _plan(ctx, send, planned, next_seqs)
                except Rejection as rejection:
                    send.answer = _rejected(data, rejection)
                else:
                    if send.same_as is None:
                        unwritten.append(send)
                answers.append(send)
                continue
            await _write(ctx, owner, unwritten, next_seqs)
            unwritten = []
            try:
                answer = await _apply(ctx, ledger, data)
            except Rejection as rejection:
                answer = _rejected(data, rejection)
            answers.append(_Done(answer, correlation_id))
        await _write(ctx, owner, unwritten, next_seqs)
    finally:
        for lock in locks:
            lock.release()
    await ctx.publisher.publish_all(
        [Outgoing(MESSAGES_EVENTS, _answer_of(item), correlation_id=item.correlation_id) for item in answers],
        source=SOURCE,
    )


async def _ledgers(
    owner: RoomOwner, commands: Sequence[Command]
) -> tuple[dict[uuid.UUID, RoomLedger], dict[uuid.UUID, set[uuid.UUID]]]:
    """Every room's ledger, no older than the newest room version its commands were issued at (a read only for
    what memory does not hold), and the users acting in each room."""
    seen_at: dict[uuid.UUID, int] = {}
    actors: dict[uuid.UUID, set[uuid.UUID]] = {}
    for data in commands:
        seen_at[data.room_id] = max(seen_at.get(data.room_id, 0), data.room_version or 0)
        actors.setdefault(data.room_id, set()).add(_actor(data))
    found = await together([owner.ledger(room_id, seen_at=version) for room_id, version in seen_at.items()])
    return {ledger.room_id: ledger for ledger in found}, actors


def _actor(data: Command) -> uuid.UUID:
    return data.sender_id if isinstance(data, cmd.SendMessage) else data.actor_id


def _member(ledger: RoomLedger, user_id: uuid.UUID) -> Member:
    state = ledger.state
    member = ledger.member(user_id) if state is not None and not state.deleted else None
    if member is None:
        raise Rejection("not_member", "You are not a member of this room.")
    return member


def _writable(ledger: RoomLedger) -> None:
    state = ledger.state
    if state is None:
        return
    if state.archived:
        raise Rejection("room_archived", "The room is archived (read-only).")
    if (refusal := blocks.write_refusal(state)) is not None:
        raise refusal


async def _plan(
    ctx: MessagesContext, send: _Send, planned: dict[tuple[uuid.UUID, str], _Send], next_seqs: dict[uuid.UUID, int]
) -> None:
    """Check a send and number it (or find it is a repeat of an earlier one of this batch)."""
    command, ledger = send.command, send.ledger
    _member(ledger, command.sender_id)
    earlier = planned.get((command.room_id, command.client_msg_id))
    if earlier is not None and earlier.answer is None:
        send.same_as = earlier
        return
    _writable(ledger)
    await validate_for_send(ctx.attachments, command.room_id, command.sender_id, command.attachment_ids)
    body = text.normalize_body(command.body, has_attachments=bool(command.attachment_ids))
    ctx.moderation.check(body)
    if command.reply_to is not None and not await _in_room(ctx, planned, command.room_id, command.reply_to):
        raise Rejection("invalid_reply", "You can only reply to a message of the same room.")
    now = ctx.clock()
    settings = ctx.settings
    wait = ledger.take(
        command.sender_id, now=now.timestamp(), capacity=settings.send_burst, per_second=settings.send_per_second
    )
    if wait > 0:
        raise Rejection("rate_limited", "You are sending too fast.", retry_after=round(wait, 3))
    names, room_mention = text.mentioned_names(body)
    found = await ctx.store.users_by_username(names) if names else {}
    seq = next_seqs.get(command.room_id, ledger.next_seq)
    next_seqs[command.room_id] = seq + 1
    send.message = Message(
        id=message_id_for(command.room_id, command.client_msg_id),
        room_id=command.room_id,
        seq=seq,
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
    planned[(command.room_id, command.client_msg_id)] = send


async def _in_room(
    ctx: MessagesContext, planned: dict[tuple[uuid.UUID, str], _Send], room_id: uuid.UUID, message_id: uuid.UUID
) -> bool:
    if any(s.message is not None and s.message.id == message_id for s in planned.values()):
        return True
    return await ctx.store.message(room_id, message_id) is not None


async def _write(ctx: MessagesContext, owner: RoomOwner, sends: list[_Send], next_seqs: dict[uuid.UUID, int]) -> None:
    """Store the numbered sends with one ordered insert (more only when one is refused), and give each its answer.

    A send whose client_msg_id is stored already is answered by the stored message; its seq is free again, so
    the room's later sends move down by one. A send whose seq is taken (another instance wrote the room) reloads
    the room's last seq, and it and the room's later sends are numbered again."""
    pending = [s for s in sends if s.message is not None]
    retries = 0
    while pending:
        outcome = await ctx.store.insert_messages([s.message for s in pending if s.message is not None])
        for send in pending[: outcome.inserted]:
            if send.message is not None:
                owner.stored(send.ledger, send.message.seq)
                send.answer = created_event(send.message, send.command.request_id)
        if outcome.refused is None:
            break
        refused, rest = pending[outcome.inserted], pending[outcome.inserted + 1 :]
        if refused.message is None:
            raise RuntimeError("a refused send has no message")
        room_id = refused.command.room_id
        if outcome.refused == "duplicate_client_msg_id":
            stored = await ctx.store.message_by_client_msg_id(room_id, refused.command.client_msg_id)
            if stored is None:
                raise RuntimeError(f"client_msg_id {refused.command.client_msg_id!r} refused but not found")
            _renumber(rest, room_id, refused.message.seq, next_seqs)
            refused.message = stored
            refused.answer = _repeat(stored, refused.command)
            pending = rest
            continue
        retries += 1
        if retries > MAX_SEQ_RETRIES:
            raise RuntimeError(f"could not assign a seq in room {room_id} after {MAX_SEQ_RETRIES} tries")
        await owner.reload_seq(refused.ledger)
        pending = [refused, *rest]
        _renumber(pending, room_id, refused.ledger.next_seq, next_seqs)


def _renumber(sends: list[_Send], room_id: uuid.UUID, first: int, next_seqs: dict[uuid.UUID, int]) -> None:
    seq = first
    for send in sends:
        if send.command.room_id == room_id and send.message is not None:
            send.message = replace(send.message, seq=seq)
            seq += 1
    next_seqs[room_id] = seq


def _repeat(stored: Message, command: cmd.SendMessage) -> Contract:
    """The same client_msg_id again: the original message answers (same id, same seq)."""
    if stored.sender_id != command.sender_id:
        return _rejected(command, Rejection("invalid", "This client_msg_id is already used in this room."))
    log.debug("message.resent", room_id=str(stored.room_id), seq=stored.seq)
    return created_event(stored, command.request_id)


def _answer_of(item: _Send | _Done) -> Contract:
    if isinstance(item, _Done):
        return item.answer
    if item.same_as is not None:
        original = item.same_as
        if original.message is not None and isinstance(original.answer, ev.MessageCreated):
            return _repeat(original.message, item.command)
        if isinstance(original.answer, ev.MessageRejected):
            return original.answer.model_copy(update={"request_id": item.command.request_id})
    if item.answer is None:
        raise RuntimeError(f"send {item.command.request_id} was never answered")
    return item.answer


def _rejected(data: Command, rejection: Rejection) -> ev.MessageRejected:
    log.debug("messages.rejected", code=rejection.code, command=data.type)
    return ev.MessageRejected(
        room_id=data.room_id,
        sender_id=_actor(data),
        command=data.type,
        client_msg_id=data.client_msg_id if isinstance(data, cmd.SendMessage) else None,
        request_id=data.request_id,
        code=rejection.code,
        message=rejection.message,
        retry_after=rejection.retry_after,
    )


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


# --- changes: one store operation each ----------------------------------------------------------------------------


async def _apply(ctx: MessagesContext, ledger: RoomLedger, data: Command) -> Contract:
    if isinstance(data, cmd.EditMessage):
        return await edit(ctx, ledger, data)
    if isinstance(data, cmd.DeleteMessage):
        return await delete(ctx, ledger, data)
    if isinstance(data, cmd.ReactToMessage):
        return await react(ctx, ledger, data)
    if isinstance(data, cmd.MarkRead | cmd.AcknowledgeDelivery):
        return await move_marker(ctx, ledger, data)
    raise TypeError(f"not a change: {type(data).__name__}")


async def _target(ctx: MessagesContext, room_id: uuid.UUID, message_id: uuid.UUID) -> Message:
    message = await ctx.store.message(room_id, message_id)
    if message is None:
        raise Rejection("not_found", "No such message in this room.")
    return message


async def _change(ctx: MessagesContext, room_id: uuid.UUID, message_id: uuid.UUID, change: Change) -> Message:
    result = await ctx.store.apply_change(room_id, message_id, change)
    if result is None:
        raise Rejection("not_found", "No such message in this room.")
    return result[0]


async def edit(ctx: MessagesContext, ledger: RoomLedger, command: cmd.EditMessage) -> Contract:
    _member(ledger, command.actor_id)
    message = await _target(ctx, command.room_id, command.message_id)
    if message.sender_id != command.actor_id:
        raise Rejection("forbidden", "Only the author can edit a message.")
    if message.deleted:
        raise Rejection("not_found", "The message was deleted.")
    _writable(ledger)
    body = text.normalize_body(command.body, has_attachments=bool(message.attachment_ids))
    ctx.moderation.check(body)
    change = Change(request_id=command.request_id, at=ctx.clock(), edit_body=body, edit_tokens=text.tokens(body))
    updated = await _change(ctx, command.room_id, command.message_id, change)
    return ev.MessageEdited(
        message_id=updated.id,
        room_id=updated.room_id,
        seq=updated.seq,
        body=updated.body,
        edited_by=command.actor_id,
        edited_at=updated.edited_at or change.at,
        version=updated.version,
        request_id=command.request_id,
    )


async def delete(ctx: MessagesContext, ledger: RoomLedger, command: cmd.DeleteMessage) -> Contract:
    member = _member(ledger, command.actor_id)
    message = await _target(ctx, command.room_id, command.message_id)
    if message.sender_id != command.actor_id and member.role not in ("owner", "admin"):
        raise Rejection("forbidden", "Only the author or a room admin can delete a message.")
    _writable(ledger)
    change = Change(request_id=command.request_id, at=ctx.clock(), delete_by=command.actor_id)
    updated = await _change(ctx, command.room_id, command.message_id, change)
    for attachment_id in message.attachment_ids:  # the files go with the message
        await ctx.attachments.delete(command.room_id, attachment_id)
    return ev.MessageDeleted(
        message_id=updated.id,
        room_id=updated.room_id,
        seq=updated.seq,
        deleted_by=updated.deleted_by or command.actor_id,
        deleted_at=updated.deleted_at or change.at,
        version=updated.version,
        request_id=command.request_id,
    )


async def react(ctx: MessagesContext, ledger: RoomLedger, command: cmd.ReactToMessage) -> Contract:
    _member(ledger, command.actor_id)
    message = await _target(ctx, command.room_id, command.message_id)
    if message.deleted:
        raise Rejection("not_found", "The message was deleted.")
    _writable(ledger)
    change = Change(
        request_id=command.request_id, at=ctx.clock(), reaction=(command.emoji, command.actor_id, command.action)
    )
    updated = await _change(ctx, command.room_id, command.message_id, change)
    return ev.ReactionChanged(
        message_id=updated.id,
        room_id=updated.room_id,
        seq=updated.seq,
        emoji=command.emoji,
        user_id=command.actor_id,
        action=command.action,
        counts=updated.counts(),
        version=updated.version,
        request_id=command.request_id,
    )


async def move_marker(
    ctx: MessagesContext, ledger: RoomLedger, command: cmd.MarkRead | cmd.AcknowledgeDelivery
) -> Contract:
    """Read and delivery markers only move forward, and never past the room's last message."""
    _member(ledger, command.actor_id)
    kind: MarkerKind = "read" if isinstance(command, cmd.MarkRead) else "delivered"
    await ctx.store.move_marker(command.room_id, command.actor_id, kind, min(command.up_to_seq, ledger.last_seq))
    markers = await ctx.store.marker(command.room_id, command.actor_id)
    if kind == "read":
        return ev.ReadMarkerMoved(
            room_id=command.room_id, user_id=command.actor_id, up_to_seq=markers.read_seq, request_id=command.request_id
        )
    return ev.DeliveryMarkerMoved(
        room_id=command.room_id,
        user_id=command.actor_id,
        up_to_seq=markers.delivered_seq,
        request_id=command.request_id,
    )
