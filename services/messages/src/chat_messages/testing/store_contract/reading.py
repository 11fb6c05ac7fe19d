"""The store contract for reading many messages: history pages, replies to a message and search; apart from the
writes, since each read has its own windows, orders and cursors to check.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from chat_messages.domain.model import Message
from chat_messages.service.ports import MessageStore
from chat_messages.testing.store_contract.builders import (
    T0,
    US,
    a_deletion,
    a_message,
    a_room_of,
    an_edit,
    insert,
    seqs,
)


class ReadingContract:
    """How a ``MessageStore`` pages history, lists replies and searches."""

    # history

    async def test_history_newest_first_without_bounds_is_the_latest_page_highest_first(
        self, store: MessageStore
    ) -> None:
        messages = await a_room_of(store, 10)
        room_id = messages[0].room_id
        assert list(await store.history(room_id, limit=3, newest_first=True)) == messages[9:6:-1]
        assert seqs(await store.history(room_id, limit=50, newest_first=True)) == list(range(10, 0, -1))

    async def test_history_oldest_first_without_bounds_is_the_first_page_lowest_first(
        self, store: MessageStore
    ) -> None:
        messages = await a_room_of(store, 10)
        room_id = messages[0].room_id
        assert list(await store.history(room_id, limit=3, newest_first=False)) == messages[:3]

    async def test_history_before_a_seq_is_the_page_just_below_it(self, store: MessageStore) -> None:
        messages = await a_room_of(store, 10)
        room_id = messages[0].room_id
        assert seqs(await store.history(room_id, before_seq=8, limit=3, newest_first=True)) == [7, 6, 5]
        assert seqs(await store.history(room_id, before_seq=3, limit=3, newest_first=True)) == [2, 1]
        assert seqs(await store.history(room_id, before_seq=1, limit=3, newest_first=True)) == []
        assert seqs(await store.history(room_id, before_seq=8, limit=3, newest_first=False)) == [1, 2, 3]

    async def test_history_after_a_seq_is_the_page_just_above_it(self, store: MessageStore) -> None:
        messages = await a_room_of(store, 10)
        room_id = messages[0].room_id
        assert seqs(await store.history(room_id, after_seq=4, limit=3, newest_first=False)) == [5, 6, 7]
        assert seqs(await store.history(room_id, after_seq=8, limit=3, newest_first=False)) == [9, 10]
        assert seqs(await store.history(room_id, after_seq=10, limit=3, newest_first=False)) == []
        assert seqs(await store.history(room_id, after_seq=4, limit=3, newest_first=True)) == [10, 9, 8]

    async def test_history_between_two_seqs_comes_from_the_end_the_order_names(self, store: MessageStore) -> None:
        messages = await a_room_of(store, 10)
        room_id = messages[0].room_id
        assert seqs(await store.history(room_id, after_seq=2, before_seq=9, limit=3, newest_first=True)) == [8, 7, 6]
        assert seqs(await store.history(room_id, after_seq=2, before_seq=9, limit=3, newest_first=False)) == [3, 4, 5]
        assert seqs(await store.history(room_id, after_seq=2, before_seq=6, limit=10, newest_first=False)) == [
            3,
            4,
            5,
        ]
        assert seqs(await store.history(room_id, after_seq=5, before_seq=6, limit=10, newest_first=True)) == []

    async def test_history_never_reaches_min_seq_or_below(self, store: MessageStore) -> None:
        messages = await a_room_of(store, 10)
        room_id = messages[0].room_id
        assert seqs(await store.history(room_id, min_seq=7, limit=10, newest_first=True)) == [10, 9, 8]
        assert seqs(await store.history(room_id, min_seq=7, limit=10, newest_first=False)) == [8, 9, 10]
        assert seqs(await store.history(room_id, min_seq=3, before_seq=6, limit=10, newest_first=True)) == [5, 4]
        assert seqs(await store.history(room_id, min_seq=6, after_seq=2, limit=2, newest_first=False)) == [7, 8]
        assert seqs(await store.history(room_id, min_seq=2, after_seq=6, limit=2, newest_first=False)) == [7, 8]
        assert seqs(await store.history(room_id, min_seq=10, limit=10, newest_first=True)) == []

    async def test_history_returns_at_most_limit_messages(self, store: MessageStore) -> None:
        messages = await a_room_of(store, 5)
        room_id = messages[0].room_id
        assert seqs(await store.history(room_id, limit=1, newest_first=True)) == [5]
        assert seqs(await store.history(room_id, limit=0, newest_first=True)) == []
        assert seqs(await store.history(room_id, after_seq=1, limit=0, newest_first=False)) == []

    async def test_history_reads_one_room_only(self, store: MessageStore) -> None:
        first = await a_room_of(store, 3)
        second = await a_room_of(store, 2)
        assert list(await store.history(first[0].room_id, limit=10, newest_first=False)) == first
        assert list(await store.history(second[0].room_id, limit=10, newest_first=True)) == second[::-1]
        assert list(await store.history(uuid.uuid4(), limit=10, newest_first=True)) == []

    # replies

    async def test_replies_are_the_messages_answering_one_message_oldest_first(self, store: MessageStore) -> None:
        room_id = uuid.uuid4()
        root, other = a_message(room_id, 1), a_message(room_id, 2)
        replies = [a_message(room_id, seq, reply_to=root.id) for seq in (3, 5, 6, 8)]
        unrelated = [a_message(room_id, 4, reply_to=other.id), a_message(room_id, 7)]
        elsewhere = a_message(uuid.uuid4(), 1, reply_to=root.id)
        await insert(store, root, other, *replies, *unrelated, elsewhere)
        assert list(await store.replies(room_id, root.id, limit=10)) == replies
        assert list(await store.replies(room_id, root.id, limit=2)) == replies[:2]
        assert list(await store.replies(room_id, other.id, limit=10)) == [unrelated[0]]
        assert list(await store.replies(room_id, replies[0].id, limit=10)) == []

    # search

    async def test_search_finds_messages_having_every_token(self, store: MessageStore) -> None:
        room_id = uuid.uuid4()
        both = a_message(room_id, 1, body="deploy the release today")
        one = a_message(room_id, 2, body="the release is late")
        other = a_message(room_id, 3, body="deploy friday")
        also = a_message(room_id, 4, body="release deploy")
        await insert(store, both, one, other, also)
        rooms = [(room_id, 0)]
        found = await store.search(rooms, ["release", "deploy"], limit=10, before=None)
        assert list(found) == [also, both]
        assert list(await store.search(rooms, ["deploy"], limit=10, before=None)) == [also, other, both]
        assert list(await store.search(rooms, ["deploy", "nothing"], limit=10, before=None)) == []

    async def test_search_reads_only_the_given_rooms_above_their_lowest_seq(self, store: MessageStore) -> None:
        general, joined, outside = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        general_hits = [a_message(general, seq, body="lunch plans") for seq in (1, 2)]
        joined_hits = [a_message(joined, seq, body="lunch") for seq in (1, 2, 3, 4)]
        outside_hit = a_message(outside, 1, body="lunch")
        await insert(store, *general_hits, *joined_hits, outside_hit)
        found = await store.search([(general, 0), (joined, 2)], ["lunch"], limit=10, before=None)
        assert list(found) == [joined_hits[3], joined_hits[2], general_hits[1], general_hits[0]]
        assert list(await store.search([], ["lunch"], limit=10, before=None)) == []

    async def test_search_leaves_out_deleted_messages(self, store: MessageStore) -> None:
        room_id = uuid.uuid4()
        kept, doomed = a_message(room_id, 1, body="secret plan"), a_message(room_id, 2, body="secret plan")
        await insert(store, kept, doomed)
        await store.apply_change(room_id, doomed.id, a_deletion(doomed.sender_id))
        assert list(await store.search([(room_id, 0)], ["secret"], limit=10, before=None)) == [kept]

    async def test_search_finds_edited_messages_by_their_new_tokens_only(self, store: MessageStore) -> None:
        room_id = uuid.uuid4()
        message = a_message(room_id, 1, body="old words")
        await insert(store, message)
        await store.apply_change(room_id, message.id, an_edit("new words"))
        assert list(await store.search([(room_id, 0)], ["old"], limit=10, before=None)) == []
        assert seqs(await store.search([(room_id, 0)], ["new", "words"], limit=10, before=None)) == [1]

    async def test_search_is_newest_first_by_time_then_seq_across_rooms(self, store: MessageStore) -> None:
        first, second = uuid.uuid4(), uuid.uuid4()
        noon = T0 + timedelta(hours=12)
        messages = [
            a_message(first, 1, body="ping", at=noon + 3 * US),
            a_message(first, 2, body="ping", at=noon + 3 * US),  # same instant: the higher seq first
            a_message(second, 1, body="ping", at=noon + 2 * US),
            a_message(second, 5, body="ping", at=noon + 4 * US),
            a_message(first, 3, body="ping", at=noon - timedelta(days=1)),
        ]
        await insert(store, *messages)
        found = await store.search([(first, 0), (second, 0)], ["ping"], limit=10, before=None)
        assert list(found) == [messages[3], messages[1], messages[0], messages[2], messages[4]]
        assert list(await store.search([(first, 0), (second, 0)], ["ping"], limit=2, before=None)) == [
            messages[3],
            messages[1],
        ]

    async def test_search_pages_strictly_before_a_cursor(self, store: MessageStore) -> None:
        first, second = uuid.uuid4(), uuid.uuid4()
        noon = T0 + timedelta(hours=12)
        messages = [
            a_message(first, 1, body="ping", at=noon),
            a_message(first, 2, body="ping", at=noon + US),
            a_message(first, 3, body="ping", at=noon + US),
            a_message(second, 7, body="ping", at=noon + 2 * US),
            a_message(second, 8, body="ping", at=noon + 3 * US),
        ]
        await insert(store, *messages)
        rooms = [(first, 0), (second, 0)]
        pages: list[list[Message]] = []
        before: tuple[datetime, int] | None = None
        while True:
            page = list(await store.search(rooms, ["ping"], limit=2, before=before))
            if not page:
                break
            pages.append(page)
            before = (page[-1].created_at, page[-1].seq)
        assert pages == [[messages[4], messages[3]], [messages[2], messages[1]], [messages[0]]]
        assert list(await store.search(rooms, ["ping"], limit=10, before=(noon + US, 3))) == [
            messages[1],
            messages[0],
        ]
        assert list(await store.search(rooms, ["ping"], limit=10, before=(noon, 1))) == []

    async def test_search_pages_respect_each_rooms_lowest_seq(self, store: MessageStore) -> None:
        room_id = uuid.uuid4()
        messages = [a_message(room_id, seq, body="ping") for seq in range(1, 7)]
        await insert(store, *messages)
        rooms = [(room_id, 2)]
        first = await store.search(rooms, ["ping"], limit=2, before=None)
        assert seqs(first) == [6, 5]
        rest = await store.search(rooms, ["ping"], limit=10, before=(first[-1].created_at, first[-1].seq))
        assert seqs(rest) == [4, 3]
