"""One suite, every ``RoomsStore`` (the in-memory fake in unit tests, PostgreSQL in integration tests).

A test module subclasses ``StoreContract`` (the subclass's name starts with ``Test``), provides a ``store``
fixture returning a fresh, empty store, and implements ``emitted``. Every test reads back through a new
transaction, so what it checks is what committed. Only what ``chat_rooms.service.ports.Tx`` promises is
checked: where the port names no order, lists are compared as sets.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from chat_contracts.envelope import Envelope
from chat_contracts.examples import example
from chat_contracts.rooms import RoomCreated
from chat_contracts.topics import ROOMS_EVENTS
from chat_rooms.domain.errors import Conflict
from chat_rooms.domain.model import (
    Ban,
    Block,
    Contact,
    Failures,
    Invitation,
    Membership,
    Role,
    Room,
    RoomKind,
    RoomListing,
    UserProfile,
)
from chat_rooms.domain.rules import dm_key, search_key
from chat_rooms.service.ports import RoomsStore, Tx

T0 = datetime(2030, 1, 1, tzinfo=UTC)
"""A fixed instant, aligned on the minute, hour and day (throttle windows start there)."""
HOUR = timedelta(hours=1)
PASSWORD_HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA"


class _Boom(Exception):
    """Raised inside a transaction to roll it back."""


async def roll_back(store: RoomsStore, work: Callable[[Tx], Awaitable[None]]) -> None:
    """Run ``work`` in a transaction that then fails, so nothing it did may remain."""
    with pytest.raises(_Boom):
        await _fail_after(store, work)


async def _fail_after(store: RoomsStore, work: Callable[[Tx], Awaitable[None]]) -> None:
    async with store.transaction() as tx:
        await work(tx)
        raise _Boom


def a_room(
    name: str | None = "general",
    *,
    kind: RoomKind = "public",
    created_by: uuid.UUID | None = None,
    at: datetime = T0,
    archived_at: datetime | None = None,
) -> Room:
    """A room of ``kind`` (password rooms come with a hash); direct rooms come from ``a_direct_room``."""
    return Room(
        id=uuid.uuid4(),
        kind=kind,
        name=name,
        topic=None,
        description=None,
        avatar_url=None,
        history="shared",
        created_by=created_by or uuid.uuid4(),
        created_at=at,
        updated_at=at,
        password_hash=PASSWORD_HASH if kind == "password" else None,
        archived_at=archived_at,
    )


def a_direct_room(first: uuid.UUID, second: uuid.UUID, *, at: datetime = T0) -> Room:
    return replace(a_room(None, kind="direct", created_by=first, at=at), dm_key=dm_key(first, second))


def a_membership(room: Room, user_id: uuid.UUID, role: Role = "member", *, at: datetime = T0) -> Membership:
    return Membership(room_id=room.id, user_id=user_id, role=role, joined_at=at)


def a_profile(username: str, *, user_id: uuid.UUID | None = None, at: datetime = T0) -> UserProfile:
    return UserProfile(
        user_id=user_id or uuid.uuid4(),
        username=username,
        display_name=f"{username.title()} Example",
        updated_at=at,
    )


def a_contact(first: uuid.UUID, second: uuid.UUID, *, at: datetime = T0, accepted: bool = False) -> Contact:
    """A request from ``first`` to ``second`` (accepted when asked)."""
    low, high = sorted((first, second))
    return Contact(
        user_low=low,
        user_high=high,
        requested_by=first,
        created_at=at,
        accepted_at=at + HOUR if accepted else None,
    )


def an_event(room: Room) -> Envelope:
    data = example(RoomCreated, room_id=room.id, kind=room.kind, name=room.name, created_by=room.created_by)
    return Envelope.wrap(data, source="rooms", key=str(room.id))


def users(count: int) -> list[uuid.UUID]:
    """``count`` user ids in ascending order (the order ties are broken in)."""
    return sorted(uuid.uuid4() for _ in range(count))


def _ids(items: Sequence[Room | Envelope]) -> list[uuid.UUID]:
    return [item.id for item in items]


def _after(room: Room) -> tuple[str, uuid.UUID]:
    """The directory cursor that follows ``room``."""
    return search_key(room.name or ""), room.id


class StoreContract:
    """The behaviour every ``RoomsStore`` guarantees (see chat_rooms.service.ports.Tx)."""

    async def emitted(self, store: RoomsStore) -> list[Envelope]:
        """Every event ``store`` committed to its outbox, oldest first."""
        raise NotImplementedError

    # rooms

    async def test_an_added_room_is_found_by_id(self, store: RoomsStore) -> None:
        room = replace(
            a_room("General", kind="password"),
            topic="Say hi",
            description="Line one\nline two",
            avatar_url="https://cdn.example.com/rooms/general.png",
            history="joined",
            version=3,
            member_count=2,
            updated_at=T0 + timedelta(minutes=5, microseconds=123456),
        )
        async with store.transaction() as tx:
            await tx.add_room(room)
        async with store.transaction() as tx:
            assert await tx.room(room.id) == room
            assert await tx.room(room.id, for_update=True) == room
            assert await tx.room(uuid.uuid4()) is None
            assert await tx.room(uuid.uuid4(), for_update=True) is None

    async def test_a_direct_room_is_found_by_its_dm_key_whichever_user_asks(self, store: RoomsStore) -> None:
        alice, bob, carol = users(3)
        direct = a_direct_room(bob, alice)
        async with store.transaction() as tx:
            await tx.add_room(direct)
            await tx.add_room(a_room("general"))
        async with store.transaction() as tx:
            assert await tx.room_by_dm_key(dm_key(alice, bob)) == direct
            assert await tx.room_by_dm_key(dm_key(bob, alice)) == direct
            assert await tx.room_by_dm_key(dm_key(alice, carol)) is None

    async def test_a_second_direct_room_for_a_pair_is_a_conflict_on_dm_key(self, store: RoomsStore) -> None:
        alice, bob = users(2)
        first = a_direct_room(alice, bob)
        async with store.transaction() as tx:
            await tx.add_room(first)
        async with store.transaction() as tx:
            with pytest.raises(Conflict) as caught:
                await tx.add_room(a_direct_room(bob, alice, at=T0 + HOUR))
        assert caught.value.field == "dm_key"
        async with store.transaction() as tx:
            assert await tx.room_by_dm_key(dm_key(alice, bob)) == first

    async def test_a_conflict_leaves_the_transaction_usable(self, store: RoomsStore) -> None:
        alice, bob = users(2)
        general = a_room("general")
        async with store.transaction() as tx:
            await tx.add_room(a_direct_room(alice, bob))
            await tx.add_room(general)
            await tx.add_membership(a_membership(general, alice))
        other = a_room("other")
        async with store.transaction() as tx:
            with pytest.raises(Conflict):
                await tx.add_room(a_direct_room(alice, bob))
            with pytest.raises(Conflict):
                await tx.add_membership(a_membership(general, alice, at=T0 + HOUR))
            await tx.add_room(other)
            await tx.add_membership(a_membership(general, bob))
        async with store.transaction() as tx:
            assert await tx.room(other.id) == other
            assert await tx.membership(general.id, alice) == a_membership(general, alice)
            assert await tx.membership(general.id, bob) == a_membership(general, bob)

    async def test_a_direct_rooms_block_is_written_back_and_read(self, store: RoomsStore) -> None:
        alice, bob = users(2)
        room = a_direct_room(alice, bob)
        async with store.transaction() as tx:
            await tx.add_room(room)
            assert (await tx.room(room.id) or room).blocked is False
            await tx.update_room(replace(room, blocked=True, version=2))
        async with store.transaction() as tx:
            assert await tx.room(room.id) == replace(room, blocked=True, version=2)
            assert await tx.room_by_dm_key(dm_key(bob, alice)) == replace(room, blocked=True, version=2)

    async def test_update_room_writes_every_field_back(self, store: RoomsStore) -> None:
        room = a_room("general")
        async with store.transaction() as tx:
            await tx.add_room(room)
        later = T0 + timedelta(days=3, microseconds=654321)
        changed = replace(
            room,
            kind="password",
            name="Lobby",
            topic="New topic",
            description="About the lobby",
            avatar_url="https://cdn.example.com/rooms/lobby.png",
            history="joined",
            updated_at=later,
            version=7,
            password_hash=PASSWORD_HASH,
            member_count=12,
        )
        async with store.transaction() as tx:
            await tx.update_room(changed)
        async with store.transaction() as tx:
            assert await tx.room(room.id) == changed
            assert _ids(await tx.directory(query="lobby", after=None, limit=10)) == [room.id]
            assert list(await tx.directory(query="general", after=None, limit=10)) == []
            archived = replace(changed, archived_at=later, version=8, password_hash=None, kind="private")
            await tx.update_room(archived)
        async with store.transaction() as tx:
            assert await tx.room(room.id) == archived
            assert list(await tx.directory(query=None, after=None, limit=10)) == []

    async def test_deleting_a_room_deletes_its_memberships_invitations_and_bans_and_nothing_else(
        self, store: RoomsStore
    ) -> None:
        alice, bob, carol = users(3)
        doomed, kept = a_room("doomed"), a_room("kept")
        async with store.transaction() as tx:
            for room in (doomed, kept):
                await tx.add_room(room)
                await tx.add_membership(a_membership(room, alice, "owner"))
                await tx.put_invitation(Invitation(room.id, bob, invited_by=alice, created_at=T0))
                await tx.put_ban(Ban(room.id, carol, banned_by=alice, reason="spam", created_at=T0))
        async with store.transaction() as tx:
            await tx.delete_room(doomed.id)
        async with store.transaction() as tx:
            assert await tx.room(doomed.id) is None
            assert await tx.membership(doomed.id, alice) is None
            assert list(await tx.members(doomed.id)) == []
            assert await tx.invitation(doomed.id, bob) is None
            assert await tx.ban(doomed.id, carol) is None
            assert list(await tx.bans(doomed.id)) == []

            assert await tx.room(kept.id) == kept
            assert list(await tx.members(kept.id)) == [a_membership(kept, alice, "owner")]
            assert list(await tx.memberships_of(alice)) == [a_membership(kept, alice, "owner")]
            assert [listing.room for listing in await tx.rooms_of(alice, after=None, limit=10)] == [kept]
            assert [i.room_id for i in await tx.invitations_of(bob)] == [kept.id]
            assert [b.user_id for b in await tx.bans(kept.id)] == [carol]
        async with store.transaction() as tx:
            await tx.delete_room(doomed.id)  # deleting again is harmless

    async def test_a_rolled_back_transaction_writes_nothing(self, store: RoomsStore) -> None:
        alice, bob = users(2)
        existing = a_room("existing")
        async with store.transaction() as tx:
            await tx.add_room(existing)
            await tx.put_user(a_profile("alice", user_id=alice))
        new = a_room("new")
        direct = a_direct_room(alice, bob)

        async def work(tx: Tx) -> None:
            await tx.add_room(new)
            await tx.add_room(direct)
            await tx.update_room(replace(existing, name="changed", version=2))
            await tx.add_membership(a_membership(existing, alice))
            await tx.put_invitation(Invitation(existing.id, bob, invited_by=alice, created_at=T0))
            await tx.put_ban(Ban(existing.id, bob, banned_by=alice, reason=None, created_at=T0))
            await tx.put_user(a_profile("bob", user_id=bob))
            await tx.delete_user(alice)
            await tx.put_contact(a_contact(bob, alice))
            await tx.put_block(Block(blocker=bob, blocked=alice, created_at=T0))
            assert await tx.hit("join:bob", window=timedelta(minutes=1), now=T0) == 1
            await tx.record_failure("room-password:bob", T0)
            assert await tx.mark_processed(uuid.UUID(int=1), at=T0)
            await tx.emit(an_event(new), topic=ROOMS_EVENTS.name)

        await roll_back(store, work)
        async with store.transaction() as tx:
            assert await tx.room(new.id) is None
            assert await tx.room_by_dm_key(dm_key(alice, bob)) is None
            assert await tx.room(existing.id) == existing
            assert list(await tx.directory(query=None, after=None, limit=10)) == [existing]
            assert list(await tx.members(existing.id)) == []
            assert list(await tx.invitations_of(bob)) == []
            assert list(await tx.bans(existing.id)) == []
            assert await tx.user(bob) is None
            assert await tx.user(alice) == a_profile("alice", user_id=alice)
            assert await tx.contact(alice, bob) is None
            assert await tx.blocked(bob, alice) is False
            assert await tx.hit("join:bob", window=timedelta(minutes=1), now=T0) == 1
            assert await tx.failures("room-password:bob") == Failures()
            assert await tx.mark_processed(uuid.UUID(int=1), at=T0) is True
        assert await self.emitted(store) == []

    # the directory

    async def test_the_directory_finds_rooms_by_prefix_and_substring_whatever_the_case(self, store: RoomsStore) -> None:
        general = a_room("general")
        engineering = a_room("Engineering General")
        random = a_room("random")
        strasse = a_room("Straße")
        async with store.transaction() as tx:
            for room in (general, engineering, random, strasse):
                await tx.add_room(room)
        async with store.transaction() as tx:

            async def search(query: str) -> list[uuid.UUID]:
                return _ids(await tx.directory(query=query, after=None, limit=10))

            assert await search("Gen") == [engineering.id, general.id]  # "engineering general" < "general"
            assert await search("GENERAL") == [engineering.id, general.id]
            assert await search("engin") == [engineering.id]
            assert await search("RAL") == [engineering.id, general.id]
            assert await search("ng ge") == [engineering.id]
            assert await search("rand") == [random.id]
            assert await search("STRASSE") == [strasse.id]  # case folding, not just lower case
            assert await search("xyz") == []

    async def test_the_directory_lists_only_unarchived_public_and_password_rooms(self, store: RoomsStore) -> None:
        alice, bob, carol = users(3)
        public = a_room("alpha public")
        password = a_room("beta password", kind="password")
        hidden = [
            a_room("gamma private", kind="private"),
            a_room("delta group", kind="group_dm"),
            a_room("epsilon archived", archived_at=T0 + HOUR),
            a_room("zeta archived", kind="password", archived_at=T0 + HOUR),
            a_direct_room(alice, bob),
            replace(a_direct_room(alice, carol), name="eta direct"),
        ]
        async with store.transaction() as tx:
            for room in (*hidden, password, public):
                await tx.add_room(room)
        async with store.transaction() as tx:
            assert list(await tx.directory(query=None, after=None, limit=10)) == [public, password]
            assert list(await tx.directory(query="a", after=None, limit=10)) == [public, password]
            for room in hidden:
                if room.name is not None:
                    assert list(await tx.directory(query=room.name, after=None, limit=10)) == []

    async def test_the_directory_is_ordered_by_search_key_then_id(self, store: RoomsStore) -> None:
        lobbies = sorted((a_room(name) for name in ("Lobby", "lobby", "LOBBY")), key=lambda room: room.id)
        rooms = [a_room("Zoo"), *lobbies, a_room("Apple"), a_room("lobby two")]
        async with store.transaction() as tx:
            for room in rooms:
                await tx.add_room(room)
        async with store.transaction() as tx:
            listed = _ids(await tx.directory(query=None, after=None, limit=10))
        assert listed == [rooms[4].id, *_ids(lobbies), rooms[5].id, rooms[0].id]

    async def test_directory_pages_return_every_room_exactly_once(self, store: RoomsStore) -> None:
        names = ["general", "General", "GENERAL", "gen", "Engineering General", "genes", "random", "Agenda", "Gen Z"]
        rooms = [a_room(name) for name in names]
        async with store.transaction() as tx:
            for room in rooms:
                await tx.add_room(room)
        for query, expected in ((None, len(rooms)), ("gen", len(rooms) - 1)):
            async with store.transaction() as tx:
                everything = list(await tx.directory(query=query, after=None, limit=100))
                pages: list[Sequence[Room]] = []
                after: tuple[str, uuid.UUID] | None = None
                while page := await tx.directory(query=query, after=after, limit=2):
                    assert len(page) <= 2
                    pages.append(page)
                    after = _after(page[-1])
            paged = [room for page in pages for room in page]
            assert len(everything) == expected
            assert paged == everything
            assert len(pages) == (expected + 1) // 2

    async def test_the_directory_matches_percent_underscore_and_backslash_literally(self, store: RoomsStore) -> None:
        percent, percent_lookalike = a_room("100% real"), a_room("1000 real")
        underscore, underscore_lookalike = a_room("snake_case"), a_room("snakeXcase")
        backslash, backslash_lookalike = a_room("back\\slash"), a_room("backslash")
        async with store.transaction() as tx:
            for room in (percent, percent_lookalike, underscore, underscore_lookalike, backslash, backslash_lookalike):
                await tx.add_room(room)
        async with store.transaction() as tx:

            async def search(query: str) -> list[uuid.UUID]:
                return _ids(await tx.directory(query=query, after=None, limit=10))

            assert await search("%") == [percent.id]
            assert await search("100%") == [percent.id]
            assert await search("0% r") == [percent.id]
            assert await search("_") == [underscore.id]
            assert await search("e_c") == [underscore.id]
            assert await search("\\") == [backslash.id]
            assert await search("k\\s") == [backslash.id]
            assert await search("k\\") == [backslash.id]
            assert await search("%%") == []

    # rooms of a user

    async def test_rooms_of_lists_the_users_rooms_newest_membership_first_with_their_role(
        self, store: RoomsStore
    ) -> None:
        alice, bob = users(2)
        first = a_room("first")
        tied = sorted((a_room("tied one"), a_room("tied two")), key=lambda room: room.id, reverse=True)
        archived = a_room("archived", kind="private", archived_at=T0 + HOUR)
        direct = a_direct_room(alice, bob)
        others = a_room("others")
        async with store.transaction() as tx:
            for room in (first, *tied, archived, direct, others):
                await tx.add_room(room)
            await tx.add_membership(a_membership(first, alice, "owner", at=T0))
            await tx.add_membership(a_membership(tied[1], alice, "admin", at=T0 + HOUR))
            await tx.add_membership(a_membership(tied[0], alice, "member", at=T0 + HOUR))
            await tx.add_membership(a_membership(archived, alice, "member", at=T0 + 2 * HOUR))
            await tx.add_membership(a_membership(direct, alice, "member", at=T0 + 3 * HOUR))
            await tx.add_membership(a_membership(others, bob, "owner", at=T0 + 4 * HOUR))
            await tx.add_membership(a_membership(direct, bob, "member", at=T0 + 3 * HOUR))
        expected = [
            RoomListing(direct, "member", T0 + 3 * HOUR),
            RoomListing(archived, "member", T0 + 2 * HOUR),
            RoomListing(tied[0], "member", T0 + HOUR),
            RoomListing(tied[1], "admin", T0 + HOUR),
            RoomListing(first, "owner", T0),
        ]
        async with store.transaction() as tx:
            assert list(await tx.rooms_of(alice, after=None, limit=10)) == expected
            assert list(await tx.rooms_of(alice, after=None, limit=2)) == expected[:2]
            assert list(await tx.rooms_of(uuid.uuid4(), after=None, limit=10)) == []

    async def test_rooms_of_pages_strictly_after_the_cursor(self, store: RoomsStore) -> None:
        (alice,) = users(1)
        rooms = [a_room(f"room {n}") for n in range(7)]
        async with store.transaction() as tx:
            for n, room in enumerate(rooms):
                await tx.add_room(room)
                await tx.add_membership(a_membership(room, alice, at=T0 + (n // 2) * HOUR))  # pairs tie
        async with store.transaction() as tx:
            everything = list(await tx.rooms_of(alice, after=None, limit=100))
            paged: list[RoomListing] = []
            after: tuple[datetime, uuid.UUID] | None = None
            while page := await tx.rooms_of(alice, after=after, limit=3):
                paged.extend(page)
                last = page[-1]
                assert last.joined_at is not None
                after = (last.joined_at, last.room.id)
        assert len(everything) == len(rooms)
        assert paged == everything
        assert {listing.room.id for listing in paged} == {room.id for room in rooms}

    # memberships

    async def test_a_membership_is_added_found_updated_and_removed(self, store: RoomsStore) -> None:
        alice, bob = users(2)
        room = a_room("general")
        membership = a_membership(room, alice, "member")
        async with store.transaction() as tx:
            await tx.add_room(room)
            await tx.add_membership(membership)
        async with store.transaction() as tx:
            assert await tx.membership(room.id, alice) == membership
            assert await tx.membership(room.id, bob) is None
            assert await tx.membership(uuid.uuid4(), alice) is None
            promoted = replace(membership, role="admin")
            await tx.update_membership(promoted)
        async with store.transaction() as tx:
            assert await tx.membership(room.id, alice) == promoted
            assert await tx.remove_membership(room.id, alice) is True
            assert await tx.remove_membership(room.id, alice) is False
        async with store.transaction() as tx:
            assert await tx.membership(room.id, alice) is None
            assert await tx.remove_membership(room.id, alice) is False
            assert await tx.room(room.id) == room

    async def test_adding_an_existing_membership_is_a_conflict_on_membership(self, store: RoomsStore) -> None:
        (alice,) = users(1)
        room = a_room("general")
        async with store.transaction() as tx:
            await tx.add_room(room)
            await tx.add_membership(a_membership(room, alice, "owner"))
        async with store.transaction() as tx:
            with pytest.raises(Conflict) as caught:
                await tx.add_membership(a_membership(room, alice, "member", at=T0 + HOUR))
        assert caught.value.field == "membership"
        async with store.transaction() as tx:
            assert await tx.membership(room.id, alice) == a_membership(room, alice, "owner")

    async def test_members_are_ordered_by_join_time_then_user_id_and_paged(self, store: RoomsStore) -> None:
        people = users(6)
        room, elsewhere = a_room("general"), a_room("elsewhere")
        joined = [a_membership(room, user, at=T0 + (n // 2) * HOUR) for n, user in enumerate(people)]
        async with store.transaction() as tx:
            await tx.add_room(room)
            await tx.add_room(elsewhere)
            for membership in reversed(joined):
                await tx.add_membership(membership)
            await tx.add_membership(a_membership(elsewhere, people[0], at=T0 - HOUR))
        async with store.transaction() as tx:
            assert list(await tx.members(room.id)) == joined
            assert list(await tx.members(room.id, limit=4)) == joined[:4]
            third = joined[2]
            assert list(await tx.members(room.id, after=(third.joined_at, third.user_id))) == joined[3:]
            assert list(await tx.members(room.id, after=(third.joined_at, third.user_id), limit=2)) == joined[3:5]
            last = joined[-1]
            assert list(await tx.members(room.id, after=(last.joined_at, last.user_id))) == []
            assert list(await tx.members(uuid.uuid4())) == []

    async def test_memberships_of_lists_every_room_of_the_user(self, store: RoomsStore) -> None:
        alice, bob = users(2)
        rooms = [a_room("one"), a_room("two", kind="private"), a_direct_room(alice, bob)]
        async with store.transaction() as tx:
            for n, room in enumerate(rooms):
                await tx.add_room(room)
                await tx.add_membership(a_membership(room, alice, at=T0 + n * HOUR))
            await tx.add_membership(a_membership(rooms[2], bob))
        async with store.transaction() as tx:
            mine = await tx.memberships_of(alice)
            assert set(mine) == {a_membership(room, alice, at=T0 + n * HOUR) for n, room in enumerate(rooms)}
            assert len(mine) == len(rooms)
            assert list(await tx.memberships_of(bob)) == [a_membership(rooms[2], bob)]
            assert list(await tx.memberships_of(uuid.uuid4())) == []

    # invitations and bans

    async def test_an_invitation_is_put_replaced_and_removed(self, store: RoomsStore) -> None:
        alice, bob, carol = users(3)
        room = a_room("general", kind="private")
        first = Invitation(room.id, carol, invited_by=alice, created_at=T0)
        again = Invitation(room.id, carol, invited_by=bob, created_at=T0 + HOUR)
        async with store.transaction() as tx:
            await tx.add_room(room)
            await tx.put_invitation(first)
        async with store.transaction() as tx:
            assert await tx.invitation(room.id, carol) == first
            assert await tx.invitation(room.id, bob) is None
            await tx.put_invitation(again)
        async with store.transaction() as tx:
            assert await tx.invitation(room.id, carol) == again
            assert list(await tx.invitations_of(carol)) == [again]
            assert await tx.remove_invitation(room.id, carol) is True
            assert await tx.remove_invitation(room.id, carol) is False
        async with store.transaction() as tx:
            assert await tx.invitation(room.id, carol) is None
            assert list(await tx.invitations_of(carol)) == []

    async def test_invitations_of_lists_the_users_pending_invitations_newest_first(self, store: RoomsStore) -> None:
        alice, bob, carol = users(3)
        rooms = [a_room(f"room {n}", kind="private") for n in range(3)]
        invitations = [
            Invitation(room.id, carol, invited_by=alice, created_at=T0 + n * HOUR) for n, room in enumerate(rooms)
        ]
        async with store.transaction() as tx:
            for room in rooms:
                await tx.add_room(room)
            for invitation in (invitations[1], invitations[0], invitations[2]):
                await tx.put_invitation(invitation)
            await tx.put_invitation(Invitation(rooms[0].id, bob, invited_by=alice, created_at=T0 + 5 * HOUR))
        async with store.transaction() as tx:
            assert list(await tx.invitations_of(carol)) == invitations[::-1]
            assert list(await tx.invitations_of(alice)) == []

    async def test_a_ban_is_put_replaced_and_removed(self, store: RoomsStore) -> None:
        alice, bob, carol = users(3)
        room = a_room("general")
        ban = Ban(room.id, carol, banned_by=alice, reason="spam", created_at=T0)
        again = Ban(room.id, carol, banned_by=bob, reason=None, created_at=T0 + HOUR)
        async with store.transaction() as tx:
            await tx.add_room(room)
            await tx.put_ban(ban)
        async with store.transaction() as tx:
            assert await tx.ban(room.id, carol) == ban
            assert await tx.ban(room.id, bob) is None
            await tx.put_ban(again)
        async with store.transaction() as tx:
            assert await tx.ban(room.id, carol) == again
            assert list(await tx.bans(room.id)) == [again]
            assert await tx.remove_ban(room.id, carol) is True
            assert await tx.remove_ban(room.id, carol) is False
        async with store.transaction() as tx:
            assert await tx.ban(room.id, carol) is None
            assert list(await tx.bans(room.id)) == []

    async def test_bans_lists_the_rooms_bans_newest_first(self, store: RoomsStore) -> None:
        alice, *banned = users(4)
        room, elsewhere = a_room("general"), a_room("elsewhere")
        bans = [
            Ban(room.id, user, banned_by=alice, reason=None, created_at=T0 + n * HOUR) for n, user in enumerate(banned)
        ]
        async with store.transaction() as tx:
            await tx.add_room(room)
            await tx.add_room(elsewhere)
            for ban in (bans[2], bans[0], bans[1]):
                await tx.put_ban(ban)
            await tx.put_ban(Ban(elsewhere.id, banned[0], banned_by=alice, reason=None, created_at=T0 + 9 * HOUR))
        async with store.transaction() as tx:
            assert list(await tx.bans(room.id)) == bans[::-1]
            assert list(await tx.bans(uuid.uuid4())) == []

    # the users projection

    async def test_a_profile_is_put_replaced_and_found_by_username_whatever_the_case(self, store: RoomsStore) -> None:
        alice = a_profile("Alice")
        async with store.transaction() as tx:
            assert await tx.user(alice.user_id) is None
            await tx.put_user(alice)
        async with store.transaction() as tx:
            assert await tx.user(alice.user_id) == alice
            assert await tx.user_by_username("Alice") == alice
            assert await tx.user_by_username("aLICE") == alice
            assert await tx.user_by_username("bob") is None
            renamed = replace(alice, username="Alicia", display_name="Alicia Ü.", updated_at=T0 + HOUR)
            await tx.put_user(renamed)
        async with store.transaction() as tx:
            assert await tx.user(alice.user_id) == renamed
            assert await tx.user_by_username("ALICIA") == renamed
            assert await tx.user_by_username("alice") is None

    async def test_a_username_moves_from_one_user_to_another(self, store: RoomsStore) -> None:
        sam = a_profile("Sam")
        newcomer = a_profile("sam", at=T0 + HOUR)
        async with store.transaction() as tx:
            await tx.put_user(sam)
        async with store.transaction() as tx:
            await tx.put_user(newcomer)  # events across users arrive in any order: no conflict
        async with store.transaction() as tx:
            assert await tx.user_by_username("SAM") == newcomer
            assert await tx.user(newcomer.user_id) == newcomer
            # The previous holder's own rename arrives later and makes them findable again.
            samuel = replace(sam, username="Samuel", updated_at=T0 + 2 * HOUR)
            await tx.put_user(samuel)
        async with store.transaction() as tx:
            assert await tx.user_by_username("samuel") == samuel
            assert await tx.user_by_username("sam") == newcomer
            # And back again, in one transaction.
            await tx.put_user(replace(samuel, username="SAM", updated_at=T0 + 3 * HOUR))
            assert await tx.user_by_username("sam") == replace(samuel, username="SAM", updated_at=T0 + 3 * HOUR)

    async def test_profiles_are_found_by_many_ids_at_once(self, store: RoomsStore) -> None:
        alice, bob = a_profile("alice"), replace(a_profile("bob"), avatar_url="/api/auth/avatars/b.png")
        async with store.transaction() as tx:
            await tx.put_user(alice)
            await tx.put_user(bob)
        async with store.transaction() as tx:
            found = await tx.users([bob.user_id, uuid.uuid4(), alice.user_id])
            assert sorted(found, key=lambda p: p.username) == [alice, bob]
            assert list(await tx.users([uuid.uuid4()])) == []
            assert list(await tx.users([])) == []
            # A username taken over: the previous holder keeps their profile, found by id but not by username.
            newcomer = a_profile("ALICE", at=T0 + HOUR)
            await tx.put_user(newcomer)
            assert await tx.user(alice.user_id) == alice
            assert await tx.user_by_username("alice") == newcomer
            assert len(await tx.users([alice.user_id, newcomer.user_id])) == 2

    async def test_deleting_a_user_drops_their_profile_invitations_contacts_and_blocks(self, store: RoomsStore) -> None:
        alice, bob, carol = users(3)
        room = a_room("general", kind="private")
        membership = a_membership(room, alice, "owner")
        invitation_of_bob = Invitation(room.id, bob, invited_by=alice, created_at=T0)
        bob_and_carol = a_contact(bob, carol, accepted=True)
        carol_blocks_bob = Block(blocker=carol, blocked=bob, created_at=T0)
        async with store.transaction() as tx:
            await tx.add_room(room)
            await tx.add_membership(membership)
            for user, name in ((alice, "alice"), (bob, "bob"), (carol, "carol")):
                await tx.put_user(a_profile(name, user_id=user))
            await tx.put_invitation(Invitation(room.id, alice, invited_by=carol, created_at=T0))
            await tx.put_invitation(invitation_of_bob)
            await tx.put_contact(a_contact(alice, bob))
            await tx.put_contact(a_contact(carol, alice, accepted=True))
            await tx.put_contact(bob_and_carol)
            await tx.put_block(Block(blocker=alice, blocked=bob, created_at=T0))
            await tx.put_block(Block(blocker=carol, blocked=alice, created_at=T0))
            await tx.put_block(carol_blocks_bob)
        async with store.transaction() as tx:
            await tx.delete_user(alice)
        async with store.transaction() as tx:
            assert await tx.user(alice) is None
            assert await tx.user_by_username("alice") is None
            assert await tx.invitation(room.id, alice) is None
            assert list(await tx.invitations_of(alice)) == []
            assert await tx.contact(alice, bob) is None
            assert await tx.contact(carol, alice) is None
            assert list(await tx.contacts_of(alice)) == []
            assert list(await tx.blocks_of(alice)) == []
            assert await tx.blocked(carol, alice) is False
            # Memberships are the caller's job; other users keep everything.
            assert await tx.membership(room.id, alice) == membership
            assert await tx.user(bob) == a_profile("bob", user_id=bob)
            assert list(await tx.invitations_of(bob)) == [invitation_of_bob]
            assert list(await tx.contacts_of(bob)) == [bob_and_carol]
            assert list(await tx.blocks_of(carol)) == [carol_blocks_bob]
        async with store.transaction() as tx:
            await tx.delete_user(alice)  # deleting again is harmless

    # contacts and blocks

    async def test_a_contact_is_found_and_removed_whichever_order_the_ids_come_in(self, store: RoomsStore) -> None:
        low, high = users(2)
        request = a_contact(high, low)
        async with store.transaction() as tx:
            assert await tx.contact(low, high) is None
            await tx.put_contact(request)
        async with store.transaction() as tx:
            assert await tx.contact(low, high) == request
            assert await tx.contact(high, low) == request
            assert request.other(low) == high
            accepted = replace(request, accepted_at=T0 + HOUR)
            await tx.put_contact(accepted)
        async with store.transaction() as tx:
            assert await tx.contact(high, low) == accepted
            assert list(await tx.contacts_of(low)) == [accepted]
            assert await tx.remove_contact(high, low) is True
            assert await tx.remove_contact(low, high) is False
        async with store.transaction() as tx:
            assert await tx.contact(low, high) is None
            assert list(await tx.contacts_of(high)) == []

    async def test_contacts_of_lists_requests_and_contacts_newest_first(self, store: RoomsStore) -> None:
        alice, *others = users(5)
        contacts = [
            a_contact(alice, others[0], at=T0, accepted=True),
            a_contact(others[1], alice, at=T0 + HOUR),
            a_contact(alice, others[2], at=T0 + 2 * HOUR),
            a_contact(others[3], alice, at=T0 + 3 * HOUR, accepted=True),
        ]
        unrelated = a_contact(others[0], others[1], at=T0 + 4 * HOUR)
        async with store.transaction() as tx:
            for contact in (contacts[2], unrelated, contacts[0], contacts[3], contacts[1]):
                await tx.put_contact(contact)
        async with store.transaction() as tx:
            assert list(await tx.contacts_of(alice)) == contacts[::-1]
            assert list(await tx.contacts_of(others[1])) == [unrelated, contacts[1]]
            assert list(await tx.contacts_of(uuid.uuid4())) == []

    async def test_blocks_are_put_checked_listed_and_removed(self, store: RoomsStore) -> None:
        alice, bob, carol = users(3)
        blocks_bob = Block(blocker=alice, blocked=bob, created_at=T0)
        blocks_carol = Block(blocker=alice, blocked=carol, created_at=T0 + HOUR)
        async with store.transaction() as tx:
            await tx.put_block(blocks_bob)
            await tx.put_block(blocks_carol)
            await tx.put_block(Block(blocker=bob, blocked=carol, created_at=T0))
        async with store.transaction() as tx:
            assert await tx.blocked(alice, bob) is True
            assert await tx.blocked(bob, alice) is False
            assert await tx.blocked(carol, alice) is False
            assert set(await tx.blocks_of(alice)) == {blocks_bob, blocks_carol}
            assert list(await tx.blocks_of(carol)) == []
            assert await tx.remove_block(alice, bob) is True
            assert await tx.remove_block(alice, bob) is False
        async with store.transaction() as tx:
            assert await tx.blocked(alice, bob) is False
            assert list(await tx.blocks_of(alice)) == [blocks_carol]
            assert await tx.blocked(bob, carol) is True

    # throttling

    async def test_hits_count_up_within_a_window_and_start_over_in_the_next(self, store: RoomsStore) -> None:
        minute = timedelta(minutes=1)
        key = "room-password:203.0.113.7"
        async with store.transaction() as tx:
            assert await tx.hit(key, window=minute, now=T0) == 1
            assert await tx.hit(key, window=minute, now=T0 + timedelta(seconds=30)) == 2
        async with store.transaction() as tx:
            assert await tx.hit(key, window=minute, now=T0 + timedelta(seconds=59)) == 3
            assert await tx.hit("room-password:198.51.100.1", window=minute, now=T0 + timedelta(seconds=59)) == 1
            assert await tx.hit(key, window=minute, now=T0 + minute) == 1
        async with store.transaction() as tx:
            assert await tx.hit(key, window=minute, now=T0 + timedelta(seconds=61)) == 2

    async def test_failures_are_counted_until_cleared(self, store: RoomsStore) -> None:
        key = "room-password:alice"
        later = T0 + timedelta(seconds=10)
        async with store.transaction() as tx:
            assert await tx.failures(key) == Failures()
            assert await tx.record_failure(key, T0) == Failures(count=1, last_at=T0)
        async with store.transaction() as tx:
            assert await tx.record_failure(key, later) == Failures(count=2, last_at=later)
        async with store.transaction() as tx:
            assert await tx.failures(key) == Failures(count=2, last_at=later)
            assert await tx.failures("room-password:bob") == Failures()
            await tx.clear_failures(key)
        async with store.transaction() as tx:
            assert await tx.failures(key) == Failures()
            assert await tx.record_failure(key, later) == Failures(count=1, last_at=later)
            await tx.clear_failures("room-password:nobody")

    # consumed events

    async def test_an_event_is_marked_processed_only_once(self, store: RoomsStore) -> None:
        event, other = uuid.uuid4(), uuid.uuid4()
        async with store.transaction() as tx:
            assert await tx.mark_processed(event, at=T0) is True
            assert await tx.mark_processed(event, at=T0) is False
        async with store.transaction() as tx:
            assert await tx.mark_processed(event, at=T0 + HOUR) is False
            assert await tx.mark_processed(other, at=T0 + HOUR) is True

    # events

    async def test_events_emitted_in_a_committed_transaction_are_kept_in_order(self, store: RoomsStore) -> None:
        general, random = a_room("general"), a_room("random")
        first, second, third = an_event(general), an_event(random), an_event(general)
        async with store.transaction() as tx:
            await tx.add_room(general)
            await tx.emit(first, topic=ROOMS_EVENTS.name)
            await tx.emit(second, topic=ROOMS_EVENTS.name)
        async with store.transaction() as tx:
            await tx.emit(third, topic=ROOMS_EVENTS.name)
        emitted = await self.emitted(store)
        assert _ids(emitted) == [first.id, second.id, third.id]
        assert [envelope.model_dump() for envelope in emitted] == [e.model_dump() for e in (first, second, third)]

    async def test_events_emitted_in_a_rolled_back_transaction_are_discarded(self, store: RoomsStore) -> None:
        general, random = a_room("general"), a_room("random")
        kept, discarded = an_event(general), an_event(random)
        async with store.transaction() as tx:
            await tx.emit(kept, topic=ROOMS_EVENTS.name)

        async def work(tx: Tx) -> None:
            await tx.add_room(random)
            await tx.emit(discarded, topic=ROOMS_EVENTS.name)

        await roll_back(store, work)
        assert _ids(await self.emitted(store)) == [kept.id]
