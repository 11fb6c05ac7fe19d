"""``MessageStore`` on MongoDB: one atomic single-document operation per method call, no transactions.

Representation (see also ``ensure_indexes``):

- UUIDs are BSON binary subtype 4 (standard). The store applies its own codec options, so it does not depend on
  how the client was built.
- Instants are integer microseconds since the Unix epoch (``created_us``, ``edited_us``, ``deleted_us``): BSON
  dates keep milliseconds only, and a message must read back exactly as it was written, and the search cursor
  ``(created_at, seq)`` must compare exactly.
- ``messages``: one document per message, ``_id`` = the message id. Reactions are an array of
  ``{emoji, users}`` in the order emoji were first used (an emoji is arbitrary client text, so never a field
  name); an emoji whose last user leaves is removed. ``applied`` holds the last 64 applied request ids.
- ``activity``: one document per room event the timeline shows (``_id`` = "room_id:room_version", so a replayed
  event is stored once), with ``occurred_us`` and ``after_seq``.
- ``rooms`` (``_id`` = room id), ``members`` and ``markers`` (``_id`` = "room_id:user_id"), ``users`` (``_id`` =
  user id, with the case-folded ``username_key``) and ``heads`` (``_id`` = room id: a seq at or below the room's
  highest, raised in batches by the room's owner). Heads are written with ``HINT_CONCERN`` (w=1, not journaled):
  a head lost in a crash is an older one, still at or below the highest, and the messages it points at were
  journaled before it moved.

Queries avoid ``$or``/``$nor``/``$expr``: the Mongo-wire server used in development and tests answers those
with a collection scan, and none of them is needed (search splits into a few index-exact queries instead).
"""

from __future__ import annotations

import asyncio
import random
import re
import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from bson.binary import UuidRepresentation
from bson.codec_options import CodecOptions
from pymongo import ASCENDING, DESCENDING, IndexModel, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError
from pymongo.write_concern import WriteConcern

from chat_messages.adapters.group_insert import GroupInsert
from chat_messages.domain.activity import Activity
from chat_messages.domain.model import (
    Change,
    Edit,
    MarkerKind,
    Markers,
    Member,
    MentionedUser,
    Message,
    RoomState,
)
from chat_messages.service.ports import InsertOutcome, InsertResult, Refusal

Document = dict[str, Any]
Filter = dict[str, Any]
Sort = list[tuple[str, int]]

APPLIED_KEPT: Final = 64
"""How many applied request ids a message remembers."""
HEAD_WINDOW: Final = 1024
"""Seqs read at once when ``last_seq`` walks from a head document that is behind."""
UPSERT_ATTEMPTS: Final = 5
# Claims of one username race each other (each clears the others, then sets its own); backing off with
# jitter lets one of them finish instead of all of them knocking each other out in lockstep.
USERNAME_ATTEMPTS: Final = 30
"""Tries for an upsert that loses races to concurrent inserts of the same key (each loss means progress)."""

MESSAGES_BY_SEQ: Final = "room_seq"
MESSAGES_BY_CLIENT_MSG_ID: Final = "room_client_msg_id"
MESSAGES_BY_REPLY: Final = "room_replies"
MESSAGES_BY_TOKEN: Final = "room_search"  # noqa: S105 (an index name)

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)
_CODEC_OPTIONS: Final[CodecOptions[Document]] = CodecOptions(
    document_class=dict, tz_aware=True, tzinfo=UTC, uuid_representation=UuidRepresentation.STANDARD
)
_NOT_APPLIED: Final = {"applied": 0}
"""Projection for reads: the remembered request ids stay in the database."""
_INDEX_NAME = re.compile(r"index: (\S+)")


def to_us(at: datetime) -> int:
    """Microseconds since the Unix epoch, exactly."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"a timezone-aware datetime is needed, not {at!r}")
    return (at - _EPOCH) // _MICROSECOND


def from_us(us: int) -> datetime:
    return _EPOCH + us * _MICROSECOND


def _pair_id(room_id: uuid.UUID, user_id: uuid.UUID) -> str:
    return f"{room_id}:{user_id}"


def duplicate_key_fields(error: DuplicateKeyError | Mapping[str, Any]) -> set[str]:
    """The fields of the unique index a duplicate-key error (or one write error of a bulk write) names
    (``keyPattern``, else the index name in the message, for servers that leave ``keyPattern`` out)."""
    details = (error.details or {}) if isinstance(error, DuplicateKeyError) else error
    pattern = details.get("keyPattern")
    if isinstance(pattern, Mapping) and pattern:
        return set(pattern)
    named = _INDEX_NAME.search(str(details.get("errmsg", error)))
    for model in INDEXES["messages"]:
        if named and model.document["name"] == named.group(1):
            return set(model.document["key"])
    return {"_id"} if named and named.group(1) == "_id_" else set()


# Documents


def message_document(message: Message) -> Document:
    return {
        "_id": message.id,
        "room_id": message.room_id,
        "seq": message.seq,
        "sender_id": message.sender_id,
        "client_msg_id": message.client_msg_id,
        "body": message.body,
        "created_us": to_us(message.created_at),
        "tokens": list(message.tokens),
        "reply_to": message.reply_to,
        "attachment_ids": list(message.attachment_ids),
        "mentions": [{"user_id": m.user_id, "username": m.username} for m in message.mentions],
        "mentions_room": message.mentions_room,
        "version": message.version,
        "edited_us": None if message.edited_at is None else to_us(message.edited_at),
        "edits": [{"body": e.body, "edited_us": to_us(e.edited_at)} for e in message.edits],
        "deleted_us": None if message.deleted_at is None else to_us(message.deleted_at),
        "deleted_by": message.deleted_by,
        "reactions": [{"emoji": emoji, "users": list(users)} for emoji, users in message.reactions.items() if users],
        "applied": [],
    }


def _message(doc: Mapping[str, Any]) -> Message:
    edited_us, deleted_us = doc["edited_us"], doc["deleted_us"]
    return Message(
        id=doc["_id"],
        room_id=doc["room_id"],
        seq=doc["seq"],
        sender_id=doc["sender_id"],
        client_msg_id=doc["client_msg_id"],
        body=doc["body"],
        created_at=from_us(doc["created_us"]),
        tokens=tuple(doc["tokens"]),
        reply_to=doc["reply_to"],
        attachment_ids=tuple(doc["attachment_ids"]),
        mentions=tuple(MentionedUser(user_id=m["user_id"], username=m["username"]) for m in doc["mentions"]),
        mentions_room=doc["mentions_room"],
        version=doc["version"],
        edited_at=None if edited_us is None else from_us(edited_us),
        edits=tuple(Edit(body=e["body"], edited_at=from_us(e["edited_us"])) for e in doc["edits"]),
        deleted_at=None if deleted_us is None else from_us(deleted_us),
        deleted_by=doc["deleted_by"],
        reactions={r["emoji"]: tuple(r["users"]) for r in doc["reactions"] if r["users"]},
    )


def _member(doc: Mapping[str, Any]) -> Member:
    return Member(
        room_id=doc["room_id"], user_id=doc["user_id"], role=doc["role"], joined_after_seq=doc["joined_after_seq"]
    )


def _markers(doc: Mapping[str, Any]) -> Markers:
    return Markers(
        room_id=doc["room_id"],
        user_id=doc["user_id"],
        read_seq=doc.get("read_seq", 0),
        delivered_seq=doc.get("delivered_seq", 0),
    )


def activity_document(activity: Activity) -> Document:
    return {
        "room_id": activity.room_id,
        "room_version": activity.room_version,
        "kind": activity.kind,
        "after_seq": activity.after_seq,
        "occurred_us": to_us(activity.occurred_at),
        "user_id": activity.user_id,
        "by": activity.by,
        "name": activity.name,
    }


def _activity(doc: Mapping[str, Any]) -> Activity:
    return Activity(
        room_id=doc["room_id"],
        room_version=doc["room_version"],
        kind=doc["kind"],
        after_seq=doc["after_seq"],
        occurred_at=from_us(doc["occurred_us"]),
        user_id=doc["user_id"],
        by=doc["by"],
        name=doc["name"],
    )


def activity_query(
    room_id: uuid.UUID, *, from_seq: int, after_seq: int | None, before_seq: int | None, after_version: int
) -> Filter:
    """The room's activity in a window of ``after_seq`` (see ``MessageStore.activity``), newer than a version."""
    lowest = from_seq if after_seq is None else max(from_seq, after_seq + 1)
    placed: Filter = {"$gte": lowest} if before_seq is None else {"$gte": lowest, "$lt": before_seq}
    return {"room_id": room_id, "room_version": {"$gt": after_version}, "after_seq": placed}


def _literal(value: object) -> dict[str, object]:
    """A constant inside an aggregation expression (a string starting with "$" would otherwise be a field path)."""
    return {"$literal": value}


# Queries (module level, so the tests can explain exactly what the store runs)


def history_window(room_id: uuid.UUID, lower: int, upper: int) -> Filter:
    """Messages with ``lower < seq <= upper``: one bounded range of the (room_id, seq) index, which every server
    answers without sorting the room (history pages are read as such windows)."""
    return {"room_id": room_id, "seq": {"$gt": lower, "$lte": upper}}


SEARCH_SORT: Final[Sort] = [("created_us", DESCENDING), ("seq", DESCENDING)]


def search_queries(
    rooms: Sequence[tuple[uuid.UUID, int]], tokens: Sequence[str], *, before: tuple[datetime, int] | None
) -> list[Filter]:
    """The filters whose union, sorted by ``SEARCH_SORT``, is the search.

    Rooms the caller may read from the start share one ``$in`` query; a room readable only above some seq gets
    its own. With a cursor each of those splits in two, the messages at the cursor's instant with a lower seq
    and those strictly before it, so every filter is a conjunction the (room_id, tokens, created_us, seq) index
    answers exactly.
    """
    lowest: dict[uuid.UUID, int] = {}
    for room_id, min_seq in rooms:
        lowest[room_id] = max(min_seq, lowest.get(room_id, 0))
    common: Filter = {"tokens": {"$all": list(dict.fromkeys(tokens))}, "deleted_us": None}
    whole = [room_id for room_id, min_seq in lowest.items() if min_seq <= 0]
    scopes: list[Filter] = [{"room_id": {"$in": whole}}] if whole else []
    scopes += [{"room_id": room_id, "seq": {"$gt": min_seq}} for room_id, min_seq in lowest.items() if min_seq > 0]
    if before is None:
        return [scope | common for scope in scopes]
    at, seq = to_us(before[0]), before[1]
    queries = []
    for scope in scopes:
        queries.append(scope | common | {"created_us": {"$lt": at}})
        same_instant = dict(scope["seq"]) if "seq" in scope else {}
        queries.append(scope | common | {"created_us": at, "seq": same_instant | {"$lt": seq}})
    return queries


def unread_window(room_id: uuid.UUID, *, after_seq: int, up_to_seq: int | None = None) -> Filter:
    """The room's messages in a seq window: exactly what the (room_id, seq) index answers."""
    seq: Filter = {"$gt": after_seq} if up_to_seq is None else {"$gt": after_seq, "$lte": up_to_seq}
    return {"room_id": room_id, "seq": seq}


def unread_rest(user_id: uuid.UUID) -> Filter:
    """Of a window, the messages that count as unread for ``user_id``: someone else's, not deleted."""
    return {"sender_id": {"$ne": user_id}, "deleted_us": None}


def unread_query(room_id: uuid.UUID, user_id: uuid.UUID, *, after_seq: int, up_to_seq: int | None = None) -> Filter:
    return unread_window(room_id, after_seq=after_seq, up_to_seq=up_to_seq) | unread_rest(user_id)


def count_pipeline(window: Filter, rest: Filter) -> list[Document]:
    """Count the documents of ``window`` that also match ``rest``, reading only the window: the Mongo-wire server
    used in development plans a filter with a field outside an index as a collection scan, and the cost of an
    unread count would grow with every message stored; a first ``$match`` on the index's fields alone is read
    from the index, and the second filters what it yields (MongoDB merges the two and plans them as one)."""
    return [{"$match": window}, {"$match": rest}, {"$count": "n"}]


# Updates


def change_update(change: Change) -> list[Document]:
    """The update pipeline for one change: its effect, version + 1, and its request id remembered."""
    kinds = (change.edit_body is not None) + (change.delete_by is not None) + (change.reaction is not None)
    if kinds > 1:
        raise ValueError("a change is one of an edit, a deletion or a reaction, not several")
    at = to_us(change.at)
    effect: Document
    if change.edit_body is not None:
        written = {"$ifNull": ["$edited_us", "$created_us"]}
        effect = {
            # The body it replaces, with the instant that body was written.
            "edits": {"$concatArrays": ["$edits", [{"body": "$body", "edited_us": written}]]},
            "body": _literal(change.edit_body),
            "tokens": _literal(list(change.edit_tokens)),
            "edited_us": _literal(at),
        }
    elif change.delete_by is not None:
        # Everything that carried content goes, earlier bodies and attachments included; seq and id stay.
        effect = {
            "body": _literal(""),
            "tokens": _literal([]),
            "mentions": _literal([]),
            "mentions_room": _literal(False),
            "attachment_ids": _literal([]),
            "edits": _literal([]),
            "reactions": _literal([]),
            "deleted_us": _literal(at),
            "deleted_by": _literal(change.delete_by),
        }
    elif change.reaction is not None:
        emoji, user_id, action = change.reaction
        effect = {"reactions": _reaction(emoji, user_id, action)}
    else:
        raise ValueError("a change needs an edit, a deletion or a reaction")
    remembered = {"$concatArrays": [{"$ifNull": ["$applied", []]}, [_literal(change.request_id)]]}
    bookkeeping = {"version": {"$add": ["$version", 1]}, "applied": {"$slice": [remembered, -APPLIED_KEPT]}}
    return [{"$set": effect | bookkeeping}]


def _reaction(emoji: str, user_id: uuid.UUID, action: str) -> Document:
    emoji_, user = _literal(emoji), _literal(user_id)
    if action == "add":
        with_user = {"$cond": [{"$in": [user, "$$r.users"]}, "$$r.users", {"$concatArrays": ["$$r.users", [user]]}]}
        return {
            "$cond": [
                {"$in": [emoji_, {"$map": {"input": "$reactions", "as": "r", "in": "$$r.emoji"}}]},
                {
                    "$map": {
                        "input": "$reactions",
                        "as": "r",
                        "in": {
                            "$cond": [
                                {"$eq": ["$$r.emoji", emoji_]},
                                {"emoji": "$$r.emoji", "users": with_user},
                                "$$r",
                            ]
                        },
                    }
                },
                {"$concatArrays": ["$reactions", [{"emoji": emoji_, "users": [user]}]]},
            ]
        }
    if action == "remove":
        without_user = {"$filter": {"input": "$$r.users", "as": "u", "cond": {"$ne": ["$$u", user]}}}
        pruned = {
            "$map": {
                "input": "$reactions",
                "as": "r",
                "in": {
                    "$cond": [
                        {"$eq": ["$$r.emoji", emoji_]},
                        {"emoji": "$$r.emoji", "users": without_user},
                        "$$r",
                    ]
                },
            }
        }
        return {"$filter": {"input": pruned, "as": "r", "cond": {"$gt": [{"$size": "$$r.users"}, 0]}}}
    raise ValueError(f"unknown reaction action {action!r}")


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


INDEXES: Final[dict[str, list[IndexModel]]] = {
    "messages": [
        IndexModel([("room_id", ASCENDING), ("seq", ASCENDING)], name=MESSAGES_BY_SEQ, unique=True),
        IndexModel([("room_id", ASCENDING), ("client_msg_id", ASCENDING)], name=MESSAGES_BY_CLIENT_MSG_ID, unique=True),
        IndexModel([("room_id", ASCENDING), ("reply_to", ASCENDING), ("seq", ASCENDING)], name=MESSAGES_BY_REPLY),
        IndexModel(
            [("room_id", ASCENDING), ("tokens", ASCENDING), ("created_us", DESCENDING), ("seq", DESCENDING)],
            name=MESSAGES_BY_TOKEN,
        ),
    ],
    "members": [
        IndexModel([("room_id", ASCENDING), ("user_id", ASCENDING)], name="room_user"),
        IndexModel([("user_id", ASCENDING), ("room_id", ASCENDING)], name="user_room"),
    ],
    "markers": [IndexModel([("room_id", ASCENDING), ("user_id", ASCENDING)], name="room_user")],
    # Sparse: a user whose username moved to someone else keeps a document without a key.
    "users": [IndexModel([("username_key", ASCENDING)], name="username_key", unique=True, sparse=True)],
    # Equality, sort, range: a room's activity is read in room_version order within a window of after_seq.
    "activity": [
        IndexModel([("room_id", ASCENDING), ("room_version", ASCENDING), ("after_seq", ASCENDING)], name="room_version")
    ],
    "retention": [
        IndexModel([("days", ASCENDING)], name="days", sparse=True),
        IndexModel([("purge_us", ASCENDING)], name="purge_us", sparse=True),
    ],
}
"""Every secondary index, by collection; ``rooms`` and ``heads`` are read by ``_id`` only."""

UNUSED_ON_SECANTUS: Final[dict[str, frozenset[str]]] = {"messages": frozenset({MESSAGES_BY_TOKEN})}
"""Indexes the Mongo-wire server used in development never reads, left out there (see ``ensure_indexes``)."""


HINT_CONCERN: Final = WriteConcern(w=1, j=False)
"""The write concern of the head documents: hints that may be lost (the module's docstring says why)."""


class MongoMessageStore:
    """The messages service's ``MessageStore`` on one MongoDB database (call ``ensure_indexes`` once first)."""

    def __init__(
        self, db: AsyncDatabase[Document], *, writes_per_second: float = 0.0, pace_above: float = 200.0
    ) -> None:
        """``writes_per_second`` and ``pace_above``: pace the inserts of new messages when sends come faster than
        ``pace_above`` a second (``GroupInsert``); 0 writes at once."""
        db = db.with_options(codec_options=_CODEC_OPTIONS)
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
        self._inserts = GroupInsert(self._insert_documents, writes_per_second=writes_per_second, pace_above=pace_above)

    async def ensure_indexes(self) -> None:
        """Create the indexes the queries and the uniqueness rules need; harmless when they exist.

        On the Mongo-wire server used in development (SecantusDB) the search index is left out, and dropped if it
        was made before: that server reads no multikey index for a query (a search reads the room's messages
        through an index on ``room_id`` with or without it), while every word of every message cost the insert
        an index entry (docs/benchmarks.md)."""
        unused = UNUSED_ON_SECANTUS if await self._on_secantus() else {}
        for collection, models in INDEXES.items():
            skipped = unused.get(collection, frozenset())
            await self._db[collection].create_indexes([m for m in models if m.document["name"] not in skipped])
            present = await self._db[collection].index_information()
            for name in skipped & present.keys():
                await self._db[collection].drop_index(name)

    async def _on_secantus(self) -> bool:
        info = await self._db.client.admin.command("buildInfo")
        return "secantusVersion" in info

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
        doc = await self._c.members.find_one({"_id": _pair_id(room_id, user_id)})
        return None if doc is None else _member(doc)

    async def put_member(self, member: Member) -> None:
        doc = {
            "room_id": member.room_id,
            "user_id": member.user_id,
            "role": member.role,
            "joined_after_seq": member.joined_after_seq,
        }
        await self._upsert(self._c.members, _pair_id(member.room_id, member.user_id), {"$set": doc})

    async def remove_member(self, room_id: uuid.UUID, user_id: uuid.UUID) -> None:
        await self._c.members.delete_one({"_id": _pair_id(room_id, user_id)})

    async def memberships(self, user_id: uuid.UUID) -> Sequence[Member]:
        cursor = self._c.members.find({"user_id": user_id}).sort([("user_id", ASCENDING), ("room_id", ASCENDING)])
        return [_member(doc) async for doc in cursor]

    async def members(self, room_id: uuid.UUID) -> Sequence[Member]:
        cursor = self._c.members.find({"room_id": room_id}).sort([("room_id", ASCENDING), ("user_id", ASCENDING)])
        return [_member(doc) async for doc in cursor]

    async def members_of(self, room_id: uuid.UUID, user_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, Member]:
        if not user_ids:
            return {}
        wanted = [_pair_id(room_id, user_id) for user_id in dict.fromkeys(user_ids)]
        cursor = self._c.members.find({"_id": {"$in": wanted}})
        return {doc["user_id"]: _member(doc) async for doc in cursor}

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
        return [_activity(doc) async for doc in cursor]

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
        checked first: the message exists, and that is what the caller must learn (the very same message
        again, after a write whose answer was lost, collides on ``_id`` first)."""
        fields = duplicate_key_fields(failure)
        if "client_msg_id" in fields:
            return "duplicate_client_msg_id"
        if fields & {"seq", "_id"}:
            stored = await self._c.messages.find_one(
                {"room_id": message.room_id, "client_msg_id": message.client_msg_id}, {"_id": 1}
            )
            if stored is not None:
                return "duplicate_client_msg_id"
            if "seq" in fields:
                return "duplicate_seq"
        return None

    async def message(self, room_id: uuid.UUID, message_id: uuid.UUID) -> Message | None:
        doc = await self._c.messages.find_one({"_id": message_id, "room_id": room_id}, _NOT_APPLIED)
        return None if doc is None else _message(doc)

    async def message_by_client_msg_id(self, room_id: uuid.UUID, client_msg_id: str) -> Message | None:
        doc = await self._c.messages.find_one({"room_id": room_id, "client_msg_id": client_msg_id}, _NOT_APPLIED)
        return None if doc is None else _message(doc)

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
            batch = sorted([_message(doc) async for doc in cursor], key=lambda m: m.seq, reverse=newest_first)
            found.extend(batch)
            window *= 2
        return found[:limit]

    async def replies(self, room_id: uuid.UUID, message_id: uuid.UUID, *, limit: int) -> Sequence[Message]:
        if limit <= 0:
            return []
        cursor = (
            self._c.messages.find({"room_id": room_id, "reply_to": message_id}, _NOT_APPLIED)
            .sort([("seq", ASCENDING)])
            .limit(limit)
        )
        return [_message(doc) async for doc in cursor]

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
        return [_message(doc) for doc in found[:limit]]

    # markers

    async def move_marker(self, room_id: uuid.UUID, user_id: uuid.UUID, kind: MarkerKind, seq: int) -> bool:
        if kind not in ("read", "delivered"):
            raise ValueError(f"unknown marker kind {kind!r}")
        if seq <= 0:  # markers start at 0
            return False
        other = "delivered_seq" if kind == "read" else "read_seq"
        update = {"$max": {f"{kind}_seq": seq}, "$setOnInsert": {"room_id": room_id, "user_id": user_id, other: 0}}
        return await self._upsert(self._c.markers, _pair_id(room_id, user_id), update)

    async def markers(self, room_id: uuid.UUID) -> Sequence[Markers]:
        cursor = self._c.markers.find({"room_id": room_id}).sort([("room_id", ASCENDING), ("user_id", ASCENDING)])
        return [_markers(doc) async for doc in cursor]

    async def marker(self, room_id: uuid.UUID, user_id: uuid.UUID) -> Markers:
        doc = await self._c.markers.find_one({"_id": _pair_id(room_id, user_id)})
        return Markers(room_id=room_id, user_id=user_id) if doc is None else _markers(doc)

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
