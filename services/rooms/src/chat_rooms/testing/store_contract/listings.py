"""The store contract for lists of rooms: the public directory (search, order, cursor) and the rooms of a user;
apart from single rooms, since each list has its own orders and pages to check.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from chat_rooms.domain.model import Room, RoomListing
from chat_rooms.service.ports import RoomsStore
from chat_rooms.testing.store_contract.builders import (
    HOUR,
    T0,
    a_direct_room,
    a_membership,
    a_room,
    cursor_after,
    ids_of,
    users,
)


class ListingsContract:
    """How a ``RoomsStore`` lists the directory and a user's rooms."""

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
                return ids_of(await tx.directory(query=query, after=None, limit=10))

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
            listed = ids_of(await tx.directory(query=None, after=None, limit=10))
        assert listed == [rooms[4].id, *ids_of(lobbies), rooms[5].id, rooms[0].id]

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
                    after = cursor_after(page[-1])
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
                return ids_of(await tx.directory(query=query, after=None, limit=10))

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
