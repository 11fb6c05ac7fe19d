"""How the message store's values are written as MongoDB documents and read back, and how a change becomes an
update pipeline: the representation, apart from the store's operations (mongo_store.py) and the filters they run
(mongo_queries.py), so the shapes are read in one place and a tool (bench/) can write the same documents.

Representation (see also ``MongoMessageStore.ensure_indexes``):

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
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from bson.binary import UuidRepresentation
from bson.codec_options import CodecOptions

from chat_messages.domain.activity import Activity
from chat_messages.domain.model import Change, Edit, Markers, Member, MentionedUser, Message

Document = dict[str, Any]

APPLIED_KEPT: Final = 64
"""How many applied request ids a message remembers."""

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)
CODEC_OPTIONS: Final[CodecOptions[Document]] = CodecOptions(
    document_class=dict, tz_aware=True, tzinfo=UTC, uuid_representation=UuidRepresentation.STANDARD
)
"""How the store reads and writes: UUIDs as standard binary, instants in UTC (the store sets it on its database)."""


def to_us(at: datetime) -> int:
    """Microseconds since the Unix epoch, exactly."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"a timezone-aware datetime is needed, not {at!r}")
    return (at - _EPOCH) // _MICROSECOND


def from_us(us: int) -> datetime:
    return _EPOCH + us * _MICROSECOND


def pair_id(room_id: uuid.UUID, user_id: uuid.UUID) -> str:
    return f"{room_id}:{user_id}"


def message_document(message: Message) -> Document:
    """A message as stored. A reply also has a ``reply_key`` (the message it answers, as in ``reply_to``): the
    sparse replies index has an entry for the documents that have one only (decisions/0017). ``reply_to`` stays on
    every document, null on a message that answers none, as every earlier version reads it."""
    document: Document = {
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
    if message.reply_to is not None:
        document["reply_key"] = message.reply_to
    return document


def message_from(doc: Mapping[str, Any]) -> Message:
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


def member_from(doc: Mapping[str, Any]) -> Member:
    return Member(
        room_id=doc["room_id"], user_id=doc["user_id"], role=doc["role"], joined_after_seq=doc["joined_after_seq"]
    )


def markers_from(doc: Mapping[str, Any]) -> Markers:
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


def activity_from(doc: Mapping[str, Any]) -> Activity:
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


def _literal(value: object) -> dict[str, object]:
    """A constant inside an aggregation expression (a string starting with "$" would otherwise be a field path)."""
    return {"$literal": value}


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
                _users_of(emoji_, with_user),
                {"$concatArrays": ["$reactions", [{"emoji": emoji_, "users": [user]}]]},
            ]
        }
    if action == "remove":
        without_user = {"$filter": {"input": "$$r.users", "as": "u", "cond": {"$ne": ["$$u", user]}}}
        pruned = _users_of(emoji_, without_user)
        return {"$filter": {"input": pruned, "as": "r", "cond": {"$gt": [{"$size": "$$r.users"}, 0]}}}
    raise ValueError(f"unknown reaction action {action!r}")


def _users_of(emoji: Document, users: Document) -> Document:
    """The reactions with ``emoji``'s users replaced by ``users``, an expression over that reaction (``$$r``)."""
    return {
        "$map": {
            "input": "$reactions",
            "as": "r",
            "in": {"$cond": [{"$eq": ["$$r.emoji", emoji]}, {"emoji": "$$r.emoji", "users": users}, "$$r"]},
        }
    }
