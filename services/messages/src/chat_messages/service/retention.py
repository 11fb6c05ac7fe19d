"""Retention: per-room policies (keep forever by default, or N days) and the purge of deleted rooms."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from dataclasses import dataclass
from datetime import timedelta

import structlog

from chat_messages.domain.errors import MessagesError
from chat_messages.service.context import MessagesContext, Reader
from chat_messages.service.reading import _access

log = structlog.get_logger("chat.messages.retention")

MAX_RETENTION_DAYS = 3650


async def set_policy(ctx: MessagesContext, reader: Reader, room_id: uuid.UUID, days: int | None) -> int | None:
    """Room owners and admins choose how long the room's messages are kept (None: forever)."""
    _, member = await _access(ctx, reader, room_id)
    if member.role not in ("owner", "admin"):
        raise MessagesError("forbidden_role", "Only the room's owner or admins set retention.", status=403)
    if days is not None and not 1 <= days <= MAX_RETENTION_DAYS:
        raise MessagesError("invalid_retention", f"Keep messages 1–{MAX_RETENTION_DAYS} days, or forever.", status=422)
    await ctx.store.set_retention(room_id, days)
    log.info("messages.retention_set", room_id=str(room_id), days=days)
    return days


async def policy(ctx: MessagesContext, reader: Reader, room_id: uuid.UUID) -> int | None:
    await _access(ctx, reader, room_id)
    return await ctx.store.retention(room_id)


@dataclass(frozen=True, slots=True)
class Swept:
    messages_deleted: int
    rooms_purged: int


async def sweep(ctx: MessagesContext) -> Swept:
    """Delete messages past their room's retention (never a room's newest, which holds its seq) and drop the data
    of deleted rooms whose grace period is over."""
    now = ctx.clock()
    deleted = 0
    for room_id, days in await ctx.store.retention_policies():
        deleted += await ctx.store.delete_messages_before(room_id, now - timedelta(days=days))
    purged = 0
    for room_id in await ctx.store.due_purges(now):
        await ctx.store.drop_room(room_id)
        await ctx.attachments.drop_room(room_id)
        await ctx.store.purge_done(room_id)
        purged += 1
    if deleted or purged:
        log.info("messages.retention_swept", messages_deleted=deleted, rooms_purged=purged)
    return Swept(messages_deleted=deleted, rooms_purged=purged)


class Sweeper:
    """Runs ``sweep`` every ``interval`` seconds in the background; errors are logged and retried next round."""

    def __init__(self, ctx: MessagesContext, interval: float) -> None:
        self._ctx = ctx
        self._interval = interval
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="messages-retention")

    async def _run(self) -> None:
        while True:
            try:
                await sweep(self._ctx)
            except Exception as exc:  # the next round retries; the store may be down for a while
                log.warning("messages.retention_failed", error=f"{type(exc).__name__}: {exc}")
            await asyncio.sleep(self._interval)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
