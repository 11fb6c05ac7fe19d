"""The replies of a message are read through a sparse index that only replies have an entry in (decisions/0017),
for real on the Mongo-wire server. A database from before keeps its replies index of every message and reads
replies by ``reply_to``, as earlier versions do beside it; the upgrade runbook's steps move it to the sparse one."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from chat_messages.adapters import mongo
from chat_messages.adapters.mongo_documents import message_document
from chat_messages.adapters.mongo_indexes import INDEXES, MESSAGES_BY_REPLY, MESSAGES_BY_REPLY_BEFORE
from chat_messages.adapters.mongo_store import MongoMessageStore
from chat_messages.domain.model import Message
from chat_messages.testing.store_contract.builders import a_message, an_edit, insert

from .mongo_commands import Recorded

Client = AsyncMongoClient[dict[str, Any]]
Database = AsyncDatabase[dict[str, Any]]
REPLIES_BEFORE = next(m for m in INDEXES["messages"] if m.document["name"] == MESSAGES_BY_REPLY_BEFORE)


@pytest.fixture
async def client(mongo_url: str) -> AsyncIterator[Client]:
    client = mongo.client(mongo_url)
    yield client
    await client.close()


def written_before(message: Message) -> dict[str, Any]:
    """A document as versions before 0017 write it: no ``reply_key``."""
    document = message_document(message)
    document.pop("reply_key", None)
    return document


async def started(client: Client, database: str) -> MongoMessageStore:
    store = MongoMessageStore(client[database])
    await store.ensure_indexes()
    return store


async def stored_before(db: Database, room_id: uuid.UUID) -> list[Message]:
    """A database as versions before 0017 left it: their replies index, and a message, a reply to it and another
    message without ``reply_key``."""
    await db["messages"].create_indexes([REPLIES_BEFORE])
    root = a_message(room_id, 1)
    earlier = [root, a_message(room_id, 2, reply_to=root.id), a_message(room_id, 3)]
    await db["messages"].insert_many([written_before(m) for m in earlier])
    return earlier


async def replies_index_entries(db: Database) -> int:
    """How many entries the sparse replies index has."""
    every_entry = await db["messages"].find({"reply_key": {"$exists": True}}).hint(MESSAGES_BY_REPLY).explain()
    return int(every_entry["executionStats"]["totalKeysExamined"])


async def test_only_a_reply_has_a_reply_key_and_an_entry_in_the_replies_index(
    client: Client, mongo_database_name: str
) -> None:
    store = await started(client, mongo_database_name)
    room_id = uuid.uuid4()
    root = a_message(room_id, 1)
    replies = [a_message(room_id, seq, reply_to=root.id) for seq in (3, 5)]
    await insert(store, root, a_message(room_id, 2), *replies, a_message(room_id, 4))
    messages = client[mongo_database_name]["messages"]

    stored_root = await messages.find_one({"_id": root.id}) or {}
    assert stored_root["reply_to"] is None, "as every earlier version reads it"
    assert "reply_key" not in stored_root
    stored_reply = await messages.find_one({"_id": replies[0].id}) or {}
    assert stored_reply["reply_to"] == stored_reply["reply_key"] == root.id
    indexes = await messages.index_information()
    assert indexes[MESSAGES_BY_REPLY]["sparse"] is True
    assert MESSAGES_BY_REPLY_BEFORE not in indexes
    assert await replies_index_entries(client[mongo_database_name]) == len(replies), "only replies have an entry"
    assert await store.message(room_id, root.id) == root
    assert list(await store.replies(room_id, root.id, limit=10)) == replies


async def test_the_replies_read_names_the_sparse_index_and_reads_only_that_threads_replies(
    client: Client, mongo_url: str, mongo_database_name: str
) -> None:
    store = await started(client, mongo_database_name)
    room_id = uuid.uuid4()
    root, other = a_message(room_id, 1), a_message(room_id, 2)
    thread = [a_message(room_id, seq, reply_to=root.id) for seq in range(3, 40, 2)]
    elsewhere = [a_message(room_id, seq, reply_to=other.id) for seq in range(4, 40, 2)]
    await insert(store, root, other, *thread, *elsewhere)

    commands = Recorded()
    watched = mongo.client(mongo_url, event_listeners=[commands])
    try:
        found = await MongoMessageStore(watched[mongo_database_name]).replies(room_id, root.id, limit=5)
    finally:
        await watched.close()
    assert list(found) == thread[:5]
    (asked,) = [c.command for c in commands.sent if c.command_name == "find"]
    assert asked["hint"] == MESSAGES_BY_REPLY
    # The read as sent: the index yields the thread's replies and no other message; they are sorted by seq.
    read = client[mongo_database_name]["messages"].find(asked["filter"]).hint(MESSAGES_BY_REPLY).sort("seq", 1)
    explained = await read.limit(5).explain()
    assert explained["executionStats"]["totalDocsExamined"] == len(thread)


async def test_an_edited_reply_stays_in_its_thread_and_an_edited_message_gains_no_reply_key(
    client: Client, mongo_database_name: str
) -> None:
    store = await started(client, mongo_database_name)
    room_id = uuid.uuid4()
    root = a_message(room_id, 1)
    reply = a_message(room_id, 2, reply_to=root.id)
    await insert(store, root, reply)
    await store.apply_change(room_id, reply.id, an_edit("edited"))
    await store.apply_change(room_id, root.id, an_edit("root edited"))
    (found,) = await store.replies(room_id, root.id, limit=10)
    assert (found.id, found.body, found.reply_to) == (reply.id, "edited", root.id)
    assert "reply_key" not in (await client[mongo_database_name]["messages"].find_one({"_id": root.id}) or {})


async def test_a_database_from_before_keeps_its_replies_index_and_reads_replies_by_reply_to(
    client: Client, mongo_database_name: str
) -> None:
    # Its replies have no reply_key, and an earlier version beside this one (a rolling upgrade) writes none.
    db = client[mongo_database_name]
    room_id = uuid.uuid4()
    earlier = await stored_before(db, room_id)
    root = earlier[0]

    store = await started(client, mongo_database_name)
    indexes = await db["messages"].index_information()
    assert MESSAGES_BY_REPLY_BEFORE in indexes
    assert MESSAGES_BY_REPLY not in indexes, "made only where the index it replaces is not kept"
    beside = a_message(room_id, 4, reply_to=root.id)
    await db["messages"].insert_one(written_before(beside))  # by the earlier version, during the upgrade
    later = a_message(room_id, 5, reply_to=root.id)
    await insert(store, later)
    assert list(await store.replies(room_id, root.id, limit=10)) == [earlier[1], beside, later]
    assert [await store.message(room_id, m.id) for m in earlier] == earlier


async def test_the_upgrade_runbook_moves_a_database_from_before_to_the_sparse_index(
    client: Client, mongo_database_name: str
) -> None:
    db = client[mongo_database_name]
    room_id = uuid.uuid4()
    earlier = await stored_before(db, room_id)
    root = earlier[0]
    await started(client, mongo_database_name)

    # docs/operations.md, "Upgrades": once no earlier version runs, give the replies stored before their
    # reply_key, drop the old index, and restart the messages instances.
    await db["messages"].update_many(
        {"reply_to": {"$ne": None}, "reply_key": {"$exists": False}}, [{"$set": {"reply_key": "$reply_to"}}]
    )
    await db["messages"].drop_index(MESSAGES_BY_REPLY_BEFORE)
    store = await started(client, mongo_database_name)

    indexes = await db["messages"].index_information()
    assert (MESSAGES_BY_REPLY in indexes, MESSAGES_BY_REPLY_BEFORE in indexes) == (True, False)
    assert "reply_key" not in (await db["messages"].find_one({"_id": root.id}) or {}), "a message that answers none"
    later = a_message(room_id, 5, reply_to=root.id)
    await insert(store, later)
    assert list(await store.replies(room_id, root.id, limit=10)) == [earlier[1], later]
    assert await replies_index_entries(db) == 2


async def test_a_rollback_to_an_earlier_version_and_forward_again_reads_the_replies_it_wrote(
    client: Client, mongo_database_name: str
) -> None:
    db = client[mongo_database_name]
    store = await started(client, mongo_database_name)
    room_id = uuid.uuid4()
    root = a_message(room_id, 1)
    first = a_message(room_id, 2, reply_to=root.id)
    await insert(store, root, first)
    # The earlier version makes its replies index at start and writes replies without a reply_key.
    await db["messages"].create_indexes([REPLIES_BEFORE])
    meanwhile = a_message(room_id, 3, reply_to=root.id)
    await db["messages"].insert_one(written_before(meanwhile))

    again = await started(client, mongo_database_name)
    assert list(await again.replies(room_id, root.id, limit=10)) == [first, meanwhile]
