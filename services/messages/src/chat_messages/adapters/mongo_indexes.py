"""The indexes of the message store's collections, and which index a duplicate-key error names: what
``MongoMessageStore.ensure_indexes`` makes, keeps or drops (mongo_store.py), apart from the store's operations.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

MESSAGES_BY_SEQ: Final = "room_seq"
MESSAGES_BY_CLIENT_MSG_ID: Final = "room_client_msg_id"
MESSAGES_BY_REPLY: Final = "replies"
MESSAGES_BY_REPLY_BEFORE: Final = "room_replies"
MESSAGES_BY_TOKEN: Final = "room_search"  # noqa: S105 (an index name)

_INDEX_NAME = re.compile(r"index: (\S+)")


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


INDEXES: Final[dict[str, list[IndexModel]]] = {
    "messages": [
        IndexModel([("room_id", ASCENDING), ("seq", ASCENDING)], name=MESSAGES_BY_SEQ, unique=True),
        IndexModel([("room_id", ASCENDING), ("client_msg_id", ASCENDING)], name=MESSAGES_BY_CLIENT_MSG_ID, unique=True),
        # Sparse: only a reply has a reply_key (message_document), so a message that answers none has no entry.
        IndexModel([("reply_key", ASCENDING)], name=MESSAGES_BY_REPLY, sparse=True),
        IndexModel(
            [("room_id", ASCENDING), ("reply_to", ASCENDING), ("seq", ASCENDING)], name=MESSAGES_BY_REPLY_BEFORE
        ),
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

KEPT_WHERE_MADE: Final[dict[str, frozenset[str]]] = {
    "messages": frozenset({MESSAGES_BY_CLIENT_MSG_ID, MESSAGES_BY_REPLY_BEFORE})
}
"""Indexes of earlier versions, kept in a database that has them and not made in a new one (see
``ensure_indexes``):

- ``(room_id, client_msg_id)``: a message's id is derived from its room and client_msg_id (``message_id_for``), so
  the unique ``_id`` holds a room to one message per client_msg_id; the index still does for the messages stored
  before ids were derived (decisions/0016).
- ``(room_id, reply_to, seq)``: every message had an entry in it; the sparse ``reply_key`` index has replies only,
  but the replies stored before have no ``reply_key`` (decisions/0017)."""

REPLACES: Final[dict[str, str]] = {MESSAGES_BY_REPLY: MESSAGES_BY_REPLY_BEFORE}
"""Index → the earlier index it replaces: not made in a database that keeps the earlier one."""

UNUSED_ON_SECANTUS: Final[dict[str, frozenset[str]]] = {"messages": frozenset({MESSAGES_BY_TOKEN})}
"""Indexes the Mongo-wire server used in development never reads, left out there (see ``ensure_indexes``)."""
