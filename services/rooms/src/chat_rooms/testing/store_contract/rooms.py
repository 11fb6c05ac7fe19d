"""The store contract for rooms themselves: adding, reading, updating, archiving and deleting one, direct rooms by
their key; apart from the lists of rooms and the people in them, which assume these hold.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta

import pytest

from chat_contracts.topics import ROOMS_EVENTS
from chat_rooms.domain.errors import Conflict
from chat_rooms.domain.model import Ban, Block, Failures, Invitation
from chat_rooms.domain.rules import dm_key
from chat_rooms.service.ports import RoomsStore, Tx
from chat_rooms.testing.store_contract.builders import (
    HOUR,
    PASSWORD_HASH,
    T0,
    ReadsOutbox,
    a_contact,
    a_direct_room,
    a_membership,
    a_profile,
    a_room,
    an_event,
    ids_of,
    roll_back,
    users,
)


class RoomsContract(ReadsOutbox):
    """How a ``RoomsStore`` keeps one room."""

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
            assert ids_of(await tx.directory(query="lobby", after=None, limit=10)) == [room.id]
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
