"""Reading: history pages, the room's activity, single messages, threads, search, unread counts and receipts.
Members only: a room the caller is not in answers 404, like one that does not exist."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from chat_messages.domain import text
from chat_messages.domain.activity import Activity
from chat_messages.domain.errors import MessagesError, RoomNotFound
from chat_messages.domain.model import Markers, Member, Message, RoomState
from chat_messages.service.context import MessagesContext, Reader

MAX_PAGE = 100


def visible_after(room: RoomState, member: Member) -> int:
    """The seq after which the member may read: everything, or from when they joined (room setting)."""
    return member.joined_after_seq if room.history == "joined" else 0


async def _access(ctx: MessagesContext, reader: Reader, room_id: uuid.UUID) -> tuple[RoomState, Member]:
    room = await ctx.store.room(room_id)
    member = await ctx.store.member(room_id, reader.user_id) if room is not None and not room.deleted else None
    if room is None or member is None:
        raise RoomNotFound()
    return room, member


async def history(
    ctx: MessagesContext,
    reader: Reader,
    room_id: uuid.UUID,
    *,
    before_seq: int | None,
    after_seq: int | None,
    limit: int,
    newest_first: bool,
) -> list[Message]:
    room, member = await _access(ctx, reader, room_id)
    return list(
        await ctx.store.history(
            room_id,
            before_seq=before_seq,
            after_seq=after_seq,
            min_seq=visible_after(room, member),
            limit=limit,
            newest_first=newest_first,
        )
    )


async def activity(
    ctx: MessagesContext,
    reader: Reader,
    room_id: uuid.UUID,
    *,
    after_seq: int | None,
    before_seq: int | None,
    after_version: int,
    limit: int,
) -> list[Activity]:
    """The room's joins, leaves, removals, bans and renames placed in a window of seqs (each goes after the message
    with its ``after_seq``), by room_version. A member who sees history from joining sees the activity from their
    join on."""
    if after_seq is not None and before_seq is not None and before_seq <= after_seq:
        raise MessagesError("invalid_range", "before_seq must be greater than after_seq.", status=422)
    room, member = await _access(ctx, reader, room_id)
    return list(
        await ctx.store.activity(
            room_id,
            from_seq=visible_after(room, member),
            after_seq=after_seq,
            before_seq=before_seq,
            after_version=after_version,
            limit=limit,
        )
    )


async def message(ctx: MessagesContext, reader: Reader, room_id: uuid.UUID, message_id: uuid.UUID) -> Message:
    room, member = await _access(ctx, reader, room_id)
    found = await ctx.store.message(room_id, message_id)
    if found is None or found.seq <= visible_after(room, member):
        raise MessagesError("message_not_found", "No such message.", status=404)
    return found


async def thread(
    ctx: MessagesContext, reader: Reader, room_id: uuid.UUID, message_id: uuid.UUID, *, limit: int
) -> tuple[Message, list[Message]]:
    root = await message(ctx, reader, room_id, message_id)
    return root, list(await ctx.store.replies(room_id, message_id, limit=limit))


async def search(
    ctx: MessagesContext,
    reader: Reader,
    *,
    query: str,
    room_id: uuid.UUID | None,
    before: tuple[datetime, int] | None,
    limit: int,
) -> list[Message]:
    """Messages containing every word of ``query`` in one room or in all the caller's rooms, newest first."""
    words = text.tokens(query)
    if not words:
        raise MessagesError("invalid_query", "Search for at least one word.", status=422)
    if room_id is not None:
        room, member = await _access(ctx, reader, room_id)
        scopes = [(room_id, visible_after(room, member))]
    else:
        scopes = []
        for membership in await ctx.store.memberships(reader.user_id):
            state = await ctx.store.room(membership.room_id)
            if state is not None and not state.deleted:
                scopes.append((membership.room_id, visible_after(state, membership)))
    if not scopes:
        return []
    return list(await ctx.store.search(scopes, words[:16], limit=limit, before=before))


@dataclass(frozen=True, slots=True)
class Unread:
    room_id: uuid.UUID
    unread: int
    read_seq: int
    last_seq: int
    mentions: int = 0
    """Of the unread messages, those that mention the caller by name or mention the whole room."""


async def unread(ctx: MessagesContext, reader: Reader) -> list[Unread]:
    """Per room of the caller: messages after their read marker not sent by them, and how many of those mention
    the caller. The counts cover exactly the messages up to the ``last_seq`` answered (read first), so a client
    can tell which live messages they include, however many arrive while they are counted."""
    found = []
    for member in await ctx.store.memberships(reader.user_id):
        room = await ctx.store.room(member.room_id)
        if room is None or room.deleted:
            continue
        markers = await ctx.store.marker(member.room_id, reader.user_id)
        last_seq = await ctx.store.last_seq(member.room_id)
        after = max(markers.read_seq, visible_after(room, member))
        count = await ctx.store.count_unread(member.room_id, reader.user_id, after_seq=after, up_to_seq=last_seq)
        mentions = (
            await ctx.store.count_unread_mentions(member.room_id, reader.user_id, after_seq=after, up_to_seq=last_seq)
            if count
            else 0
        )
        read_seq = markers.read_seq
        found.append(Unread(member.room_id, unread=count, read_seq=read_seq, last_seq=last_seq, mentions=mentions))
    return found


@dataclass(frozen=True, slots=True)
class Receipts:
    """Who has received and read how far; ``delivered_to_all_seq``: every other member has received up to it."""

    markers: list[Markers]
    delivered_to_all_seq: int
    read_by_all_seq: int


async def receipts(ctx: MessagesContext, reader: Reader, room_id: uuid.UUID) -> Receipts:
    await _access(ctx, reader, room_id)
    members = await ctx.store.members(room_id)
    markers = [await ctx.store.marker(room_id, m.user_id) for m in members]
    others = [m for m in markers if m.user_id != reader.user_id]
    return Receipts(
        markers=markers,
        delivered_to_all_seq=min((max(m.delivered_seq, m.read_seq) for m in others), default=0),
        read_by_all_seq=min((m.read_seq for m in others), default=0),
    )
