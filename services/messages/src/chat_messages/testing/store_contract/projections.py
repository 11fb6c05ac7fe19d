"""The store contract for what the messages service keeps of other services' data: the rooms projection, the members,
the room's activity (the timeline's room events) and the users projection; apart from the messages themselves, since
they are written from room and user events, not by sends.
"""

from __future__ import annotations

import uuid
from dataclasses import replace

from chat_messages.domain.model import Markers, Member, RoomState
from chat_messages.service.ports import MessageStore
from chat_messages.testing.store_contract.builders import SECOND, T0, US, a_room_of, an_activity, ids, versions


class ProjectionsContract:
    """What a ``MessageStore`` keeps of rooms, members, room activity and usernames."""

    # the rooms projection

    async def test_an_unknown_room_is_none(self, store: MessageStore) -> None:
        assert await store.room(uuid.uuid4()) is None

    async def test_a_room_state_is_stored_when_none_is_and_read_back(self, store: MessageStore) -> None:
        state = RoomState(room_id=uuid.uuid4(), version=3, kind="private", archived=True, history="joined")
        assert await store.apply_room(state) is True
        assert await store.room(state.room_id) == state
        named = replace(state, version=4, name="lounge", name_known=True)
        assert await store.apply_room(named) is True
        assert await store.room(state.room_id) == named

    async def test_a_room_state_replaces_the_stored_one_only_when_its_version_is_newer(
        self, store: MessageStore
    ) -> None:
        room_id = uuid.uuid4()
        v5 = RoomState(room_id=room_id, version=5, kind="public")
        assert await store.apply_room(v5) is True
        assert await store.apply_room(replace(v5, version=4, kind="private")) is False
        assert await store.apply_room(replace(v5, archived=True)) is False
        assert await store.room(room_id) == v5

        v6 = replace(v5, version=6, archived=True, history="joined", deleted=True)
        assert await store.apply_room(v6) is True
        assert await store.room(room_id) == v6
        assert await store.apply_room(replace(v5, version=1)) is False
        assert await store.room(room_id) == v6

    async def test_room_states_are_kept_per_room(self, store: MessageStore) -> None:
        first, second = RoomState(room_id=uuid.uuid4(), version=2), RoomState(room_id=uuid.uuid4(), version=1)
        assert await store.apply_room(first)
        assert await store.apply_room(second)
        assert await store.room(first.room_id) == first
        assert await store.room(second.room_id) == second

    # members

    async def test_a_member_is_put_read_back_and_replaced(self, store: MessageStore) -> None:
        room_id, user_id = uuid.uuid4(), uuid.uuid4()
        assert await store.member(room_id, user_id) is None
        member = Member(room_id=room_id, user_id=user_id, role="member", joined_after_seq=12)
        await store.put_member(member)
        assert await store.member(room_id, user_id) == member

        promoted = replace(member, role="admin", joined_after_seq=0)
        await store.put_member(promoted)
        assert await store.member(room_id, user_id) == promoted
        assert list(await store.members(room_id)) == [promoted]

    async def test_members_and_memberships_list_what_was_put(self, store: MessageStore) -> None:
        general, random = uuid.uuid4(), uuid.uuid4()
        alice, bob, carol = ids(3)
        puts = [
            Member(general, alice, "owner"),
            Member(general, bob, "member", joined_after_seq=4),
            Member(random, alice, "member"),
            Member(random, carol, "admin"),
        ]
        for member in puts:
            await store.put_member(member)
        assert set(await store.members(general)) == {puts[0], puts[1]}
        assert set(await store.members(random)) == {puts[2], puts[3]}
        assert set(await store.memberships(alice)) == {puts[0], puts[2]}
        assert set(await store.memberships(bob)) == {puts[1]}
        assert list(await store.memberships(uuid.uuid4())) == []
        assert list(await store.members(uuid.uuid4())) == []

    async def test_removing_a_member_removes_only_that_membership(self, store: MessageStore) -> None:
        general, random = uuid.uuid4(), uuid.uuid4()
        alice, bob = ids(2)
        for room_id in (general, random):
            for user_id in (alice, bob):
                await store.put_member(Member(room_id, user_id, "member"))
        await store.remove_member(general, alice)
        assert await store.member(general, alice) is None
        assert set(await store.members(general)) == {Member(general, bob, "member")}
        assert set(await store.memberships(alice)) == {Member(random, alice, "member")}
        await store.remove_member(general, alice)  # removing again is harmless
        await store.remove_member(uuid.uuid4(), uuid.uuid4())

    async def test_dropping_a_room_removes_its_messages_members_and_markers_and_nothing_else(
        self, store: MessageStore
    ) -> None:
        doomed, kept = uuid.uuid4(), uuid.uuid4()
        alice, bob = ids(2)
        state = RoomState(room_id=doomed, version=1)
        await store.apply_room(state)
        kept_messages = []
        for room_id in (doomed, kept):
            messages = await a_room_of(store, 3, room_id=room_id)
            await store.put_member(Member(room_id, alice, "owner"))
            await store.put_member(Member(room_id, bob, "member"))
            assert await store.move_marker(room_id, bob, "read", 2)
            if room_id == kept:
                kept_messages = messages

        await store.drop_room(doomed)

        assert await store.last_seq(doomed) == 0
        assert list(await store.history(doomed, limit=10, newest_first=True)) == []
        assert list(await store.members(doomed)) == []
        assert await store.member(doomed, alice) is None
        assert list(await store.markers(doomed)) == []
        assert await store.marker(doomed, bob) == Markers(doomed, bob)
        assert await store.room(doomed) == state  # the caller marks it deleted

        assert list(await store.history(kept, limit=10, newest_first=False)) == kept_messages
        assert set(await store.members(kept)) == {Member(kept, alice, "owner"), Member(kept, bob, "member")}
        assert set(await store.memberships(alice)) == {Member(kept, alice, "owner")}
        assert await store.marker(kept, bob) == Markers(kept, bob, read_seq=2)
        await store.drop_room(doomed)  # dropping again is harmless

    async def test_dropping_a_room_removes_its_activity_and_nothing_else(self, store: MessageStore) -> None:
        doomed, kept = ids(2)
        await store.put_activity(an_activity(doomed, 2, 0))
        await store.put_activity(an_activity(kept, 2, 0))
        await store.drop_room(doomed)
        assert list(await store.activity(doomed, limit=10)) == []
        assert versions(await store.activity(kept, limit=10)) == [2]

    # the room's activity

    async def test_activity_reads_back_whole_in_room_version_order(self, store: MessageStore) -> None:
        room_id = uuid.uuid4()
        renamed = an_activity(room_id, 7, 4, kind="renamed", name="lounge")
        joined, kicked = an_activity(room_id, 2, 0), an_activity(room_id, 5, 3, kind="kicked")
        unnamed = an_activity(room_id, 9, 4, kind="renamed", at=T0 + 9 * SECOND + 7 * US)
        for activity in (renamed, unnamed, joined, kicked):
            await store.put_activity(activity)
        assert list(await store.activity(room_id, limit=10)) == [joined, kicked, renamed, unnamed]

    async def test_activity_is_stored_once_per_room_version_and_the_first_stays(self, store: MessageStore) -> None:
        room_id, other = ids(2)
        first = an_activity(room_id, 3, 1)
        await store.put_activity(first)
        await store.put_activity(replace(first, after_seq=5, kind="left"))  # the event again, after more messages
        await store.put_activity(an_activity(other, 3, 0))  # versions are per room
        assert list(await store.activity(room_id, limit=10)) == [first]
        assert versions(await store.activity(other, limit=10)) == [3]

    async def test_activity_is_read_in_a_window_of_after_seq(self, store: MessageStore) -> None:
        room_id = uuid.uuid4()
        for version, after_seq in ((2, 0), (3, 0), (4, 2), (5, 5), (6, 5), (7, 9)):
            await store.put_activity(an_activity(room_id, version, after_seq))
        assert versions(await store.activity(room_id, after_seq=2, limit=10)) == [5, 6, 7]
        assert versions(await store.activity(room_id, before_seq=5, limit=10)) == [2, 3, 4]
        assert versions(await store.activity(room_id, after_seq=0, before_seq=9, limit=10)) == [4, 5, 6]
        assert versions(await store.activity(room_id, from_seq=2, limit=10)) == [4, 5, 6, 7]
        assert versions(await store.activity(room_id, from_seq=5, after_seq=0, limit=10)) == [5, 6, 7]

    async def test_activity_pages_by_room_version(self, store: MessageStore) -> None:
        room_id = uuid.uuid4()
        for version in range(2, 9):
            await store.put_activity(an_activity(room_id, version, 0))
        assert versions(await store.activity(room_id, limit=3)) == [2, 3, 4]
        assert versions(await store.activity(room_id, after_version=4, limit=3)) == [5, 6, 7]
        assert versions(await store.activity(room_id, after_version=7, limit=3)) == [8]
        assert list(await store.activity(room_id, limit=0)) == []
        assert list(await store.activity(uuid.uuid4(), limit=3)) == []

    # the users projection

    async def test_users_are_found_by_username_whatever_the_case(self, store: MessageStore) -> None:
        alice, bob, strasse = ids(3)
        await store.put_user(alice, "Alice")
        await store.put_user(bob, "bob")
        await store.put_user(strasse, "Straße")
        assert await store.users_by_username(["alice", "BOB", "STRASSE", "nobody"]) == {
            "alice": alice,
            "bob": bob,
            "strasse": strasse,
        }
        assert await store.users_by_username(["ALICE", "Alice"]) == {"alice": alice}
        assert await store.users_by_username([]) == {}

    async def test_a_renamed_user_is_found_by_the_new_name_only(self, store: MessageStore) -> None:
        alice = uuid.uuid4()
        await store.put_user(alice, "alice")
        await store.put_user(alice, "Alicia")
        assert await store.users_by_username(["alice", "alicia"]) == {"alicia": alice}

    async def test_a_username_moving_to_another_user_leaves_the_previous_holder_without_it(
        self, store: MessageStore
    ) -> None:
        first, second = ids(2)
        await store.put_user(first, "sam")
        await store.put_user(second, "SAM")
        assert await store.users_by_username(["sam"]) == {"sam": second}
        await store.put_user(first, "samuel")
        assert await store.users_by_username(["sam", "samuel"]) == {"sam": second, "samuel": first}

    async def test_a_forgotten_user_is_not_found_and_frees_the_name(self, store: MessageStore) -> None:
        alice, other = ids(2)
        await store.put_user(alice, "alice")
        await store.put_user(other, "other")
        await store.forget_user(alice)
        assert await store.users_by_username(["alice", "other"]) == {"other": other}
        newcomer = uuid.uuid4()
        await store.put_user(newcomer, "Alice")
        assert await store.users_by_username(["alice"]) == {"alice": newcomer}
        await store.forget_user(alice)  # forgetting again is harmless
