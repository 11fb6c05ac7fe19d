"""Composition root of the messages service: every adapter comes in as an argument."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog
from fastapi import APIRouter
from prometheus_client import CollectorRegistry
from pymongo import AsyncMongoClient

from chat_messages.adapters import mongo
from chat_messages.adapters.gridfs_store import GridFsAttachmentStore
from chat_messages.adapters.mongo_store import MongoMessageStore
from chat_messages.entrypoints import bus as bus_entrypoints
from chat_messages.entrypoints.bus import STORE_DOWN
from chat_messages.entrypoints.http import build_router
from chat_messages.entrypoints.http_attachments import build_attachments_router
from chat_messages.service.context import MessagesContext, Publisher
from chat_messages.service.owner import RoomOwner
from chat_messages.service.ports import AttachmentStore, Clock, MessageStore
from chat_messages.service.retention import Sweeper
from chat_messages.settings import MessagesSettings
from chat_runtime.bus.follow import TopicFollower, follower_for
from chat_runtime.bus.port import Bus, Pace
from chat_runtime.health import ReadinessCheck
from chat_runtime.module import BusHandler
from chat_runtime.store_metrics import StoreMetrics
from chat_runtime.tokens import EndedSessions, EndedSessionsFeed, HttpJwksSource, JwksSource, TokenVerifier

log = structlog.get_logger("chat.messages")


def utc_now() -> datetime:
    return datetime.now(UTC)


def build_context(
    settings: MessagesSettings,
    *,
    store: MessageStore,
    attachments: AttachmentStore,
    publisher: Publisher,
    jwks: JwksSource,
    clock: Clock = utc_now,
    ended_sessions: EndedSessions | None = None,
) -> MessagesContext:
    verifier = TokenVerifier(
        jwks=jwks,
        issuer=settings.auth_issuer,
        audience=settings.auth_audience,
        clock=lambda: clock().timestamp(),
        ended_sessions=ended_sessions,
    )
    return MessagesContext(
        settings=settings, store=store, publisher=publisher, clock=clock, verifier=verifier, attachments=attachments
    )


@dataclass
class MessagesModule:
    """The messages service as a module the launcher can start alone or with the others."""

    settings: MessagesSettings
    context: MessagesContext
    mongo: AsyncMongoClient[dict[str, Any]] | None = None
    owner: RoomOwner = field(init=False)
    sweeper: Sweeper | None = None
    ended_sessions: EndedSessionsFeed | None = None
    name: str = field(default="messages", init=False)
    _heads: asyncio.Task[None] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.owner = RoomOwner(self.context.store)

    def router(self) -> APIRouter:
        router = build_router(self.context)
        router.include_router(build_attachments_router(self.context, self.context.attachments))
        return router

    def readiness_checks(self) -> Mapping[str, ReadinessCheck]:
        checks: dict[str, ReadinessCheck] = {}
        client = self.mongo
        if client is not None:

            async def database() -> None:
                await mongo.ping(client)

            checks["mongo"] = database
        if self.ended_sessions is not None:
            checks["ended_sessions"] = self.ended_sessions.check_loaded
        return checks

    def bus_handlers(self) -> Sequence[BusHandler]:
        return bus_entrypoints.bus_handlers(
            self.context, self.owner, instance_id=self.settings.instance_id, pace=self._insert_pace()
        )

    def _insert_pace(self) -> Pace | None:
        """The store's pace of inserts, for the commands consumer: MongoDB's paced inserts (unpaced inserts, on
        Kafka by default, and the in-memory store write at once)."""
        store = self.context.store
        if not isinstance(store, MongoMessageStore) or not store.inserts_paced:
            return None
        return Pace(store.insert_pause, fill=store.insert_batch)

    def body_limits(self) -> Mapping[str, int]:
        # The upload route enforces the exact limit itself (after checking membership, so strangers get 404 and
        # members a 413 naming the limit); the middleware is only a ceiling above it.
        return {"/api/messages/rooms/{room_id}/attachments": 2 * self.settings.attachment_max_bytes + 65536}

    async def start(self) -> None:
        if self.ended_sessions is not None:
            await self.ended_sessions.start()
        stores = [
            store
            for store in (self.context.store, self.context.attachments)
            if isinstance(store, MongoMessageStore | GridFsAttachmentStore)
        ]
        if self.mongo is not None and stores:
            # Settled before anything is written: routes are served and commands consumed only after start.
            concern = await mongo.choose_write_concern(self.mongo, self.settings.mongo_write_concern)
            log.info("messages.write_concern", choice=self.settings.mongo_write_concern, **concern.document)
            for store in stores:
                store.use_write_concern(concern)
        for store in stores:
            await store.ensure_indexes()
        if self.sweeper is not None:
            await self.sweeper.start()
        self._heads = asyncio.create_task(self._flush_heads(), name="messages:heads")

    async def _flush_heads(self) -> None:
        """Raise the rooms' head documents when they are due (one write for all that moved)."""
        while True:
            await self.owner.heads_due()
            try:
                await self.owner.flush_heads()
            except STORE_DOWN as exc:
                log.warning("messages.heads_not_written", error=str(exc))

    async def stop(self) -> None:
        if self._heads is not None:
            self._heads.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heads
            with contextlib.suppress(*STORE_DOWN):
                await self.owner.flush_heads()
        if self.sweeper is not None:
            await self.sweeper.stop()
        if self.ended_sessions is not None:
            await self.ended_sessions.stop()
        if self.mongo is not None:
            await self.mongo.close()


def bootstrap(
    settings: MessagesSettings,
    *,
    bus: Bus,
    mongo_client: AsyncMongoClient[dict[str, Any]] | None = None,
    jwks: JwksSource | None = None,
    clock: Clock = utc_now,
    follower: TopicFollower | None = None,
    registry: CollectorRegistry | None = None,
) -> MessagesModule:
    """Build the messages module on MongoDB, publishing on ``bus``; tokens of sessions ended on
    ``chat.users.events`` (read through ``follower``, by default ``bus``'s) are refused. The latency of the
    client it makes is observed on ``registry``."""
    listeners = [mongo.CommandTimer(StoreMetrics.on(registry))] if registry is not None else []
    client = mongo_client or mongo.client(settings.mongo_url, event_listeners=listeners)
    db = client[settings.mongo_database]
    ended = EndedSessionsFeed(
        follower or follower_for(bus), EndedSessions.for_leeway(clock=lambda: clock().timestamp())
    )
    context = build_context(
        settings,
        store=MongoMessageStore(
            db,
            writes_per_second=settings.paced_writes_per_second(),
            pace_above=settings.store_pace_above_per_second,
            write_batch=settings.store_write_batch,
        ),
        attachments=GridFsAttachmentStore(db),
        publisher=bus,
        jwks=jwks or HttpJwksSource(settings.auth_jwks_url),
        clock=clock,
        ended_sessions=ended.sessions,
    )
    sweeper = Sweeper(context, settings.retention_sweep_seconds)
    return MessagesModule(settings=settings, context=context, mongo=client, sweeper=sweeper, ended_sessions=ended)
