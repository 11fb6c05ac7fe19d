"""The messages service writes with the write concern its setting names, and never as retryable writes: what the
client really sends to the Mongo-wire server, seen through pymongo's command monitoring."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest
from pymongo import monitoring

from chat_contracts import messages_commands as cmd
from chat_contracts import messages_events as ev
from chat_contracts import rooms as rooms_ev
from chat_contracts.envelope import Envelope
from chat_contracts.topics import MESSAGES_COMMANDS, MESSAGES_EVENTS, ROOMS_EVENTS
from chat_messages.adapters import mongo
from chat_messages.bootstrap import bootstrap
from chat_messages.domain.model import Attachment
from chat_messages.settings import MessagesSettings
from chat_messages.testing.fakes import FakeClock
from chat_runtime.bus.inprocess import InProcessBroker, InProcessBus
from chat_runtime.settings import load_settings
from chat_runtime.testing.tokens import TokenMint

WRITES = frozenset({"insert", "update", "delete", "findAndModify"})


class Commands(monitoring.CommandListener):
    """Every command the client started, as sent."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.sent.append(dict(event.command))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass

    def writes_to(self, database: str) -> list[dict[str, Any]]:
        return [c for c in self.sent if next(iter(c)) in WRITES and c.get("$db") == database]


@pytest.mark.parametrize(
    ("choice", "expected"),
    [("auto", {"w": 1, "j": True}), ("journaled", {"w": 1, "j": True}), ("majority", {"w": "majority", "j": True})],
)
async def test_every_write_of_a_send_and_an_upload_uses_the_configured_write_concern_without_retryable_writes(
    tmp_path: Path, mongo_url: str, mongo_database_name: str, choice: str, expected: dict[str, Any]
) -> None:
    # "auto" is journaled here: the Mongo-wire server is one node (a single-member replica set).
    commands = Commands()
    client = mongo.client(mongo_url, event_listeners=[commands])
    settings = load_settings(
        MessagesSettings, data_dir=tmp_path, mongo_database=mongo_database_name, mongo_write_concern=choice
    )
    clock = FakeClock()
    mint = TokenMint(issuer=settings.auth_issuer, audience=settings.auth_audience, clock=clock)
    bus = InProcessBus(InProcessBroker())
    module = bootstrap(settings, bus=bus, mongo_client=client, jwks=mint.jwks, clock=clock)
    answers: list[Envelope] = []
    try:
        await module.start()
        for handler in module.bus_handlers():
            await handler.subscribe(bus)
        await bus.subscribe(MESSAGES_EVENTS, group="client", handler=lambda e: _append(answers, e))
        room, ada = uuid.uuid4(), uuid.uuid4()
        at = clock()
        await bus.publish(
            ROOMS_EVENTS,
            rooms_ev.RoomCreated(room_id=room, room_version=1, kind="public", name="r", created_by=ada, occurred_at=at),
            source="rooms",
        )
        await bus.publish(
            ROOMS_EVENTS,
            rooms_ev.MemberJoined(room_id=room, room_version=2, user_id=ada, role="owner", occurred_at=at),
            source="rooms",
        )
        await bus.publish(
            MESSAGES_COMMANDS,
            cmd.SendMessage(
                room_id=room, sender_id=ada, client_msg_id="c1", body="hello", request_id="r1", room_version=2
            ),
            source="gateway",
        )
        async with asyncio.timeout(20):
            while not answers:
                await asyncio.sleep(0.02)
        assert isinstance(answers[0].data, ev.MessageCreated)
        attachment = Attachment(
            id=uuid.uuid4(),
            room_id=room,
            uploader_id=ada,
            filename="a.txt",
            content_type="text/plain",
            size=5,
            created_at=at.replace(microsecond=0),
        )
        await module.context.attachments.put(attachment, b"hello")

        writes = commands.writes_to(mongo_database_name)
        written = {c[next(iter(c))] for c in writes}
        assert {"messages", "attachments.files", "attachments.chunks"} <= written, written
        assert [c["writeConcern"] for c in writes] == [expected] * len(writes)
        assert [c for c in writes if "txnNumber" in c] == [], "no write is sent as a retryable write"
    finally:
        await bus.stop()
        await module.stop()


async def _append(answers: list[Envelope], envelope: Envelope) -> None:
    answers.append(envelope)


async def test_a_change_is_an_update_and_a_read_never_a_find_and_modify(
    mongo_url: str, mongo_database_name: str
) -> None:
    """The Mongo-wire server answers a findAndModify with a scan of the whole collection (docs/benchmarks.md, the
    soak); an edit, deletion or reaction costs one indexed update and one read instead."""
    from chat_messages.adapters.mongo_store import MongoMessageStore
    from chat_messages.domain.model import Change
    from chat_messages.testing.store_contract.builders import a_message

    commands = Commands()
    client = mongo.client(mongo_url, event_listeners=[commands])
    try:
        store = MongoMessageStore(client[mongo_database_name])
        await store.ensure_indexes()
        message = a_message(uuid.uuid4(), 1)
        assert await store.insert_message(message) == "inserted"
        commands.sent.clear()
        change = Change(request_id="r-1", at=FakeClock()(), reaction=("👍", uuid.uuid4(), "add"))
        changed = await store.apply_change(message.room_id, message.id, change)
        again = await store.apply_change(message.room_id, message.id, change)
    finally:
        await client.close()
    assert changed is not None
    assert again is not None
    assert (changed[0].version, changed[1], again[0].version, again[1]) == (2, True, 2, False)
    names = [next(iter(c)) for c in commands.sent if c.get("$db") == mongo_database_name]
    assert "findAndModify" not in names
    assert names == ["update", "find", "update", "find"]
