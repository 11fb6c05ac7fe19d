"""The store contract for who is in a room and who may join it: memberships and roles, invitations and bans."""

from __future__ import annotations

import uuid
from dataclasses import replace

import pytest

from chat_rooms.domain.errors import Conflict
from chat_rooms.domain.model import Ban, Invitation
from chat_rooms.service.ports import RoomsStore
from chat_rooms.testing.store_contract.builders import HOUR, T0, a_direct_room, a_membership, a_room, users


class MembersContract:
    """How a ``RoomsStore`` keeps memberships, invitations and bans."""

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
