"""``MessageStore`` on MongoDB: one atomic single-document operation per method call, no transactions.

The documents it stores and reads are described, written and read back in mongo_documents.py; the filters it runs
are built in mongo_queries.py. Here: the collections and the store's operations; their indexes are in mongo_indexes.py.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, Final

from pymongo import ASCENDING, DESCENDING, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError
from pymongo.write_concern import WriteConcern

from chat_messages.adapters.group_insert import GroupInsert
from chat_messages.adapters.mongo_documents import (
    CODEC_OPTIONS,
    Document,
    activity_document,
    activity_from,
    change_update,
    markers_from,
    member_from,
    message_document,
    message_from,
    pair_id,
    to_us,
)
from chat_messages.adapters.mongo_indexes import (
    INDEXES,
    KEPT_WHERE_MADE,
    MESSAGES_BY_CLIENT_MSG_ID,
    MESSAGES_BY_REPLY,
    MESSAGES_BY_REPLY_BEFORE,
    REPLACES,
    UNUSED_ON_SECANTUS,
    duplicate_key_fields,
)
from chat_messages.adapters.mongo_queries import (
    SEARCH_SORT,
    Filter,
    activity_query,
    count_pipeline,
    history_window,
    search_queries,
    unread_rest,
    unread_window,
)
from chat_messages.domain.activity import Activity
from chat_messages.domain.model import Change, MarkerKind, Markers, Member, Message, RoomState, message_id_for
from chat_messages.service.ports import InsertOutcome, InsertResult, Refusal, require_derived_ids

HEAD_WINDOW: Final = 1024
"""Seqs read at once when ``last_seq`` walks from a head document that is behind."""
UPSERT_ATTEMPTS: Final = 5
# Claims of one username race each other (each clears the others, then sets its own); backing off with
# jitter lets one of them finish instead of all of them knocking each other out in lockstep.
USERNAME_ATTEMPTS: Final = 30
"""Tries for an upsert that loses races to concurrent inserts of the same key (each loss means progress)."""

_NOT_APPLIED: Final = {"applied": 0}
"""Projection for reads: the remembered request ids stay in the database."""


@dataclass(frozen=True, slots=True)
class _Collections:
    messages: AsyncCollection[Document]
    rooms: AsyncCollection[Document]
    members: AsyncCollection[Document]
    users: AsyncCollection[Document]
    markers: AsyncCollection[Document]
    retention: AsyncCollection[Document]
    heads: AsyncCollection[Document]
    """Room → a seq at or below the highest stored (a hint the room's owner raises; ``last_seq`` walks on)."""
    activity: AsyncCollection[Document]


HINT_CONCERN: Final = WriteConcern(w=1, j=False)
"""The write concern of the head documents: hints that may be lost (mongo_documents.py's docstring says why)."""


class MongoMessageStore:
    """The messages service's ``MessageStore`` on one MongoDB database (call ``ensure_indexes`` once first)."""

    def __init__(
        self,
        db: AsyncDatabase[Document],
        *,
        writes_per_second: float = 0.0,
        pace_above: float = 200.0,
        write_batch: int = 6,
    ) -> None:
        """``writes_per_second``, ``pace_above`` and ``write_batch``: pace the inserts of new messages when sends
        come faster than ``pace_above`` a second (``GroupInsert``); 0 writes at once."""
        db = db.with_options(codec_options=CODEC_OPTIONS)
        self._db = db
        self._c = _Collections(
            messages=db["messages"],
            rooms=db["rooms"],
            members=db["members"],
            users=db["users"],
            markers=db["markers"],
            retention=db["retention"],
            heads=db["heads"].with_options(write_concern=HINT_CONCERN),
            activity=db["activity"],
        )
        # Sends of every partition this process owns go to the store together (adapters/group_insert.py).
        self._inserts = GroupInsert(
            self._insert_documents, writes_per_second=writes_per_second, pace_above=pace_above, batch=write_batch
        )
        self._random_ids_stored = False
        """Whether the database may hold messages stored before ids were derived (it has the client_msg_id index)."""
        self._replies_by_reply_to = False
        """Whether replies are read by ``reply_to`` (the database has the replies index of every message, so its
        replies stored before may have no ``reply_key``), not by the sparse ``reply_key`` index."""

    async def ensure_indexes(self) -> None:
        """Create the indexes the queries and the uniqueness rules need; harmless when they exist.

        On the Mongo-wire server used in development (SecantusDB) the search index is left out, and dropped if it
        was made before: that server reads no multikey index for a query (a search reads the room's messages
        through an index on ``room_id`` with or without it), while every word of every message cost the insert
        an index entry (docs/benchmarks.md).

        The ``(room_id, client_msg_id)`` index is made only by earlier versions (``KEPT_WHERE_MADE``). A database
        that has it keeps it: its older messages have random ids, and a send made again after the upgrade must
        still be refused by it. Such a database also finds a client_msg_id by that index when the derived id is
        not stored (``message_by_client_msg_id``).

        The ``(room_id, reply_to, seq)`` index is kept the same way, and then the sparse ``reply_key`` index that
        replaces it (``REPLACES``) is not made: the replies stored before have no ``reply_key``, so such a database
        reads replies by ``reply_to`` (decisions/0017; docs/operations.md, "Upgrades", moves it to the new one)."""
        unused = UNUSED_ON_SECANTUS if await self._on_secantus() else {}
        for collection, models in INDEXES.items():
            before = await self._db[collection].index_information()
            dropped = unused.get(collection, frozenset())
            kept_only = KEPT_WHERE_MADE.get(collection, frozenset()) - before.keys()
            replaced_here = {name for name, earlier in REPLACES.items() if earlier in before}
            await self._db[collection].create_indexes(
                [m for m in models if m.document["name"] not in dropped | kept_only | replaced_here]
            )
            for name in dropped & before.keys():
                await self._db[collection].drop_index(name)
            if collection == "messages":
                self._random_ids_stored = MESSAGES_BY_CLIENT_MSG_ID in before
                self._replies_by_reply_to = MESSAGES_BY_REPLY_BEFORE in before

    async def _on_secantus(self) -> bool:
        info = await self._db.client.admin.command("buildInfo")
        return "secantusVersion" in info

    def insert_pause(self) -> float:
        """Seconds until the store would start its next insert of new messages; 0 when it would start one now
        (``GroupInsert.pause``: only while inserts are paced)."""
        return self._inserts.pause()

    @property
    def inserts_paced(self) -> bool:
        """Whether inserts of new messages are paced (``writes_per_second`` > 0)."""
        return self._inserts.paced

    @property
    def insert_batch(self) -> int:
        """How many waiting new messages start a paced insert at once."""
        return self._inserts.batch

    def use_write_concern(self, concern: WriteConcern) -> None:
        """Write with ``concern`` from now on (the service settles it at start, once the server said what it is)."""
        self._db = self._db.with_options(write_concern=concern)
        concerns = {f.name: HINT_CONCERN if f.name == "heads" else concern for f in fields(self._c)}
        self._c = _Collections(**{n: getattr(self._c, n).with_options(write_concern=c) for n, c in concerns.items()})

    # the rooms projection

    async def room(self, room_id: uuid.UUID) -> RoomState | None:
        doc = await self._c.rooms.find_one({"_id": room_id})
        if doc is None:
            return None
        return RoomState(
            room_id=doc["_id"],
            version=doc["version"],
            kind=doc["kind"],
            archived=doc["archived"],
            history=doc["history"],
            deleted=doc["deleted"],
            blocked=doc.get("blocked", False),  # absent from rooms stored before blocks closed direct rooms
            name=doc.get("name"),
            name_known=doc.get("name_known", False),  # absent from rooms stored before names were kept
        )

    async def apply_room(self, state: RoomState) -> bool:
        fields = {
            "version": state.version,
            "kind": state.kind,
            "archived": state.archived,
            "history": state.history,
            "deleted": state.deleted,
            "blocked": state.blocked,
            "name": state.name,
            "name_known": state.name_known,
        }
        older = {"_id": state.room_id, "version": {"$lt": state.version}}
        try:
            await self._c.rooms.update_one(older, {"$set": fields}, upsert=True)
        except DuplicateKeyError:
            # The room is stored: with this version or a newer one, or it was inserted concurrently just now
            # (maybe with an older version), so try the conditional update once more, without inserting.
            result = await self._c.rooms.update_one(older, {"$set": fields})
            return result.matched_count == 1
        return True

    async def member(self, room_id: uuid.UUID, user_id: uuid.UUID) -> Member | None:
        doc = await self._c.members.find_one({"_id": pair_id(room_id, user_id)})
        return None if doc is None else member_from(doc)

    async def put_member(self, member: Member) -> None:
        doc = {
            "room_id": member.room_id,
            "user_id": member.user_id,
            "role": member.role,
            "joined_after_seq": member.joined_after_seq,
        }
        await self._upsert(self._c.members, pair_id(member.room_id, member.user_id), {"$set": doc})

    async def remove_member(self, room_id: uuid.UUID, user_id: uuid.UUID) -> None:
        await self._c.members.delete_one({"_id": pair_id(room_id, user_id)})

    async def memberships(self, user_id: uuid.UUID) -> Sequence[Member]:
        cursor = self._c.members.find({"user_id": user_id}).sort([("user_id", ASCENDING), ("room_id", ASCENDING)])
        return [member_from(doc) async for doc in cursor]

    async def members(self, room_id: uuid.UUID) -> Sequence[Member]:
        cursor = self._c.members.find({"room_id": room_id}).sort([("room_id", ASCENDING), ("user_id", ASCENDING)])
        return [member_from(doc) async for doc in cursor]

    async def members_of(self, room_id: uuid.UUID, user_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, Member]:
        if not user_ids:
            return {}
        wanted = [pair_id(room_id, user_id) for user_id in dict.fromkeys(user_ids)]
        cursor = self._c.members.find({"_id": {"$in": wanted}})
        return {doc["user_id"]: member_from(doc) async for doc in cursor}

    async def drop_room(self, room_id: uuid.UUID) -> None:
        await self._c.messages.delete_many({"room_id": room_id})
        await self._c.heads.delete_one({"_id": room_id})
        await self._c.members.delete_many({"room_id": room_id})
        await self._c.markers.delete_many({"room_id": room_id})
        await self._c.activity.delete_many({"room_id": room_id})

    # the room's activity

    async def put_activity(self, activity: Activity) -> None:
        await self._upsert(
            self._c.activity,
            f"{activity.room_id}:{activity.room_version}",
            {"$setOnInsert": activity_document(activity)},
        )

    async def activity(
        self,
        room_id: uuid.UUID,
        *,
        from_seq: int = 0,
        after_seq: int | None = None,
        before_seq: int | None = None,
        after_version: int = 0,
        limit: int,
    ) -> Sequence[Activity]:
        if limit <= 0:
            return []
        query = activity_query(
            room_id, from_seq=from_seq, after_seq=after_seq, before_seq=before_seq, after_version=after_version
        )
        cursor = self._c.activity.find(query).sort([("room_version", ASCENDING)]).limit(limit)
        return [activity_from(doc) async for doc in cursor]

    # the users projection

    async def put_user(self, user_id: uuid.UUID, username: str) -> None:
        key = username.casefold()
        for attempt in range(USERNAME_ATTEMPTS):
            await self._c.users.update_many(
                {"username_key": key, "_id": {"$ne": user_id}}, {"$unset": {"username_key": "", "username": ""}}
            )
            try:
                await self._c.users.update_one(
                    {"_id": user_id}, {"$set": {"username": username, "username_key": key}}, upsert=True
                )
            except DuplicateKeyError:
                # another user took the name in between, or this user was inserted concurrently
                await asyncio.sleep(random.uniform(0, 0.002 * (attempt + 1)))  # noqa: S311 - jitter, not a secret
                continue
            return
        raise RuntimeError(f"could not give {username!r} to user {user_id}: it kept moving")

    async def users_by_username(self, usernames: Sequence[str]) -> dict[str, uuid.UUID]:
        keys = list(dict.fromkeys(name.casefold() for name in usernames))
        if not keys:
            return {}
        cursor = self._c.users.find({"username_key": {"$in": keys}}, {"username_key": 1})
        return {doc["username_key"]: doc["_id"] async for doc in cursor}

    async def forget_user(self, user_id: uuid.UUID) -> None:
        await self._c.users.delete_one({"_id": user_id})

    # messages

    async def last_seq(self, room_id: uuid.UUID) -> int:
        """The highest seq stored in the room: its head document (no sort: the Mongo-wire server used in
        development sorts in memory), then the seqs stored above it, which the owner writes before it raises the
        head (a window of ``HEAD_WINDOW`` seqs per read; seqs are dense, so a full window means read on)."""
        head = await self._c.heads.find_one({"_id": room_id})
        if head is None:
            # No head yet (a room from before heads existed, or an empty one): one sorted read, then kept.
            doc = await self._c.messages.find_one(
                {"room_id": room_id}, {"_id": 0, "seq": 1}, sort=[("seq", DESCENDING)]
            )
            seq = 0 if doc is None else int(doc["seq"])
            if seq:
                await self.advance_heads({room_id: seq})
            return seq
        seq = walked = int(head["seq"])
        while True:
            window = {"room_id": room_id, "seq": {"$gt": walked, "$lte": walked + HEAD_WINDOW}}
            found = [int(doc["seq"]) async for doc in self._c.messages.find(window, {"_id": 0, "seq": 1})]
            if not found:
                break
            walked = max(found)
            if len(found) < HEAD_WINDOW:
                break
        if walked - seq >= HEAD_WINDOW:
            await self.advance_heads({room_id: walked})  # a long walk: spare the next reader of the room
        return walked

    async def advance_heads(self, heads: Mapping[uuid.UUID, int]) -> None:
        if not heads:
            return
        for attempt in range(UPSERT_ATTEMPTS):
            requests = [
                UpdateOne({"_id": room_id, "seq": {"$lt": seq}}, {"$set": {"seq": seq}}, upsert=attempt == 0)
                for room_id, seq in heads.items()
            ]
            try:
                await self._c.heads.bulk_write(requests, ordered=False)
            except BulkWriteError as error:
                # An upsert collides with a head that exists already (ahead or just created): update without them.
                codes = {e.get("code") for e in error.details.get("writeErrors", [])}
                if codes - {11000}:
                    raise
                continue
            return

    async def insert_message(self, message: Message) -> InsertResult:
        outcome = await self.insert_messages([message])
        return "inserted" if outcome.inserted == 1 else (outcome.refused or "duplicate_seq")

    async def insert_messages(self, messages: Sequence[Message]) -> InsertOutcome:
        if not messages:
            return InsertOutcome(inserted=0)
        require_derived_ids(messages)
        written = await self._inserts.insert([message_document(m) for m in messages])
        failure = written.failure
        if failure is None:
            return InsertOutcome(inserted=written.inserted)
        if failure.get("code") != 11000:
            raise BulkWriteError({"writeErrors": [dict(failure)], "nInserted": written.inserted})
        refused = await self._refusal(messages[written.inserted], failure)
        if refused is None:  # not a rule of the port (the same _id in another room): not for callers to explain
            raise DuplicateKeyError(str(failure.get("errmsg", "duplicate key")), 11000, dict(failure))
        return InsertOutcome(inserted=written.inserted, refused=refused)

    async def _insert_documents(self, documents: list[Document]) -> None:
        await self._c.messages.insert_many(documents, ordered=True)

    async def _refusal(self, message: Message, failure: Mapping[str, Any]) -> Refusal | None:
        """Which uniqueness rule refused ``message``. A stored client_msg_id wins whichever index the server
        checked first: the message exists, and that is what the caller must learn (the same send again collides
        on ``_id``, and on ``seq`` too when a stale owner gave it the stored one's)."""
        fields = duplicate_key_fields(failure)
        if "client_msg_id" in fields:
            # Only the index of earlier versions refuses by client_msg_id: one made it after this store started
            # (an older instance beside this one, or rolled back to), so random ids may be stored from now on.
            self._random_ids_stored = True
            return "duplicate_client_msg_id"
        if fields & {"seq", "_id"}:
            if await self._stored_client_msg_id(message.room_id, message.client_msg_id, {"_id": 1}) is not None:
                return "duplicate_client_msg_id"
            if "seq" in fields:
                return "duplicate_seq"
        return None

    async def _stored_client_msg_id(
        self, room_id: uuid.UUID, client_msg_id: str, projection: Mapping[str, Any]
    ) -> Document | None:
        """The stored message of ``client_msg_id`` in the room: by its derived id, then (in a database with
        messages from before ids were derived) by the client_msg_id index."""
        doc = await self._c.messages.find_one(
            {"_id": message_id_for(room_id, client_msg_id), "room_id": room_id}, projection
        )
        if doc is None and self._random_ids_stored:
            doc = await self._c.messages.find_one({"room_id": room_id, "client_msg_id": client_msg_id}, projection)
        return doc

    async def message(self, room_id: uuid.UUID, message_id: uuid.UUID) -> Message | None:
        doc = await self._c.messages.find_one({"_id": message_id, "room_id": room_id}, _NOT_APPLIED)
        return None if doc is None else message_from(doc)

    async def message_by_client_msg_id(self, room_id: uuid.UUID, client_msg_id: str) -> Message | None:
        doc = await self._stored_client_msg_id(room_id, client_msg_id, _NOT_APPLIED)
        return None if doc is None else message_from(doc)

    async def apply_change(
        self, room_id: uuid.UUID, message_id: uuid.UUID, change: Change
    ) -> tuple[Message, bool] | None:
        update = change_update(change)
        wanted: dict[str, object] = {"_id": message_id, "room_id": room_id, "applied": {"$ne": change.request_id}}
        if change.delete_by is None:
            wanted["deleted_us"] = None  # an edit or reaction racing a deletion must not bring content back
        # update_one, then a read, not find_one_and_update: the Mongo-wire server used in development answers a
        # findAndModify with a scan of the whole collection whatever its filter (docs/benchmarks.md, the soak).
        # The room's owner applies its changes one at a time, so the read is this change's result.
        result = await self._c.messages.update_one(wanted, update)
        current = await self.message(room_id, message_id)
        return None if current is None else (current, result.modified_count == 1)

    async def history(
        self,
        room_id: uuid.UUID,
        *,
        before_seq: int | None = None,
        after_seq: int | None = None,
        min_seq: int = 0,
        limit: int,
        newest_first: bool,
    ) -> Sequence[Message]:
        """A page read as closed seq windows, ``limit`` wide and doubling over gaps (swept messages): each read
        is one bounded range of the (room_id, seq) index, never an open range sorted by the server."""
        if limit <= 0:
            return []
        low = max(min_seq, after_seq or 0)  # exclusive
        high = await self.last_seq(room_id)  # inclusive
        if before_seq is not None:
            high = min(high, before_seq - 1)
        found: list[Message] = []
        window = limit
        while low < high and len(found) < limit:
            if newest_first:
                lower, upper = max(low, high - window), high
                high = lower
            else:
                lower, upper = low, min(high, low + window)
                low = upper
            cursor = self._c.messages.find(history_window(room_id, lower, upper), _NOT_APPLIED)
            batch = sorted([message_from(doc) async for doc in cursor], key=lambda m: m.seq, reverse=newest_first)
            found.extend(batch)
            window *= 2
        return found[:limit]

    async def replies(self, room_id: uuid.UUID, message_id: uuid.UUID, *, limit: int) -> Sequence[Message]:
        if limit <= 0:
            return []
        if self._replies_by_reply_to:  # a database from before decisions/0017
            cursor = self._c.messages.find({"room_id": room_id, "reply_to": message_id}, _NOT_APPLIED)
        else:  # named: SecantusDB 0.7 plans a collection scan for this filter otherwise
            cursor = self._c.messages.find({"reply_key": message_id, "room_id": room_id}, _NOT_APPLIED)
            cursor = cursor.hint(MESSAGES_BY_REPLY)
        cursor = cursor.sort([("seq", ASCENDING)]).limit(limit)
        return [message_from(doc) async for doc in cursor]

    async def search(
        self,
        rooms: Sequence[tuple[uuid.UUID, int]],
        tokens: Sequence[str],
        *,
        limit: int,
        before: tuple[datetime, int] | None,
    ) -> Sequence[Message]:
        if limit <= 0 or not rooms or not tokens:
            return []

        async def page(query: Filter) -> list[Document]:
            cursor = self._c.messages.find(query, _NOT_APPLIED).sort(SEARCH_SORT).limit(limit)
            return await cursor.to_list()

        pages = await asyncio.gather(*(page(query) for query in search_queries(rooms, tokens, before=before)))
        found = [doc for docs in pages for doc in docs]
        found.sort(key=lambda doc: (doc["created_us"], doc["seq"], doc["room_id"].bytes), reverse=True)
        return [message_from(doc) for doc in found[:limit]]

    # markers

    async def move_marker(self, room_id: uuid.UUID, user_id: uuid.UUID, kind: MarkerKind, seq: int) -> bool:
        if kind not in ("read", "delivered"):
            raise ValueError(f"unknown marker kind {kind!r}")
        if seq <= 0:  # markers start at 0
            return False
        other = "delivered_seq" if kind == "read" else "read_seq"
        update = {"$max": {f"{kind}_seq": seq}, "$setOnInsert": {"room_id": room_id, "user_id": user_id, other: 0}}
        return await self._upsert(self._c.markers, pair_id(room_id, user_id), update)

    async def markers(self, room_id: uuid.UUID) -> Sequence[Markers]:
        cursor = self._c.markers.find({"room_id": room_id}).sort([("room_id", ASCENDING), ("user_id", ASCENDING)])
        return [markers_from(doc) async for doc in cursor]

    async def marker(self, room_id: uuid.UUID, user_id: uuid.UUID) -> Markers:
        doc = await self._c.markers.find_one({"_id": pair_id(room_id, user_id)})
        return Markers(room_id=room_id, user_id=user_id) if doc is None else markers_from(doc)

    async def count_unread(
        self, room_id: uuid.UUID, user_id: uuid.UUID, *, after_seq: int, up_to_seq: int | None = None
    ) -> int:
        window = unread_window(room_id, after_seq=after_seq, up_to_seq=up_to_seq)
        return await self._count(window, unread_rest(user_id))

    async def count_unread_mentions(
        self, room_id: uuid.UUID, user_id: uuid.UUID, *, after_seq: int, up_to_seq: int | None = None
    ) -> int:
        window = unread_window(room_id, after_seq=after_seq, up_to_seq=up_to_seq)
        mentioned = {"$or": [{"mentions.user_id": user_id}, {"mentions_room": True}]}
        return await self._count(window, unread_rest(user_id) | mentioned)

    async def _count(self, window: Filter, rest: Filter) -> int:
        cursor = await self._c.messages.aggregate(count_pipeline(window, rest))
        found = await cursor.to_list(1)
        return int(found[0]["n"]) if found else 0

    # retention

    async def set_retention(self, room_id: uuid.UUID, days: int | None) -> None:
        if days is None:
            await self._c.retention.update_one({"_id": room_id}, {"$unset": {"days": ""}})
        else:
            await self._c.retention.update_one({"_id": room_id}, {"$set": {"days": days}}, upsert=True)

    async def retention(self, room_id: uuid.UUID) -> int | None:
        doc = await self._c.retention.find_one({"_id": room_id})
        days = doc.get("days") if doc is not None else None
        return days if isinstance(days, int) else None

    async def retention_policies(self) -> Sequence[tuple[uuid.UUID, int]]:
        cursor = self._c.retention.find({"days": {"$exists": True}})
        return [(doc["_id"], int(doc["days"])) async for doc in cursor]

    async def delete_messages_before(self, room_id: uuid.UUID, before: datetime) -> int:
        last = await self.last_seq(room_id)
        result = await self._c.messages.delete_many(
            {"room_id": room_id, "created_us": {"$lt": to_us(before)}, "seq": {"$lt": last}}
        )
        await self._c.activity.delete_many({"room_id": room_id, "occurred_us": {"$lt": to_us(before)}})
        return result.deleted_count

    async def schedule_purge(self, room_id: uuid.UUID, at: datetime) -> None:
        await self._c.retention.update_one({"_id": room_id}, {"$set": {"purge_us": to_us(at)}}, upsert=True)

    async def due_purges(self, now: datetime) -> Sequence[uuid.UUID]:
        cursor = self._c.retention.find({"purge_us": {"$lte": to_us(now)}}, {"_id": 1})
        return [doc["_id"] async for doc in cursor]

    async def purge_done(self, room_id: uuid.UUID) -> None:
        await self._c.retention.update_one({"_id": room_id}, {"$unset": {"purge_us": ""}})

    # helpers

    async def _upsert(self, collection: AsyncCollection[Document], _id: str, update: Document) -> bool:
        """``update_one(..., upsert=True)`` by ``_id``, retried when a concurrent insert of the same _id wins;
        True when it inserted or changed the document."""
        for _ in range(UPSERT_ATTEMPTS):
            try:
                result = await collection.update_one({"_id": _id}, update, upsert=True)
            except DuplicateKeyError:
                continue
            return result.upserted_id is not None or result.modified_count > 0
        raise RuntimeError(f"could not upsert {_id!r} in {collection.name}")
