"""One suite, every ``MessageStore`` (the in-memory fake in unit tests, MongoDB in integration tests).

A test module subclasses ``StoreContract`` (the subclass's name starts with ``Test``) and provides a ``store``
fixture returning a fresh, empty store. The suite talks to the store through ``MessageStore`` only and checks
only what chat_messages.service.ports promises: where the port names no order, lists are compared as sets.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from chat_messages.domain.activity import Activity, ActivityKind
from chat_messages.domain.model import Change, Edit, Markers, Member, MentionedUser, Message, RoomState
from chat_messages.service.ports import InsertOutcome, MessageStore

T0 = datetime(2030, 1, 1, tzinfo=UTC)
"""A fixed instant."""
SECOND = timedelta(seconds=1)
US = timedelta(microseconds=1)


def ids(count: int) -> list[uuid.UUID]:
    """``count`` ids in ascending order."""
    return sorted(uuid.uuid4() for _ in range(count))


def a_message(
    room_id: uuid.UUID,
    seq: int,
    *,
    body: str | None = None,
    tokens: Sequence[str] | None = None,
    sender_id: uuid.UUID | None = None,
    at: datetime | None = None,
    reply_to: uuid.UUID | None = None,
    client_msg_id: str | None = None,
) -> Message:
    """Message ``seq`` of ``room_id``, sent ``seq`` seconds after T0 unless ``at`` says otherwise."""
    body = f"message {seq}" if body is None else body
    return Message(
        id=uuid.uuid4(),
        room_id=room_id,
        seq=seq,
        sender_id=sender_id or uuid.uuid4(),
        client_msg_id=client_msg_id or f"client-{seq}-{uuid.uuid4().hex[:8]}",
        body=body,
        created_at=T0 + seq * SECOND if at is None else at,
        tokens=tuple(body.lower().split()) if tokens is None else tuple(tokens),
        reply_to=reply_to,
    )


async def insert(store: MessageStore, *messages: Message) -> None:
    for message in messages:
        assert await store.insert_message(message) == "inserted"


async def a_room_of(store: MessageStore, count: int, *, room_id: uuid.UUID | None = None) -> list[Message]:
    """``count`` stored messages with seqs 1..count in one room."""
    room_id = room_id or uuid.uuid4()
    messages = [a_message(room_id, seq) for seq in range(1, count + 1)]
    await insert(store, *messages)
    return messages


def an_edit(body: str, *, request_id: str | None = None, at: datetime = T0 + timedelta(hours=1)) -> Change:
    return Change(
        request_id=request_id or f"edit-{uuid.uuid4()}", at=at, edit_body=body, edit_tokens=tuple(body.lower().split())
    )


def a_deletion(by: uuid.UUID, *, request_id: str | None = None, at: datetime = T0 + timedelta(hours=2)) -> Change:
    return Change(request_id=request_id or f"delete-{uuid.uuid4()}", at=at, delete_by=by)


def a_reaction(emoji: str, user_id: uuid.UUID, action: str = "add", *, request_id: str | None = None) -> Change:
    assert action in ("add", "remove")
    return Change(
        request_id=request_id or f"react-{uuid.uuid4()}",
        at=T0 + timedelta(hours=3),
        reaction=(emoji, user_id, "add" if action == "add" else "remove"),
    )


def seqs(messages: Iterable[Message]) -> list[int]:
    return [message.seq for message in messages]


def an_activity(
    room_id: uuid.UUID,
    room_version: int,
    after_seq: int,
    *,
    kind: ActivityKind = "joined",
    at: datetime | None = None,
    name: str | None = None,
) -> Activity:
    """Version ``room_version`` of ``room_id``, after message ``after_seq``, ``room_version`` seconds after T0."""
    return Activity(
        room_id=room_id,
        room_version=room_version,
        kind=kind,
        after_seq=after_seq,
        occurred_at=T0 + room_version * SECOND if at is None else at,
        user_id=None if kind == "renamed" else uuid.uuid4(),
        by=uuid.uuid4() if kind in ("kicked", "banned", "renamed") else None,
        name=name,
    )


def versions(activity: Iterable[Activity]) -> list[int]:
    return [a.room_version for a in activity]


class StoreContract:
    """The behaviour every ``MessageStore`` guarantees (see chat_messages.service.ports.MessageStore)."""

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

    # inserting and reading messages

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
        assert await store.message(room_id, again.id) is None
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
        assert await store.insert_message(replace(original, id=uuid.uuid4())) == "duplicate_client_msg_id"
        assert await store.insert_message(original) == "duplicate_client_msg_id"
        assert list(await store.history(room_id, limit=10, newest_first=False)) == [original]

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

    # changes

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

    # markers

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

    # retention

    async def test_a_retention_policy_is_set_listed_and_cleared(self, store: MessageStore) -> None:
        first, second = ids(2)
        assert await store.retention(first) is None
        await store.set_retention(first, 30)
        await store.set_retention(second, 7)
        await store.set_retention(second, 14)
        assert sorted(await store.retention_policies(), key=lambda p: p[1]) == [(second, 14), (first, 30)]
        await store.set_retention(first, None)
        assert await store.retention(first) is None
        assert await store.retention_policies() == [(second, 14)]

    async def test_sweeping_by_age_never_deletes_the_newest_message(self, store: MessageStore) -> None:
        room_id, other = ids(2)
        old = [a_message(room_id, seq, at=T0 + timedelta(minutes=seq)) for seq in (1, 2, 3)]
        await insert(store, *old, a_message(other, 1, at=T0))
        assert await store.delete_messages_before(room_id, T0 + timedelta(days=1)) == 2
        assert seqs(await store.history(room_id, limit=10, newest_first=False)) == [3]
        assert await store.last_seq(room_id) == 3
        assert seqs(await store.history(other, limit=10, newest_first=False)) == [1], "other rooms untouched"

    async def test_sweeping_by_age_deletes_the_rooms_older_activity_too(self, store: MessageStore) -> None:
        room_id, other = ids(2)
        cutoff = T0 + timedelta(days=1)
        await store.put_activity(an_activity(room_id, 2, 0, at=cutoff - US))
        await store.put_activity(an_activity(room_id, 3, 0, at=cutoff))
        await store.put_activity(an_activity(other, 2, 0, at=T0))
        assert await store.delete_messages_before(room_id, cutoff) == 0
        assert versions(await store.activity(room_id, limit=10)) == [3]
        assert versions(await store.activity(other, limit=10)) == [2], "other rooms untouched"

    async def test_a_purge_comes_due_at_its_time_and_is_forgotten_when_done(self, store: MessageStore) -> None:
        room_id = uuid.uuid4()
        await store.schedule_purge(room_id, T0 + timedelta(days=2))
        assert await store.due_purges(T0 + timedelta(days=1)) == []
        assert await store.due_purges(T0 + timedelta(days=2)) == [room_id]
        await store.purge_done(room_id)
        assert await store.due_purges(T0 + timedelta(days=3)) == []
