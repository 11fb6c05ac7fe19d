"""The store contract for changes to a stored message (edits, deletions, reactions): applied once per request id,
in order, never bringing deleted content back; the largest area of the port, so a module of its own.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta

from chat_messages.domain.model import Edit, MentionedUser
from chat_messages.service.ports import MessageStore
from chat_messages.testing.store_contract.builders import (
    SECOND,
    T0,
    a_deletion,
    a_message,
    a_reaction,
    a_room_of,
    an_edit,
    ids,
    insert,
)


class ChangesContract:
    """How a ``MessageStore`` applies edits, deletions and reactions."""

    async def test_an_edit_replaces_body_and_tokens_keeps_the_old_body_and_raises_the_version(
        self, store: MessageStore
    ) -> None:
        original = a_message(uuid.uuid4(), 1, body="helo world")
        await insert(store, original)
        at = T0 + timedelta(hours=1, microseconds=42)
        result = await store.apply_change(original.room_id, original.id, an_edit("hello world", at=at))
        expected = replace(
            original,
            body="hello world",
            tokens=("hello", "world"),
            edited_at=at,
            edits=(Edit("helo world", original.created_at),),
            version=2,
        )
        assert result == (expected, True)
        assert await store.message(original.room_id, original.id) == expected

    async def test_edits_are_kept_oldest_first(self, store: MessageStore) -> None:
        original = a_message(uuid.uuid4(), 1, body="one")
        await insert(store, original)
        first, second = T0 + SECOND * 10, T0 + SECOND * 20
        await store.apply_change(original.room_id, original.id, an_edit("two", at=first))
        result = await store.apply_change(original.room_id, original.id, an_edit("three", at=second))
        assert result is not None
        message, applied = result
        assert applied
        assert (message.body, message.tokens, message.edited_at, message.version) == ("three", ("three",), second, 3)
        # Each earlier body with the instant it was written.
        assert message.edits == (Edit("one", original.created_at), Edit("two", first))

    async def test_a_change_is_applied_once_per_request_id(self, store: MessageStore) -> None:
        original = a_message(uuid.uuid4(), 1, body="one")
        await insert(store, original)
        edit = an_edit("two", request_id="req-1")
        applied = await store.apply_change(original.room_id, original.id, edit)
        assert applied is not None
        assert applied[1] is True

        again = await store.apply_change(original.room_id, original.id, replace(edit, edit_body="three"))
        assert again == (applied[0], False)
        assert await store.message(original.room_id, original.id) == applied[0]
        assert applied[0].version == 2

    async def test_a_request_id_is_remembered_per_message(self, store: MessageStore) -> None:
        first, second = await a_room_of(store, 2)
        for message, body in ((first, "x"), (second, "y")):
            result = await store.apply_change(message.room_id, message.id, an_edit(body, request_id="req"))
            assert result is not None
            assert (result[0].body, result[1]) == (body, True)

    async def test_the_last_64_request_ids_are_remembered(self, store: MessageStore) -> None:
        (message,) = await a_room_of(store, 1)
        await store.apply_change(message.room_id, message.id, an_edit("first", request_id="req-0"))
        for n in range(1, 64):
            await store.apply_change(message.room_id, message.id, an_edit(f"body {n}", request_id=f"req-{n}"))
        for n in (0, 31, 63):
            result = await store.apply_change(message.room_id, message.id, an_edit("late", request_id=f"req-{n}"))
            assert result is not None
            assert result[1] is False
            assert (result[0].body, result[0].version) == ("body 63", 65)

    async def test_edits_and_reactions_never_bring_a_deleted_message_back(self, store: MessageStore) -> None:
        room_id = uuid.uuid4()
        alice, bob = ids(2)
        (message,) = await a_room_of(store, 1, room_id=room_id)
        await store.apply_change(room_id, message.id, an_edit("first draft"))
        deleted = await store.apply_change(room_id, message.id, a_deletion(alice))
        assert deleted is not None
        assert deleted[0].edits == ()
        for late in (an_edit("resurrected"), a_reaction("👍", bob)):
            result = await store.apply_change(room_id, message.id, late)
            assert result is not None
            after, applied = result
            assert not applied
            assert (after.body, after.reactions, after.version) == ("", {}, deleted[0].version)

    async def test_a_deletion_empties_the_message_and_keeps_its_place(self, store: MessageStore) -> None:
        room_id = uuid.uuid4()
        alice, bob = ids(2)
        before, doomed, after = [a_message(room_id, seq, body=f"secret {seq}") for seq in (1, 2, 3)]
        doomed = replace(doomed, mentions=(MentionedUser(alice, "alice"),))
        await insert(store, before, doomed, after)
        await store.apply_change(room_id, doomed.id, a_reaction("👍", bob))
        at = T0 + timedelta(hours=2, microseconds=5)
        result = await store.apply_change(room_id, doomed.id, a_deletion(alice, at=at))
        assert result is not None
        message, applied = result
        assert applied
        assert message.deleted
        assert (message.deleted_at, message.deleted_by) == (at, alice)
        assert (message.body, message.tokens, message.mentions, message.reactions) == ("", (), (), {})
        assert message.counts() == {}
        assert (message.id, message.seq, message.sender_id, message.client_msg_id, message.created_at) == (
            doomed.id,
            doomed.seq,
            doomed.sender_id,
            doomed.client_msg_id,
            doomed.created_at,
        )
        assert message.version == 3
        assert await store.message(room_id, doomed.id) == message
        assert list(await store.history(room_id, limit=10, newest_first=False)) == [before, message, after]
        assert await store.last_seq(room_id) == 3

    async def test_reactions_list_each_emojis_users_in_the_order_they_reacted(self, store: MessageStore) -> None:
        (message,) = await a_room_of(store, 1)
        alice, bob, carol = ids(3)
        room_id = message.room_id
        for emoji, user_id in (("👍", carol), ("🎉", alice), ("👍", alice), ("👍", bob)):
            result = await store.apply_change(room_id, message.id, a_reaction(emoji, user_id))
            assert result is not None
            assert result[1] is True
        stored = await store.message(room_id, message.id)
        assert stored is not None
        assert stored.reactions == {"👍": (carol, alice, bob), "🎉": (alice,)}
        assert stored.counts() == {"👍": 3, "🎉": 1}
        assert stored.version == 5

        result = await store.apply_change(room_id, message.id, a_reaction("👍", alice, "remove"))
        assert result is not None
        updated, applied = result
        assert applied
        assert updated.reactions == {"👍": (carol, bob), "🎉": (alice,)}
        assert updated.version == 6
        assert await store.message(room_id, message.id) == updated

    async def test_a_user_is_listed_once_however_often_they_add_a_reaction(self, store: MessageStore) -> None:
        (message,) = await a_room_of(store, 1)
        alice, bob = ids(2)
        for user_id in (alice, bob, alice):
            await store.apply_change(message.room_id, message.id, a_reaction("👍", user_id))
        stored = await store.message(message.room_id, message.id)
        assert stored is not None
        assert stored.reactions == {"👍": (alice, bob)}
        assert stored.counts() == {"👍": 2}

    async def test_an_emoji_whose_last_user_leaves_is_not_counted(self, store: MessageStore) -> None:
        (message,) = await a_room_of(store, 1)
        alice, bob = ids(2)
        await store.apply_change(message.room_id, message.id, a_reaction("🎉", alice))
        await store.apply_change(message.room_id, message.id, a_reaction("👍", bob))
        result = await store.apply_change(message.room_id, message.id, a_reaction("🎉", alice, "remove"))
        assert result is not None
        assert result[0].counts() == {"👍": 1}
        assert {emoji: users for emoji, users in result[0].reactions.items() if users} == {"👍": (bob,)}

    async def test_removing_a_reaction_nobody_made_changes_no_reactions(self, store: MessageStore) -> None:
        (message,) = await a_room_of(store, 1)
        alice, bob = ids(2)
        await store.apply_change(message.room_id, message.id, a_reaction("👍", alice))
        await store.apply_change(message.room_id, message.id, a_reaction("👍", bob, "remove"))
        await store.apply_change(message.room_id, message.id, a_reaction("🎉", bob, "remove"))
        stored = await store.message(message.room_id, message.id)
        assert stored is not None
        assert stored.counts() == {"👍": 1}
        assert stored.reactions["👍"] == (alice,)

    async def test_emoji_are_kept_as_given(self, store: MessageStore) -> None:
        (message,) = await a_room_of(store, 1)
        alice = uuid.uuid4()
        odd = ["$set", "a.b", ":thumbs.up:", "$", "👍🏽", "\u00e9", "e\u0301"]
        for emoji in odd:
            await store.apply_change(message.room_id, message.id, a_reaction(emoji, alice))
        stored = await store.message(message.room_id, message.id)
        assert stored is not None
        assert stored.reactions == dict.fromkeys(odd, (alice,))

    async def test_a_reaction_applied_once_per_request_id(self, store: MessageStore) -> None:
        (message,) = await a_room_of(store, 1)
        alice = uuid.uuid4()
        add = a_reaction("👍", alice, request_id="r1")
        await store.apply_change(message.room_id, message.id, add)
        await store.apply_change(message.room_id, message.id, a_reaction("👍", alice, "remove", request_id="r2"))
        result = await store.apply_change(message.room_id, message.id, add)
        assert result is not None
        assert result[1] is False
        assert (result[0].counts(), result[0].version) == ({}, 3)

    async def test_every_applied_change_raises_the_version_by_one(self, store: MessageStore) -> None:
        (message,) = await a_room_of(store, 1)
        alice = uuid.uuid4()
        changes = [an_edit("two"), a_reaction("👍", alice), a_reaction("👍", alice, "remove"), a_deletion(alice)]
        for expected, change in enumerate(changes, start=2):
            result = await store.apply_change(message.room_id, message.id, change)
            assert result is not None
            assert (result[0].version, result[1]) == (expected, True)

    async def test_a_change_to_an_unknown_message_is_none(self, store: MessageStore) -> None:
        (message,) = await a_room_of(store, 1)
        assert await store.apply_change(message.room_id, uuid.uuid4(), an_edit("x")) is None
        assert await store.apply_change(uuid.uuid4(), message.id, an_edit("x")) is None
        assert await store.message(message.room_id, message.id) == message
