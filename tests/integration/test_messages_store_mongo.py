"""The MongoDB message store passes the store contract; its indexes, documents, concurrency and query plans hold
for real on the Mongo-wire server."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest
from bson.binary import Binary, UuidRepresentation
from pymongo import AsyncMongoClient
from pymongo.errors import DuplicateKeyError

from chat_messages.adapters import mongo
from chat_messages.adapters.mongo_documents import message_document, to_us
from chat_messages.adapters.mongo_indexes import (
    INDEXES,
    MESSAGES_BY_CLIENT_MSG_ID,
    MESSAGES_BY_REPLY,
    MESSAGES_BY_SEQ,
    MESSAGES_BY_TOKEN,
    duplicate_key_fields,
)
from chat_messages.adapters.mongo_queries import (
    SEARCH_SORT,
    count_pipeline,
    history_window,
    search_queries,
    unread_query,
    unread_rest,
    unread_window,
)
from chat_messages.adapters.mongo_store import MongoMessageStore
from chat_messages.domain.model import Edit, Markers, MentionedUser, Message, RoomState, message_id_for
from chat_messages.service.ports import InsertOutcome, MessageStore
from chat_messages.testing.store_contract import StoreContract
from chat_messages.testing.store_contract.builders import (
    T0,
    US,
    a_deletion,
    a_message,
    a_reaction,
    a_room_of,
    an_edit,
    ids,
    insert,
)

from .mongo_commands import Recorded

Client = AsyncMongoClient[dict[str, Any]]
WRITERS = 20
"""Concurrent callers in the race tests."""


def seqs_of(messages: Any) -> list[int]:
    return [message.seq for message in messages]


@pytest.fixture
async def client(mongo_url: str) -> AsyncIterator[Client]:
    client = mongo.client(mongo_url)
    yield client
    await client.close()


@pytest.fixture
async def mongo_store(client: Client, mongo_database_name: str) -> MongoMessageStore:
    store = MongoMessageStore(client[mongo_database_name])
    await store.ensure_indexes()
    return store


class TestMongoMessageStore(StoreContract):
    @pytest.fixture
    def store(self, mongo_store: MongoMessageStore) -> MessageStore:
        return mongo_store


# indexes


async def test_ensure_indexes_creates_the_unique_and_query_indexes_and_can_run_again(
    client: Client, mongo_database_name: str
) -> None:
    store = MongoMessageStore(client[mongo_database_name])
    await store.ensure_indexes()
    await store.ensure_indexes()
    db = client[mongo_database_name]

    async def indexes(collection: str) -> dict[str, tuple[list[tuple[str, int]], bool]]:
        info = await db[collection].index_information()
        return {
            name: ([(field, int(direction)) for field, direction in spec["key"]], bool(spec.get("unique")))
            for name, spec in info.items()
            if name != "_id_"
        }

    wanted = {  # no client_msg_id index in a new database: the derived message id is unique per client_msg_id
        MESSAGES_BY_SEQ: ([("room_id", 1), ("seq", 1)], True),
        MESSAGES_BY_REPLY: ([("reply_key", 1)], False),  # sparse: replies only (test_messages_replies_index.py)
        MESSAGES_BY_TOKEN: ([("room_id", 1), ("tokens", 1), ("created_us", -1), ("seq", -1)], False),
    }
    if await _is_secantus(client):  # it reads no multikey index: the search index would only slow inserts
        del wanted[MESSAGES_BY_TOKEN]
    assert await indexes("messages") == wanted
    assert await indexes("members") == {
        "room_user": ([("room_id", 1), ("user_id", 1)], False),
        "user_room": ([("user_id", 1), ("room_id", 1)], False),
    }
    assert await indexes("markers") == {"room_user": ([("room_id", 1), ("user_id", 1)], False)}
    assert await indexes("users") == {"username_key": ([("username_key", 1)], True)}
    assert (await db["users"].index_information())["username_key"]["sparse"] is True


async def test_the_unique_indexes_refuse_duplicates_written_past_the_store(
    mongo_store: MongoMessageStore, client: Client, mongo_database_name: str
) -> None:
    message = a_message(uuid.uuid4(), 1, client_msg_id="abc")
    await insert(mongo_store, message)
    messages = client[mongo_database_name]["messages"]
    stored = await messages.find_one({"_id": message.id})
    assert stored is not None
    with pytest.raises(DuplicateKeyError):  # (room_id, seq)
        await messages.insert_one(stored | {"_id": uuid.uuid4(), "client_msg_id": "other"})
    with pytest.raises(DuplicateKeyError):  # the message id its client_msg_id derives
        await messages.insert_one(stored | {"seq": 2})
    await messages.insert_one(
        stored | {"_id": message_id_for(message.room_id, "other"), "seq": 2, "client_msg_id": "other"}
    )


async def test_a_database_from_before_derived_ids_keeps_its_client_msg_id_index_and_its_messages_stay_unique(
    client: Client, mongo_database_name: str
) -> None:
    # An earlier version made the (room_id, client_msg_id) index and gave messages random ids; a send stored then
    # and made again after the upgrade must still be refused, and answered by the stored message.
    db = client[mongo_database_name]
    legacy_index = next(m for m in INDEXES["messages"] if m.document["name"] == MESSAGES_BY_CLIENT_MSG_ID)
    await db["messages"].create_indexes([legacy_index])
    room_id = uuid.uuid4()
    earlier = replace(a_message(room_id, 1, client_msg_id="sent-before"), id=uuid.uuid4())
    await db["messages"].insert_one(message_document(earlier))
    store = MongoMessageStore(db)
    await store.ensure_indexes()
    assert MESSAGES_BY_CLIENT_MSG_ID in await db["messages"].index_information()

    again = a_message(room_id, 3, client_msg_id="sent-before")
    assert await store.insert_messages([a_message(room_id, 2), again]) == InsertOutcome(
        inserted=1, refused="duplicate_client_msg_id"
    )
    assert await store.message_by_client_msg_id(room_id, "sent-before") == earlier
    later = a_message(room_id, 3, client_msg_id="sent-after")
    await insert(store, later)
    assert await store.message_by_client_msg_id(room_id, "sent-after") == later
    assert await store.insert_message(replace(later, seq=4)) == "duplicate_client_msg_id"
    assert seqs_of(await store.history(room_id, limit=10, newest_first=False)) == [1, 2, 3]


# documents


async def test_documents_hold_standard_uuids_exact_microseconds_and_reactions_as_an_array(
    mongo_store: MongoMessageStore, mongo_url: str, mongo_database_name: str
) -> None:
    room_id = uuid.uuid4()
    alice, bob = ids(2)
    message = replace(
        a_message(room_id, 1, body="a $b.c", sender_id=alice, at=T0 + timedelta(microseconds=123457)),
        mentions=(MentionedUser(bob, "bob"),),
    )
    await insert(mongo_store, message)
    await mongo_store.apply_change(room_id, message.id, a_reaction("a.$b", bob, request_id="$req"))

    raw: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_url)  # no codec options: BSON as stored
    try:
        doc = await raw[mongo_database_name]["messages"].find_one({})
    finally:
        await raw.close()
    assert doc is not None
    assert doc["_id"] == Binary.from_uuid(message.id, UuidRepresentation.STANDARD)
    assert doc["_id"].subtype == 4
    assert doc["room_id"] == Binary.from_uuid(room_id, UuidRepresentation.STANDARD)
    assert doc["created_us"] == to_us(message.created_at) == 1_893_456_000_123_457
    assert doc["reactions"] == [{"emoji": "a.$b", "users": [Binary.from_uuid(bob, UuidRepresentation.STANDARD)]}]
    assert doc["applied"] == ["$req"]
    assert doc["version"] == 2


async def test_a_store_on_a_client_without_codec_options_reads_and_writes_the_same_documents(
    mongo_store: MongoMessageStore, mongo_url: str, mongo_database_name: str
) -> None:
    message = replace(a_message(uuid.uuid4(), 1), created_at=T0 + 7 * US)
    await insert(mongo_store, message)
    plain: Client = AsyncMongoClient(mongo_url)
    try:
        other = MongoMessageStore(plain[mongo_database_name])
        assert await other.message(message.room_id, message.id) == message
        second = replace(a_message(message.room_id, 2), created_at=T0 + 9 * US)
        await insert(other, second)
    finally:
        await plain.close()
    assert await mongo_store.message(message.room_id, second.id) == second


async def test_a_message_remembers_its_last_64_request_ids_only(
    mongo_store: MongoMessageStore, client: Client, mongo_database_name: str
) -> None:
    (message,) = await a_room_of(mongo_store, 1)
    for n in range(70):
        await mongo_store.apply_change(message.room_id, message.id, an_edit(f"body {n}", request_id=f"req-{n}"))
    doc = await client[mongo_database_name]["messages"].find_one({"_id": message.id})
    assert doc is not None
    assert doc["applied"] == [f"req-{n}" for n in range(6, 70)]

    forgotten = await mongo_store.apply_change(message.room_id, message.id, an_edit("again", request_id="req-0"))
    assert forgotten is not None
    assert forgotten[1] is True
    assert forgotten[0].version == 72


async def test_a_deletion_also_removes_earlier_bodies_attachments_and_the_room_mention(
    mongo_store: MongoMessageStore,
) -> None:
    # Beyond the port's list (body, tokens, mentions, reactions): MessageDeleted promises "its body,
    # attachments and reactions are gone", and earlier bodies are the body too.
    room_id = uuid.uuid4()
    message = replace(a_message(room_id, 1, body="@room secret"), attachment_ids=(uuid.uuid4(),), mentions_room=True)
    await insert(mongo_store, message)
    await mongo_store.apply_change(room_id, message.id, an_edit("@room still secret"))
    result = await mongo_store.apply_change(room_id, message.id, a_deletion(message.sender_id))
    assert result is not None
    deleted, _ = result
    assert (deleted.edits, deleted.attachment_ids, deleted.mentions_room, deleted.body) == ((), (), False, "")
    assert deleted.edited_at is not None  # when it was last edited stays known


def test_a_duplicate_key_error_without_a_key_pattern_is_told_by_its_index_name() -> None:
    def error(errmsg: str, **details: object) -> DuplicateKeyError:
        return DuplicateKeyError(errmsg, 11000, {"errmsg": errmsg, **details})

    prefix = "E11000 duplicate key error collection: db.messages index:"
    assert duplicate_key_fields(error(f"{prefix} room_seq dup key: {{ }}")) == {"room_id", "seq"}
    assert duplicate_key_fields(error(f"{prefix} room_client_msg_id dup key")) == {"room_id", "client_msg_id"}
    assert duplicate_key_fields(error(f"{prefix} _id_ dup key: {{ }}")) == {"_id"}
    assert duplicate_key_fields(error("something else")) == set()
    assert duplicate_key_fields(error("x", keyPattern={"room_id": 1, "seq": 1})) == {"room_id", "seq"}


async def test_a_client_msg_id_index_made_while_the_store_runs_is_followed(
    mongo_store: MongoMessageStore, client: Client, mongo_database_name: str
) -> None:
    # An instance of an earlier version beside this one (or rolled back to) makes the index and stores a message
    # with a random id; this store, started on a database without the index, answers a resend with that message.
    messages = client[mongo_database_name]["messages"]
    await messages.create_indexes([m for m in INDEXES["messages"] if m.document["name"] == MESSAGES_BY_CLIENT_MSG_ID])
    room_id = uuid.uuid4()
    by_older = replace(a_message(room_id, 1, client_msg_id="c-1"), id=uuid.uuid4())
    await messages.insert_one(message_document(by_older))
    assert await mongo_store.insert_message(a_message(room_id, 2, client_msg_id="c-1")) == "duplicate_client_msg_id"
    assert await mongo_store.message_by_client_msg_id(room_id, "c-1") == by_older


async def test_an_unexplained_duplicate_key_error_is_raised(
    mongo_store: MongoMessageStore, client: Client, mongo_database_name: str
) -> None:
    # The same id in another room (a document written past the store): not this message again, so not a result
    # the port knows.
    message = a_message(uuid.uuid4(), 1)
    elsewhere = replace(message, room_id=uuid.uuid4())
    await client[mongo_database_name]["messages"].insert_one(message_document(elsewhere))
    with pytest.raises(DuplicateKeyError):
        await mongo_store.insert_message(message)


# concurrency


async def test_concurrent_sends_of_one_client_msg_id_insert_exactly_one_message(
    mongo_store: MongoMessageStore,
) -> None:
    room_id = uuid.uuid4()
    attempts = [a_message(room_id, seq, client_msg_id="same") for seq in range(1, WRITERS + 1)]
    results = await asyncio.gather(*(mongo_store.insert_message(m) for m in attempts))
    assert sorted(results) == ["duplicate_client_msg_id"] * (WRITERS - 1) + ["inserted"]
    winner = attempts[results.index("inserted")]
    assert await mongo_store.message_by_client_msg_id(room_id, "same") == winner
    assert list(await mongo_store.history(room_id, limit=100, newest_first=False)) == [winner]


async def test_concurrent_sends_of_one_message_with_one_seq_insert_it_once(mongo_store: MongoMessageStore) -> None:
    message = a_message(uuid.uuid4(), 1)
    results = await asyncio.gather(*(mongo_store.insert_message(message) for _ in range(WRITERS)))
    assert sorted(results) == ["duplicate_client_msg_id"] * (WRITERS - 1) + ["inserted"]


async def test_concurrent_inserts_racing_for_one_seq_let_exactly_one_win(mongo_store: MongoMessageStore) -> None:
    room_id = uuid.uuid4()
    rivals = [a_message(room_id, 1) for _ in range(WRITERS)]
    results = await asyncio.gather(*(mongo_store.insert_message(m) for m in rivals))
    assert sorted(results) == ["duplicate_seq"] * (WRITERS - 1) + ["inserted"]
    assert seqs_of(await mongo_store.history(room_id, limit=100, newest_first=False)) == [1]


async def test_concurrent_writers_assigning_seqs_leave_them_dense_and_unique(mongo_store: MongoMessageStore) -> None:
    room_id = uuid.uuid4()
    per_writer, writers = 8, 6
    conflicts = 0

    async def send(message: Message) -> None:
        nonlocal conflicts
        for _ in range(200):
            seq = await mongo_store.last_seq(room_id) + 1
            result = await mongo_store.insert_message(replace(message, seq=seq))
            if result == "inserted":
                return
            assert result == "duplicate_seq"
            conflicts += 1
        raise AssertionError("no seq after 200 tries")

    async def writer(name: int) -> None:
        for n in range(per_writer):
            await send(a_message(room_id, 0, client_msg_id=f"w{name}-{n}"))

    await asyncio.gather(*(writer(name) for name in range(writers)))
    stored = await mongo_store.history(room_id, limit=1000, newest_first=False)
    assert seqs_of(stored) == list(range(1, per_writer * writers + 1))
    assert len({m.client_msg_id for m in stored}) == per_writer * writers
    assert conflicts > 0  # the writers did race


async def test_concurrent_repeats_of_one_change_apply_it_once(mongo_store: MongoMessageStore) -> None:
    (message,) = await a_room_of(mongo_store, 1)
    edit = an_edit("edited", request_id="same")
    results = await asyncio.gather(
        *(mongo_store.apply_change(message.room_id, message.id, edit) for _ in range(WRITERS))
    )
    assert sorted(result[1] for result in results if result is not None) == [False] * (WRITERS - 1) + [True]
    stored = await mongo_store.message(message.room_id, message.id)
    assert stored is not None
    assert (stored.version, stored.body, stored.edits) == (2, "edited", (Edit(message.body, message.created_at),))


async def test_concurrent_reactions_of_many_users_all_land(mongo_store: MongoMessageStore) -> None:
    (message,) = await a_room_of(mongo_store, 1)
    users = ids(WRITERS)

    async def react(action: str) -> None:
        await asyncio.gather(
            *(mongo_store.apply_change(message.room_id, message.id, a_reaction("👍", u, action)) for u in users)
        )

    await react("add")
    stored = await mongo_store.message(message.room_id, message.id)
    assert stored is not None
    assert (sorted(stored.reactions["👍"]), stored.version) == (users, WRITERS + 1)
    await react("remove")
    stored = await mongo_store.message(message.room_id, message.id)
    assert stored is not None
    assert (stored.reactions, stored.version) == ({}, 2 * WRITERS + 1)


async def test_concurrent_room_states_keep_the_newest(mongo_store: MongoMessageStore) -> None:
    room_id = uuid.uuid4()
    versions = list(range(1, WRITERS + 1))
    random.shuffle(versions)
    results = await asyncio.gather(*(mongo_store.apply_room(RoomState(room_id, version=v)) for v in versions))
    assert any(results)
    assert await mongo_store.room(room_id) == RoomState(room_id, version=WRITERS)


async def test_concurrent_claims_of_one_username_leave_one_holder(
    mongo_store: MongoMessageStore, client: Client, mongo_database_name: str
) -> None:
    claimants = ids(10)
    await asyncio.gather(*(mongo_store.put_user(user_id, "Sam") for user_id in claimants))
    holders = await client[mongo_database_name]["users"].count_documents({"username_key": "sam"})
    assert holders == 1
    found = await mongo_store.users_by_username(["sam"])
    assert list(found) == ["sam"]
    assert found["sam"] in claimants


async def test_concurrent_marker_moves_keep_the_highest(mongo_store: MongoMessageStore) -> None:
    room_id, user_id = uuid.uuid4(), uuid.uuid4()
    targets = list(range(1, WRITERS + 1))
    random.shuffle(targets)
    moved = await asyncio.gather(*(mongo_store.move_marker(room_id, user_id, "read", seq) for seq in targets))
    assert any(moved)
    assert await mongo_store.marker(room_id, user_id) == Markers(room_id, user_id, read_seq=WRITERS)


# search, against a model


async def test_search_pages_agree_with_a_model_across_rooms_cursors_and_lowest_seqs(
    mongo_store: MongoMessageStore,
) -> None:
    rng = random.Random(6)
    rooms = [uuid.uuid4() for _ in range(5)]
    lowest = {rooms[0]: 0, rooms[1]: 0, rooms[2]: 4, rooms[3]: 9}  # rooms[4] is not searched
    words = ["alpha", "beta", "gamma"]
    stored: list[Message] = []
    taken: set[tuple[datetime, int]] = set()
    for room_id in rooms:
        for seq in range(1, 16):
            tokens = tuple(sorted({rng.choice(words) for _ in range(2)}))
            at = T0 + rng.randrange(6) * US  # many messages share an instant...
            while (at, seq) in taken:  # ...but a cursor cannot tell apart two with the same instant and seq
                at += US
            taken.add((at, seq))
            stored.append(a_message(room_id, seq, body=" ".join(tokens), at=at))
    await insert(mongo_store, *stored)
    doomed = stored[3]
    await mongo_store.apply_change(doomed.room_id, doomed.id, a_deletion(doomed.sender_id))

    for query in (["alpha"], ["alpha", "beta"], ["gamma", "beta"]):
        expected = sorted(
            (
                m
                for m in stored
                if m.room_id in lowest and m.seq > lowest[m.room_id] and set(query) <= set(m.tokens) and m is not doomed
            ),
            key=lambda m: (m.created_at, m.seq),
            reverse=True,
        )
        found: list[Message] = []
        before: tuple[datetime, int] | None = None
        while page := list(await mongo_store.search(list(lowest.items()), query, limit=4, before=before)):
            assert len(page) <= 4
            found += page
            before = (page[-1].created_at, page[-1].seq)
        assert found == expected
        assert len(expected) > 4


def test_search_queries_need_no_or() -> None:
    # The Mongo-wire server used in development scans the whole collection for any $or, $nor or $expr.
    first, second, third = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    queries = search_queries([(first, 0), (second, 3), (third, 0)], ["a", "b", "a"], before=(T0, 7))
    assert queries == [
        {"room_id": {"$in": [first, third]}, "tokens": {"$all": ["a", "b"]}, "deleted_us": None,
         "created_us": {"$lt": to_us(T0)}},
        {"room_id": {"$in": [first, third]}, "tokens": {"$all": ["a", "b"]}, "deleted_us": None,
         "created_us": to_us(T0), "seq": {"$lt": 7}},
        {"room_id": second, "seq": {"$gt": 3}, "tokens": {"$all": ["a", "b"]}, "deleted_us": None,
         "created_us": {"$lt": to_us(T0)}},
        {"room_id": second, "seq": {"$gt": 3, "$lt": 7}, "tokens": {"$all": ["a", "b"]}, "deleted_us": None,
         "created_us": to_us(T0)},
    ]  # fmt: skip


# query plans


def _stages(plan: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    plan = plan.get("queryPlan", plan)  # MongoDB's slot-based engine nests the classic plan
    yield plan
    if "inputStage" in plan:
        yield from _stages(plan["inputStage"])
    for stage in plan.get("inputStages", ()):
        yield from _stages(stage)


def scans(explained: Mapping[str, Any]) -> list[str]:
    """The winning plan's leaf scans: "IXSCAN <index name>" or "COLLSCAN"."""
    winning = explained["queryPlanner"]["winningPlan"]
    return [
        f"IXSCAN {stage['indexName']}" if stage["stage"] == "IXSCAN" else str(stage["stage"])
        for stage in _stages(winning)
        if stage["stage"] in ("IXSCAN", "COLLSCAN")
    ]


@pytest.fixture
async def busy_room(mongo_store: MongoMessageStore, client: Client, mongo_database_name: str) -> uuid.UUID:
    """A room among others, with replies, deletions and searchable words (written in one batch, as the store
    would write them one by one)."""
    rooms = [uuid.uuid4() for _ in range(4)]
    documents = []
    for room_id in rooms:
        messages = [a_message(room_id, seq, body=f"word{seq % 5} common") for seq in range(1, 61)]
        messages = [replace(m, reply_to=messages[0].id) if m.seq % 7 == 0 else m for m in messages]
        messages[10] = replace(messages[10], body="", tokens=(), deleted_at=T0, deleted_by=messages[10].sender_id)
        documents += [message_document(m) for m in messages]
    await client[mongo_database_name]["messages"].insert_many(documents)
    return rooms[0]


async def _is_secantus(client: Client) -> bool:
    return "secantusVersion" in await client.admin.command("buildInfo")


async def test_history_last_seq_replies_and_client_msg_id_reads_use_their_indexes(
    client: Client, mongo_url: str, mongo_database_name: str, busy_room: uuid.UUID
) -> None:
    messages = client[mongo_database_name]["messages"]

    # A history page is read as a closed seq window: the index yields just the window, nothing to sort.
    window = await messages.find(history_window(busy_room, 19, 39)).explain()
    assert scans(window) == [f"IXSCAN {MESSAGES_BY_SEQ}"]
    assert window["executionStats"]["totalKeysExamined"] <= 21

    replies = messages.find({"reply_key": uuid.uuid4(), "room_id": busy_room}).sort("seq", 1).limit(20)
    assert scans(await replies.hint(MESSAGES_BY_REPLY).explain()) == [f"IXSCAN {MESSAGES_BY_REPLY}"]
    # A client_msg_id is found by the message id it derives, which the filter names first: SecantusDB 0.7 finds
    # such a document directly (its explain says COLLSCAN all the same), and scans the collection for any other
    # filter that holds _id.
    commands = Recorded()
    watched = mongo.client(mongo_url, event_listeners=[commands])
    try:
        found = await MongoMessageStore(watched[mongo_database_name]).message_by_client_msg_id(busy_room, "x-1")
    finally:
        await watched.close()
    assert found is None
    (asked,) = [c.command for c in commands.sent if c.command_name == "find"]
    assert list(asked["filter"].items()) == [("_id", message_id_for(busy_room, "x-1")), ("room_id", busy_room)]

    last = messages.find({"room_id": busy_room}, {"_id": 0, "seq": 1}).sort("seq", -1).limit(1)
    (scan,) = scans(await last.explain())
    if not await _is_secantus(client):
        assert scan == f"IXSCAN {MESSAGES_BY_SEQ}"
    else:  # SecantusDB 0.7 picks any index starting with room_id here, and sorts afterwards
        assert scan.startswith("IXSCAN ")


async def test_search_and_unread_counts_can_be_answered_by_indexes(
    client: Client, mongo_database_name: str, busy_room: uuid.UUID
) -> None:
    messages = client[mongo_database_name]["messages"]
    (search,) = search_queries([(busy_room, 0)], ["word1", "common"], before=None)
    unread = unread_query(busy_room, uuid.uuid4(), after_seq=50)

    if not await _is_secantus(client):
        # The search index answers the search exactly: only the room's messages holding the first token are read.
        hinted = await messages.find(search).sort(SEARCH_SORT).hint(MESSAGES_BY_TOKEN).limit(5).explain()
        assert scans(hinted) == [f"IXSCAN {MESSAGES_BY_TOKEN}"]
        assert hinted["executionStats"]["totalKeysExamined"] <= 12  # 12 messages of the room hold "word1"
    hinted_unread = await messages.find(unread).hint(MESSAGES_BY_SEQ).explain()
    assert scans(hinted_unread) == [f"IXSCAN {MESSAGES_BY_SEQ}"]

    # Left to the planner (the store gives no hints: SecantusDB runs hinted scans far slower than its own picks).
    planned_search = scans(await messages.find(search).sort(SEARCH_SORT).limit(5).explain())
    planned_unread = scans(await messages.find(unread).explain())
    if not await _is_secantus(client):
        assert planned_search == [f"IXSCAN {MESSAGES_BY_TOKEN}"]
        assert planned_unread == [f"IXSCAN {MESSAGES_BY_SEQ}"]
    else:
        # SecantusDB 0.7's explain reports a collection scan for $all and for this filter, though the same
        # queries run in about a millisecond on a small room in a 50,000-message collection.
        assert planned_search == ["COLLSCAN"]
        assert planned_unread == ["COLLSCAN"]


async def test_the_search_index_is_left_out_where_the_server_never_reads_it(
    mongo_store: MongoMessageStore, client: Client, mongo_database_name: str
) -> None:
    """On the Mongo-wire server an index made by an earlier version is dropped at start; on MongoDB it stays."""
    messages = client[mongo_database_name]["messages"]
    await messages.create_indexes([m for m in INDEXES["messages"] if m.document["name"] == MESSAGES_BY_TOKEN])
    await mongo_store.ensure_indexes()
    kept = MESSAGES_BY_TOKEN in await messages.index_information()
    assert kept is not await _is_secantus(client)
    found = await mongo_store.search([(uuid.uuid4(), 0)], ["nothing"], limit=5, before=None)
    assert found == []


async def test_unread_counts_read_only_the_window_through_the_seq_index(
    client: Client, mongo_url: str, mongo_database_name: str, busy_room: uuid.UUID
) -> None:
    """A filter with a field outside an index is a collection scan on the Mongo-wire server, so an unread count
    would cost more with every message stored anywhere; the count's first stage is the seq window alone."""
    database = client[mongo_database_name]
    pipeline = count_pipeline(unread_window(busy_room, after_seq=50, up_to_seq=60), unread_rest(uuid.uuid4()))
    explained = await database.command(
        {"aggregate": "messages", "pipeline": pipeline, "explain": True}, codec_options=database.codec_options
    )
    cursor_stage = explained.get("stages", [{}])[0].get("$cursor", explained)
    assert scans(cursor_stage) == [f"IXSCAN {MESSAGES_BY_SEQ}"]
    counted = await (await database["messages"].aggregate(pipeline)).to_list(1)
    assert counted == [{"n": 10}], "seqs 51-60 of the room, none deleted"

    # And the store counts unread messages and mentions with that pipeline, not one filter.
    commands = Recorded()
    watched = mongo.client(mongo_url, event_listeners=[commands])
    try:
        store = MongoMessageStore(watched[mongo_database_name])
        assert await store.count_unread(busy_room, uuid.uuid4(), after_seq=50, up_to_seq=60) == 10
        assert await store.count_unread_mentions(busy_room, uuid.uuid4(), after_seq=50) == 0
    finally:
        await watched.close()
    asked = [c for c in commands.sent if c.command_name in ("aggregate", "count")]
    assert [c.command_name for c in asked] == ["aggregate", "aggregate"]
    assert [c.command["pipeline"][0] for c in asked] == [
        {"$match": unread_window(busy_room, after_seq=50, up_to_seq=60)},
        {"$match": unread_window(busy_room, after_seq=50)},
    ]


async def test_the_head_catches_up_when_an_insert_stopped_before_moving_it(
    mongo_store: MongoMessageStore, client: Client, mongo_database_name: str, busy_room: uuid.UUID
) -> None:
    assert await mongo_store.last_seq(busy_room) == 60, "written without heads: one sorted read, then kept"
    assert (await client[mongo_database_name]["heads"].find_one({"_id": busy_room}) or {}).get("seq") == 60
    # Two messages stored by an instance that crashed before it moved the head.
    await client[mongo_database_name]["messages"].insert_many(
        [message_document(a_message(busy_room, seq)) for seq in (61, 62)]
    )
    assert await mongo_store.last_seq(busy_room) == 62
    page = await mongo_store.history(busy_room, limit=5, newest_first=True)
    assert [m.seq for m in page] == [62, 61, 60, 59, 58]
    await client[mongo_database_name]["messages"].delete_many({"room_id": busy_room, "seq": {"$gte": 20, "$lte": 50}})
    older = await mongo_store.history(busy_room, before_seq=55, limit=8, newest_first=True)
    assert [m.seq for m in older] == [54, 53, 52, 51, 19, 18, 17, 16], "a swept stretch is stepped over"
    newer = await mongo_store.history(busy_room, after_seq=17, limit=4, newest_first=False)
    assert [m.seq for m in newer] == [18, 19, 51, 52]
