"""MongoDB unreachable: a command is retried, never committed or dead-lettered, and lands once the store is back."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient

from chat_contracts import messages_commands as cmd
from chat_contracts import messages_events as ev
from chat_contracts import rooms as rooms_ev
from chat_contracts.envelope import Envelope
from chat_contracts.topics import MESSAGES_COMMANDS, MESSAGES_EVENTS, ROOMS_EVENTS
from chat_messages.adapters import mongo
from chat_messages.adapters.gridfs_store import GridFsAttachmentStore
from chat_messages.adapters.mongo_store import MongoMessageStore
from chat_messages.bootstrap import MessagesModule, build_context
from chat_messages.settings import MessagesSettings
from chat_messages.testing.fakes import FakeClock
from chat_runtime.bus.inprocess import InProcessBroker, InProcessBus
from chat_runtime.bus.port import RetryPolicy
from chat_runtime.settings import load_settings
from chat_runtime.testing.tokens import TokenMint


class SwitchableStore(MongoMessageStore):
    """The real store behind a switch that makes every call fail the way an unreachable server does."""

    def __init__(self, db: Any, unreachable: MongoMessageStore) -> None:
        self.down = False  # up while the real store builds itself (it binds its own methods)
        self._unreachable = unreachable
        super().__init__(db)
        self.down = True

    def __getattribute__(self, name: str) -> Any:
        if name not in ("down", "_unreachable", "__class__") and object.__getattribute__(self, "down"):
            return getattr(object.__getattribute__(self, "_unreachable"), name)
        return super().__getattribute__(name)


async def test_a_command_waits_out_a_store_outage_and_is_stored_once(
    tmp_path: Path, mongo_url: str, mongo_database_name: str
) -> None:
    good: AsyncMongoClient[dict[str, Any]] = mongo.client(mongo_url)
    bad: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        "mongodb://127.0.0.1:9/?directConnection=true", serverSelectionTimeoutMS=200, uuidRepresentation="standard"
    )
    db = good[mongo_database_name]
    real = MongoMessageStore(db)
    await real.ensure_indexes()
    store = SwitchableStore(db, MongoMessageStore(bad[mongo_database_name]))
    settings = load_settings(MessagesSettings, data_dir=tmp_path)
    clock = FakeClock()
    bus = InProcessBus(InProcessBroker(), retry=RetryPolicy(max_attempts=3, initial_backoff=0.05, max_backoff=0.2))
    ctx = build_context(
        settings,
        store=store,
        attachments=GridFsAttachmentStore(db),
        publisher=bus,
        jwks=TokenMint(issuer=settings.auth_issuer, audience=settings.auth_audience, clock=clock).jwks,
        clock=clock,
    )
    module = MessagesModule(settings=settings, context=ctx)
    answers: list[Envelope] = []
    try:
        for handler in module.bus_handlers():
            await handler.subscribe(bus)
        await bus.subscribe(MESSAGES_EVENTS, group="client", handler=lambda e: _append(answers, e))
        room, ada = uuid.uuid4(), uuid.uuid4()
        store.down = False
        await bus.publish(
            ROOMS_EVENTS,
            rooms_ev.RoomCreated(
                room_id=room, room_version=1, kind="public", name="r", created_by=ada, occurred_at=clock()
            ),
            source="rooms",
        )
        await bus.publish(
            ROOMS_EVENTS,
            rooms_ev.MemberJoined(room_id=room, room_version=2, user_id=ada, role="owner", occurred_at=clock()),
            source="rooms",
        )
        await _until(lambda: bus.broker.committed("messages", ROOMS_EVENTS.name) != [0] * ROOMS_EVENTS.partitions)
        await asyncio.sleep(0.2)
        store.down = True
        await bus.publish(
            MESSAGES_COMMANDS,
            cmd.SendMessage(room_id=room, sender_id=ada, client_msg_id="during-outage", body="hello", request_id="r1"),
            source="gateway",
        )
        retries = bus.metrics.retries.labels(MESSAGES_COMMANDS.name, "messages")
        await _until(lambda: retries._value.get() >= 3)  # several tries against the dead server
        assert answers == [], "nothing is answered while the store is down"
        assert sum(bus.broker.committed("messages", MESSAGES_COMMANDS.name)) == 0, "the command is not committed"
        assert bus.broker.records(MESSAGES_COMMANDS.dlq) == [], "an outage never dead-letters a valid command"
        store.down = False
        await _until(lambda: len(answers) == 1)
        assert isinstance(answers[0].data, ev.MessageCreated)
        assert answers[0].data.seq == 1
        assert [m.client_msg_id for m in await real.history(room, limit=10, newest_first=False)] == ["during-outage"]
    finally:
        await bus.stop()
        await good.close()
        await bad.close()


async def _append(answers: list[Envelope], envelope: Envelope) -> None:
    answers.append(envelope)


async def _until(condition: Any, timeout: float = 20) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.05)
