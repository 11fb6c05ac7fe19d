"""HTTP routes of the messages service, mounted under /api/messages: history, room activity, search, unread counts,
receipts."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from importlib.metadata import version
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from chat_contracts.messages_out import MentionOut, MessageOut, Reaction
from chat_messages.domain.activity import Activity, ActivityKind
from chat_messages.domain.errors import MessagesError
from chat_messages.domain.model import Message
from chat_messages.service import reading, retention
from chat_messages.service.context import MessagesContext, Reader
from chat_runtime import cursors
from chat_runtime.principal import bearer_token, verify_access
from chat_runtime.problems import problem_responses

_DESCRIBED = {
    401: "Not signed in or the token is not valid",
    403: "Not allowed (forbidden_role)",
    404: "No such room or message, or one you may not see",
    422: "The query does not match the schema",
}


def _problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return problem_responses({s: _DESCRIBED[s] for s in statuses})


class MessagePage(BaseModel):
    items: list[MessageOut]
    next_cursor: str | None = None


class ActivityOut(BaseModel):
    room_id: uuid.UUID
    room_version: int = Field(description="the room event's version: unique in the room, the order of the activity")
    kind: ActivityKind
    user_id: uuid.UUID | None = Field(description="who joined, left, was removed or banned; null for a rename")
    by: uuid.UUID | None = Field(description="who did it; null when the member did it themselves or not said")
    name: str | None = Field(description="a rename's new name; null when the name was removed (or not a rename)")
    after_seq: int = Field(description="the room's highest seq when it happened: show it after that message")
    occurred_at: datetime


class ActivityPage(BaseModel):
    items: list[ActivityOut]


def activity_out(activity: Activity) -> ActivityOut:
    return ActivityOut(
        room_id=activity.room_id,
        room_version=activity.room_version,
        kind=activity.kind,
        user_id=activity.user_id,
        by=activity.by,
        name=activity.name,
        after_seq=activity.after_seq,
        occurred_at=activity.occurred_at,
    )


class Thread(BaseModel):
    message: MessageOut
    replies: list[MessageOut]


class UnreadOut(BaseModel):
    room_id: uuid.UUID
    unread: int
    read_seq: int
    last_seq: int
    mentions: int
    """Of the unread messages, those that mention me by name or mention the whole room (@room, @here…)."""


class MarkersOut(BaseModel):
    user_id: uuid.UUID
    read_seq: int
    delivered_seq: int


class ReceiptsOut(BaseModel):
    markers: list[MarkersOut]
    delivered_to_all_seq: int = Field(description="every other member has received the room up to this seq")
    read_by_all_seq: int = Field(description="every other member has read the room up to this seq")


class RetentionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    days: int | None = Field(description="days to keep messages; null keeps them forever")


class RetentionOut(BaseModel):
    days: int | None


class ServiceInfo(BaseModel):
    service: str
    version: str


def message_out(message: Message) -> MessageOut:
    return MessageOut(
        id=message.id,
        room_id=message.room_id,
        seq=message.seq,
        sender_id=message.sender_id,
        client_msg_id=message.client_msg_id,
        body=message.body,
        created_at=message.created_at,
        edited_at=message.edited_at,
        deleted=message.deleted,
        deleted_by=message.deleted_by,
        reply_to=message.reply_to,
        attachment_ids=list(message.attachment_ids),
        mentions=[MentionOut(user_id=m.user_id, username=m.username) for m in message.mentions],
        mentions_room=message.mentions_room,
        reactions=[
            Reaction(emoji=emoji, count=len(users), user_ids=list(users))
            for emoji, users in message.reactions.items()
            if users
        ],
        version=message.version,
    )


def _search_cursor(cursor: str | None) -> tuple[datetime, int] | None:
    """Where a search page starts: the last hit's (created_at, seq)."""
    if cursor is None:
        return None
    try:
        when, seq = cursors.decode(cursor, 2)
        return cursors.instant(when), cursors.integer(seq)
    except cursors.InvalidCursor:
        raise MessagesError("invalid_cursor", "The cursor is not one this API gave out.", status=422) from None


_STATE_KEY = "chat_messages_context"


def _bind(ctx: MessagesContext) -> Callable[[Request], None]:
    def bind(request: Request) -> None:
        setattr(request.state, _STATE_KEY, ctx)

    return bind


async def _reader(request: Request) -> Reader:
    ctx: MessagesContext = getattr(request.state, _STATE_KEY)
    token = await verify_access(ctx.verifier, bearer_token(request))
    return Reader(user_id=token.sub)


CurrentReader = Annotated[Reader, Depends(_reader)]
Limit = Annotated[int, Query(ge=1, le=reading.MAX_PAGE)]


def build_router(ctx: MessagesContext) -> APIRouter:
    """The messages service's routes, bound to ``ctx``."""
    router = APIRouter(tags=["messages"], dependencies=[Depends(_bind(ctx))])

    @router.get("/about", response_model=ServiceInfo, summary="Which service answers here, and its version")
    async def about() -> ServiceInfo:
        return ServiceInfo(service="messages", version=version("chat-messages"))

    @router.get(
        "/rooms/{room_id}/messages",
        response_model=MessagePage,
        summary="A page of history by seq: newest first below before_seq, or oldest first above after_seq",
        responses=_problems(401, 404, 422),
    )
    async def history(
        room_id: uuid.UUID,
        reader: CurrentReader,
        before_seq: Annotated[int | None, Query(ge=1)] = None,
        after_seq: Annotated[int | None, Query(ge=0)] = None,
        order: Literal["newest", "oldest"] | None = None,
        limit: Limit = 50,
    ) -> MessagePage:
        newest_first = order == "newest" if order is not None else after_seq is None
        found = await reading.history(
            ctx, reader, room_id, before_seq=before_seq, after_seq=after_seq, limit=limit, newest_first=newest_first
        )
        return MessagePage(items=[message_out(m) for m in found])

    @router.get(
        "/rooms/{room_id}/activity",
        response_model=ActivityPage,
        summary="The room's joins, leaves, removals, bans and renames in a window of seqs, by room_version",
        responses=_problems(401, 404, 422),
    )
    async def activity(
        room_id: uuid.UUID,
        reader: CurrentReader,
        after_seq: Annotated[int | None, Query(ge=0)] = None,
        before_seq: Annotated[int | None, Query(ge=1)] = None,
        after_version: Annotated[int, Query(ge=0)] = 0,
        limit: Limit = 100,
    ) -> ActivityPage:
        found = await reading.activity(
            ctx,
            reader,
            room_id,
            after_seq=after_seq,
            before_seq=before_seq,
            after_version=after_version,
            limit=limit,
        )
        return ActivityPage(items=[activity_out(a) for a in found])

    @router.get(
        "/rooms/{room_id}/messages/{message_id}",
        response_model=MessageOut,
        summary="One message",
        responses=_problems(401, 404),
    )
    async def one(room_id: uuid.UUID, message_id: uuid.UUID, reader: CurrentReader) -> MessageOut:
        return message_out(await reading.message(ctx, reader, room_id, message_id))

    @router.get(
        "/rooms/{room_id}/messages/{message_id}/thread",
        response_model=Thread,
        summary="A message and its replies, oldest first",
        responses=_problems(401, 404, 422),
    )
    async def thread(room_id: uuid.UUID, message_id: uuid.UUID, reader: CurrentReader, limit: Limit = 100) -> Thread:
        root, replies = await reading.thread(ctx, reader, room_id, message_id, limit=limit)
        return Thread(message=message_out(root), replies=[message_out(m) for m in replies])

    @router.get(
        "/search",
        response_model=MessagePage,
        summary="Messages with every word of q, in one room (room_id) or all my rooms, newest first",
        responses=_problems(401, 404, 422),
    )
    async def search(
        reader: CurrentReader,
        q: Annotated[str, Query(min_length=1, max_length=200)],
        room_id: uuid.UUID | None = None,
        cursor: Annotated[str | None, Query(max_length=200)] = None,
        limit: Limit = 20,
    ) -> MessagePage:
        found = await reading.search(
            ctx, reader, query=q, room_id=room_id, before=_search_cursor(cursor), limit=limit + 1
        )
        page = found[:limit]
        next_cursor = (
            cursors.encode(page[-1].created_at.isoformat(), page[-1].seq) if len(found) > limit and page else None
        )
        return MessagePage(items=[message_out(m) for m in page], next_cursor=next_cursor)

    @router.get(
        "/unread",
        response_model=list[UnreadOut],
        summary="Unread counts of all my rooms in one call",
        responses=_problems(401),
    )
    async def unread(reader: CurrentReader) -> list[UnreadOut]:
        return [
            UnreadOut(room_id=u.room_id, unread=u.unread, read_seq=u.read_seq, last_seq=u.last_seq, mentions=u.mentions)
            for u in await reading.unread(ctx, reader)
        ]

    @router.get(
        "/rooms/{room_id}/receipts",
        response_model=ReceiptsOut,
        summary="Read and delivery markers of the room's members",
        responses=_problems(401, 404),
    )
    async def receipts(room_id: uuid.UUID, reader: CurrentReader) -> ReceiptsOut:
        found = await reading.receipts(ctx, reader, room_id)
        return ReceiptsOut(
            markers=[
                MarkersOut(user_id=m.user_id, read_seq=m.read_seq, delivered_seq=m.delivered_seq) for m in found.markers
            ],
            delivered_to_all_seq=found.delivered_to_all_seq,
            read_by_all_seq=found.read_by_all_seq,
        )

    @router.get(
        "/rooms/{room_id}/retention",
        response_model=RetentionOut,
        summary="How long the room keeps messages",
        responses=_problems(401, 404),
    )
    async def get_retention(room_id: uuid.UUID, reader: CurrentReader) -> RetentionOut:
        return RetentionOut(days=await retention.policy(ctx, reader, room_id))

    @router.put(
        "/rooms/{room_id}/retention",
        response_model=RetentionOut,
        summary="Keep the room's messages N days, or forever (null); owners and admins",
        responses=_problems(401, 403, 404, 422),
    )
    async def put_retention(room_id: uuid.UUID, body: RetentionIn, reader: CurrentReader) -> RetentionOut:
        return RetentionOut(days=await retention.set_policy(ctx, reader, room_id, body.days))

    return router
