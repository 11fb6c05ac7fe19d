"""The store contract for read and delivered markers and the unread counts measured from them; apart from
the messages, since markers move per user and only ever forward.
"""

from __future__ import annotations

import uuid
from dataclasses import replace

from chat_messages.domain.model import Markers, MentionedUser
from chat_messages.service.ports import MessageStore
from chat_messages.testing.store_contract.builders import a_deletion, a_message, ids, insert


class MarkersContract:
    """How a ``MessageStore`` moves markers and counts unread messages and mentions."""

    async def test_markers_start_at_zero(self, store: MessageStore) -> None:
        room_id, user_id = uuid.uuid4(), uuid.uuid4()
        assert await store.marker(room_id, user_id) == Markers(room_id, user_id, read_seq=0, delivered_seq=0)
        assert list(await store.markers(room_id)) == []

    async def test_markers_only_move_forward_and_say_when_they_moved(self, store: MessageStore) -> None:
        room_id, user_id = uuid.uuid4(), uuid.uuid4()
        assert await store.move_marker(room_id, user_id, "read", 5) is True
        assert await store.move_marker(room_id, user_id, "read", 5) is False
        assert await store.move_marker(room_id, user_id, "read", 3) is False
        assert await store.marker(room_id, user_id) == Markers(room_id, user_id, read_seq=5)
        assert await store.move_marker(room_id, user_id, "read", 9) is True
        assert await store.marker(room_id, user_id) == Markers(room_id, user_id, read_seq=9)
        assert await store.move_marker(room_id, user_id, "delivered", 0) is False

    async def test_read_and_delivered_markers_move_independently(self, store: MessageStore) -> None:
        room_id, user_id = uuid.uuid4(), uuid.uuid4()
        assert await store.move_marker(room_id, user_id, "delivered", 8)
        assert await store.move_marker(room_id, user_id, "read", 4)
        assert await store.move_marker(room_id, user_id, "delivered", 6) is False
        assert await store.marker(room_id, user_id) == Markers(room_id, user_id, read_seq=4, delivered_seq=8)

    async def test_markers_lists_the_markers_of_one_room(self, store: MessageStore) -> None:
        room_id, other = uuid.uuid4(), uuid.uuid4()
        alice, bob = ids(2)
        await store.move_marker(room_id, alice, "read", 3)
        await store.move_marker(room_id, bob, "delivered", 4)
        await store.move_marker(other, alice, "read", 9)
        assert set(await store.markers(room_id)) == {
            Markers(room_id, alice, read_seq=3),
            Markers(room_id, bob, delivered_seq=4),
        }
        assert list(await store.markers(other)) == [Markers(other, alice, read_seq=9)]

    async def test_unread_counts_others_undeleted_messages_above_a_seq(self, store: MessageStore) -> None:
        room_id = uuid.uuid4()
        me, them = ids(2)
        senders = [them, me, them, them, me, them, them]
        messages = [a_message(room_id, seq, sender_id=sender) for seq, sender in enumerate(senders, start=1)]
        await insert(store, *messages, a_message(uuid.uuid4(), 9, sender_id=them))
        await store.apply_change(room_id, messages[5].id, a_deletion(them))  # seq 6
        assert await store.count_unread(room_id, me, after_seq=0) == 4  # 1, 3, 4, 7
        assert await store.count_unread(room_id, me, after_seq=3) == 2  # 4, 7
        assert await store.count_unread(room_id, me, after_seq=7) == 0
        assert await store.count_unread(room_id, me, after_seq=0, up_to_seq=4) == 3  # 1, 3, 4: not 7
        assert await store.count_unread(room_id, them, after_seq=0) == 2  # 2, 5
        assert await store.count_unread(uuid.uuid4(), me, after_seq=0) == 0

    async def test_unread_mentions_count_others_undeleted_messages_naming_me_or_the_room(
        self, store: MessageStore
    ) -> None:
        room_id = uuid.uuid4()
        me, them = ids(2)
        named = (MentionedUser(user_id=me, username="me"),)
        other = (MentionedUser(user_id=them, username="them"),)
        shapes = [  # (sender, mentions, whole room)
            (them, named, False),  # 1 counts
            (them, (), True),  # 2 counts
            (them, named, True),  # 3 counts once
            (them, other, False),  # 4 not me
            (me, named, True),  # 5 mine
            (them, named, False),  # 6 deleted below
            (them, (), False),  # 7 no mention
            (them, named, False),  # 8 counts
        ]
        messages = [
            replace(a_message(room_id, seq, sender_id=sender), mentions=mentions, mentions_room=room)
            for seq, (sender, mentions, room) in enumerate(shapes, start=1)
        ]
        await insert(store, *messages)
        await store.apply_change(room_id, messages[5].id, a_deletion(them))
        assert await store.count_unread_mentions(room_id, me, after_seq=0) == 4  # 1, 2, 3, 8
        assert await store.count_unread_mentions(room_id, me, after_seq=3) == 1  # 8
        assert await store.count_unread_mentions(room_id, me, after_seq=0, up_to_seq=7) == 3  # 1, 2, 3: not 8
        assert await store.count_unread_mentions(room_id, them, after_seq=0) == 1  # 5, which mentions the whole room
        assert await store.count_unread_mentions(uuid.uuid4(), me, after_seq=0) == 0
