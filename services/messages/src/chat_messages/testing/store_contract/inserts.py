"""The store contract for inserting messages and reading one back: the uniqueness rules (seq, client_msg_id) and
what an insert answers; apart from changes and reads of many, which assume these hold.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta

import pytest

from chat_messages.domain.model import Edit, Member, MentionedUser
from chat_messages.service.ports import InsertOutcome, MessageStore
from chat_messages.testing.store_contract.builders import T0, a_message, ids, insert


class InsertsContract:
    """How a ``MessageStore`` inserts messages and reads one back."""

    async def test_last_seq_is_zero_for_an_empty_room_then_the_highest_stored(self, store: MessageStore) -> None:
        room_id, other = uuid.uuid4(), uuid.uuid4()
        assert await store.last_seq(room_id) == 0
        await insert(store, a_message(room_id, 1))
        assert await store.last_seq(room_id) == 1
        await insert(store, a_message(room_id, 2), a_message(room_id, 3))
        assert await store.last_seq(room_id) == 3
        assert await store.last_seq(other) == 0

    async def test_an_inserted_message_reads_back_whole_by_id_and_by_client_msg_id(self, store: MessageStore) -> None:
        room_id, parent_id = uuid.uuid4(), uuid.uuid4()
        alice, bob = ids(2)
        message = replace(
            a_message(room_id, 7, body="Hi @alice see $x.y", sender_id=bob, reply_to=parent_id),
            created_at=T0 + timedelta(days=3, microseconds=123457),
            attachment_ids=(uuid.uuid4(), uuid.uuid4()),
            mentions=(MentionedUser(alice, "alice"),),
            mentions_room=True,
        )
        assert await store.insert_message(message) == "inserted"
        assert await store.message(room_id, message.id) == message
        assert await store.message_by_client_msg_id(room_id, message.client_msg_id) == message
        assert await store.message(uuid.uuid4(), message.id) is None
        assert await store.message(room_id, uuid.uuid4()) is None
        assert await store.message_by_client_msg_id(room_id, "unknown") is None
        assert await store.message_by_client_msg_id(uuid.uuid4(), message.client_msg_id) is None

    async def test_a_message_with_history_reads_back_whole(self, store: MessageStore) -> None:
        # What a store holds after edits, a deletion and reactions can be inserted as is (imports, fixtures).
        room_id = uuid.uuid4()
        alice, bob = ids(2)
        edited = replace(
            a_message(room_id, 1, body="second"),
            version=4,
            edited_at=T0 + timedelta(minutes=5, microseconds=1),
            edits=(Edit("first", T0 + timedelta(minutes=5, microseconds=1)),),
            reactions={"👍": (bob, alice), ":party.parrot:": (alice,)},
        )
        deleted = replace(
            a_message(room_id, 2, body="", tokens=()),
            version=2,
            deleted_at=T0 + timedelta(hours=1, microseconds=999999),
            deleted_by=alice,
        )
        await insert(store, edited, deleted)
        assert await store.message(room_id, edited.id) == edited
        assert await store.message(room_id, deleted.id) == deleted

    async def test_a_second_message_with_a_stored_client_msg_id_is_refused_and_changes_nothing(
        self, store: MessageStore
    ) -> None:
        room_id = uuid.uuid4()
        original = a_message(room_id, 1, client_msg_id="abc")
        await insert(store, original)
        again = a_message(room_id, 2, body="different", client_msg_id="abc")
        assert await store.insert_message(again) == "duplicate_client_msg_id"
        assert await store.message_by_client_msg_id(room_id, "abc") == original
        assert await store.message(room_id, again.id) == original  # the same id: its client_msg_id derives it
        assert await store.last_seq(room_id) == 1

    async def test_a_second_message_with_a_stored_seq_is_a_duplicate_seq(self, store: MessageStore) -> None:
        room_id = uuid.uuid4()
        original = a_message(room_id, 1)
        await insert(store, original)
        rival = a_message(room_id, 1, body="rival")
        assert await store.insert_message(rival) == "duplicate_seq"
        assert await store.message(room_id, rival.id) is None
        assert list(await store.history(room_id, limit=10, newest_first=False)) == [original]
        assert await store.insert_message(replace(rival, seq=2)) == "inserted"

    async def test_a_repeated_client_msg_id_is_reported_even_when_the_seq_is_taken_too(
        self, store: MessageStore
    ) -> None:
        room_id = uuid.uuid4()
        original = a_message(room_id, 1, client_msg_id="abc")
        await insert(store, original)
        assert await store.insert_message(replace(original, body="again")) == "duplicate_client_msg_id"
        assert await store.insert_message(original) == "duplicate_client_msg_id"
        assert list(await store.history(room_id, limit=10, newest_first=False)) == [original]

    async def test_a_message_whose_id_its_client_msg_id_does_not_derive_is_not_stored(
        self, store: MessageStore
    ) -> None:
        # The unique message id is the (room, client_msg_id) rule: a store may rely on it (a MongoDB database made
        # since ids were derived has no client_msg_id index).
        room_id = uuid.uuid4()
        stored = a_message(room_id, 1, client_msg_id="abc")
        await insert(store, stored)
        moved = replace(a_message(room_id, 3), room_id=uuid.uuid4())
        for wrong in (
            replace(stored, id=uuid.uuid4(), seq=2),
            moved,
            replace(a_message(room_id, 2), client_msg_id="x"),
        ):
            with pytest.raises(ValueError, match="derives"):
                await store.insert_messages([a_message(room_id, 2), wrong])
        assert [m.seq for m in await store.history(room_id, limit=10, newest_first=False)] == [1]
        assert await store.last_seq(moved.room_id) == 0

    async def test_an_ordered_insert_stores_every_message_in_one_call(self, store: MessageStore) -> None:
        room_id, other = uuid.uuid4(), uuid.uuid4()
        batch = [a_message(room_id, 1), a_message(other, 1), a_message(room_id, 2)]
        assert await store.insert_messages(batch) == InsertOutcome(inserted=3)
        assert [m.seq for m in await store.history(room_id, limit=10, newest_first=False)] == [1, 2]
        assert await store.last_seq(other) == 1
        assert await store.insert_messages([]) == InsertOutcome(inserted=0)

    async def test_an_ordered_insert_stops_at_a_stored_client_msg_id(self, store: MessageStore) -> None:
        room_id = uuid.uuid4()
        await insert(store, a_message(room_id, 1, client_msg_id="abc"))
        batch = [a_message(room_id, 2), a_message(room_id, 3, client_msg_id="abc"), a_message(room_id, 4)]
        assert await store.insert_messages(batch) == InsertOutcome(inserted=1, refused="duplicate_client_msg_id")
        assert [m.seq for m in await store.history(room_id, limit=10, newest_first=False)] == [1, 2]

    async def test_an_ordered_insert_stops_at_a_taken_seq(self, store: MessageStore) -> None:
        room_id = uuid.uuid4()
        await insert(store, a_message(room_id, 2))
        batch = [a_message(room_id, 1), a_message(room_id, 2), a_message(room_id, 3)]
        assert await store.insert_messages(batch) == InsertOutcome(inserted=1, refused="duplicate_seq")
        assert [m.seq for m in await store.history(room_id, limit=10, newest_first=False)] == [1, 2]

    async def test_last_seq_counts_messages_stored_above_a_head_that_is_behind(self, store: MessageStore) -> None:
        room_id = uuid.uuid4()
        await insert(store, a_message(room_id, 1))
        await store.advance_heads({room_id: 1})
        await store.insert_messages([a_message(room_id, seq) for seq in range(2, 2_101)])
        assert await store.last_seq(room_id) == 2_100
        await store.advance_heads({room_id: 7})  # never lowers it
        assert await store.last_seq(room_id) == 2_100
        await store.advance_heads({room_id: 2_100, uuid.uuid4(): 3})
        assert await store.last_seq(room_id) == 2_100

    async def test_members_of_finds_the_members_among_the_users_asked_about(self, store: MessageStore) -> None:
        room_id = uuid.uuid4()
        ada, bob, eve = ids(3)
        await store.put_member(Member(room_id=room_id, user_id=ada, role="owner"))
        await store.put_member(Member(room_id=room_id, user_id=bob, role="member", joined_after_seq=4))
        await store.put_member(Member(room_id=uuid.uuid4(), user_id=eve, role="member"))
        found = await store.members_of(room_id, [ada, bob, eve, bob])
        assert found == {
            ada: Member(room_id=room_id, user_id=ada, role="owner"),
            bob: Member(room_id=room_id, user_id=bob, role="member", joined_after_seq=4),
        }
        assert await store.members_of(room_id, []) == {}

    async def test_seq_and_client_msg_id_are_unique_per_room_only(self, store: MessageStore) -> None:
        first, second = uuid.uuid4(), uuid.uuid4()
        await insert(store, a_message(first, 1, client_msg_id="abc"), a_message(second, 1, client_msg_id="abc"))
        assert await store.last_seq(first) == await store.last_seq(second) == 1
