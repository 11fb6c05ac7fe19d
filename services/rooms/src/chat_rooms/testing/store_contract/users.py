"""The store contract for users: the profiles projected from the auth service's events, and the contacts and
blocks between two users; apart from rooms, since they belong to users whatever rooms they share.
"""

from __future__ import annotations

import uuid
from dataclasses import replace

from chat_rooms.domain.model import Block, Invitation
from chat_rooms.service.ports import RoomsStore
from chat_rooms.testing.store_contract.builders import HOUR, T0, a_contact, a_membership, a_profile, a_room, users


class UsersContract:
    """How a ``RoomsStore`` keeps user profiles, contacts and blocks."""

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
