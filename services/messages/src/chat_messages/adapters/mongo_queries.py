"""The filters and pipelines the message store runs, at module level so the tests can explain exactly what the
store asks of the server (its query plans) without a store around them.

Queries avoid ``$or``/``$nor``/``$expr``: the Mongo-wire server used in development and tests answers those
with a collection scan, and none of them is needed (search splits into a few index-exact queries instead).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final

from pymongo import DESCENDING

from chat_messages.adapters.mongo_documents import Document, to_us

Filter = dict[str, Any]
Sort = list[tuple[str, int]]


def activity_query(
    room_id: uuid.UUID, *, from_seq: int, after_seq: int | None, before_seq: int | None, after_version: int
) -> Filter:
    """The room's activity in a window of ``after_seq`` (see ``MessageStore.activity``), newer than a version."""
    lowest = from_seq if after_seq is None else max(from_seq, after_seq + 1)
    placed: Filter = {"$gte": lowest} if before_seq is None else {"$gte": lowest, "$lt": before_seq}
    return {"room_id": room_id, "room_version": {"$gt": after_version}, "after_seq": placed}


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
