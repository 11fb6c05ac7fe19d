"""Contacts and blocks through the HTTP API (runs with the rooms scenarios on both stores)."""

from __future__ import annotations

import uuid

from chat_contracts import social
from chat_contracts.envelope import decode, encode
from chat_contracts.topics import ROOMS_EVENTS, SOCIAL_EVENTS
from chat_rooms.domain.model import Contact, Invitation
from chat_rooms.testing.harness import RoomsHarness, User


async def _state(rooms: RoomsHarness, user: User) -> dict[str, str]:
    listed = (await rooms.http.get("/api/rooms/contacts", headers=user.headers)).json()
    return {c["username"]: c["state"] for c in listed}


class ContactsScenarios:
    async def test_a_contact_request_is_accepted_and_both_see_each_other(self, rooms: RoomsHarness) -> None:
        ada, bob = await rooms.user("ada"), await rooms.user("bob")
        asked = await rooms.http.post("/api/rooms/contacts", json={"user_id": str(bob.id)}, headers=ada.headers)
        assert asked.json() == {"state": "outgoing"}
        assert await _state(rooms, bob) == {"ada": "incoming"}
        accepted = await rooms.http.post(f"/api/rooms/contacts/{ada.id}/accept", headers=bob.headers)
        assert accepted.status_code == 204
        assert await _state(rooms, ada) == {"bob": "contact"}
        assert await _state(rooms, bob) == {"ada": "contact"}
        social_events = [e for e in await rooms.events() if e.type.startswith("contact.")]
        assert [e.type for e in social_events] == ["contact.requested", "contact.accepted"]
        for envelope in social_events:
            assert decode(encode(envelope, topic=SOCIAL_EVENTS.name), SOCIAL_EVENTS) == envelope

    async def test_crossing_requests_make_contacts_at_once(self, rooms: RoomsHarness) -> None:
        ada, bob = await rooms.user("ada"), await rooms.user("bob")
        await rooms.http.post("/api/rooms/contacts", json={"user_id": str(bob.id)}, headers=ada.headers)
        crossing = await rooms.http.post("/api/rooms/contacts", json={"user_id": str(ada.id)}, headers=bob.headers)
        assert crossing.json() == {"state": "contact"}

    async def test_requests_can_be_declined_or_cancelled_and_contacts_removed(self, rooms: RoomsHarness) -> None:
        ada, bob, cat = await rooms.user("ada"), await rooms.user("bob"), await rooms.user("cat")
        await rooms.http.post("/api/rooms/contacts", json={"user_id": str(bob.id)}, headers=ada.headers)
        declined = await rooms.http.delete(f"/api/rooms/contacts/{ada.id}", headers=bob.headers)
        assert declined.json() == {"state": "declined"}
        await rooms.http.post("/api/rooms/contacts", json={"user_id": str(cat.id)}, headers=ada.headers)
        cancelled = await rooms.http.delete(f"/api/rooms/contacts/{cat.id}", headers=ada.headers)
        assert cancelled.json() == {"state": "cancelled"}
        await rooms.http.post("/api/rooms/contacts", json={"user_id": str(bob.id)}, headers=ada.headers)
        await rooms.http.post(f"/api/rooms/contacts/{ada.id}/accept", headers=bob.headers)
        removed = await rooms.http.delete(f"/api/rooms/contacts/{bob.id}", headers=ada.headers)
        assert removed.json() == {"state": "removed"}
        assert await _state(rooms, ada) == {}
        reasons = [e.data.reason for e in await rooms.events() if isinstance(e.data, social.ContactEnded)]
        assert reasons == ["declined", "cancelled", "removed"]

    async def test_a_block_stops_direct_messages_invitations_and_requests_until_lifted(
        self, rooms: RoomsHarness
    ) -> None:
        ada, bob = await rooms.user("ada"), await rooms.user("bob")
        await rooms.http.post("/api/rooms/contacts", json={"user_id": str(bob.id)}, headers=ada.headers)
        await rooms.http.post(f"/api/rooms/contacts/{ada.id}/accept", headers=bob.headers)
        assert (
            await rooms.http.post("/api/rooms/blocks", json={"user_id": str(bob.id)}, headers=ada.headers)
        ).status_code == 204
        assert await _state(rooms, ada) == {}, "blocking ends the contact"
        room = await rooms.create(bob, "private", "bobs room")
        refused = [
            await rooms.http.post("/api/rooms/direct", json={"user_id": str(ada.id)}, headers=bob.headers),
            await rooms.http.post("/api/rooms/direct", json={"user_id": str(bob.id)}, headers=ada.headers),
            await rooms.http.post(
                f"/api/rooms/{room['id']}/invitations", json={"user_id": str(ada.id)}, headers=bob.headers
            ),
            await rooms.http.post("/api/rooms/contacts", json={"user_id": str(ada.id)}, headers=bob.headers),
        ]
        assert [(r.status_code, r.json()["code"]) for r in refused] == [(403, "blocked")] * 4
        blocked = (await rooms.http.get("/api/rooms/blocks", headers=ada.headers)).json()
        assert [b["user_id"] for b in blocked] == [str(bob.id)]
        assert (await rooms.http.delete(f"/api/rooms/blocks/{bob.id}", headers=ada.headers)).status_code == 204
        dm = await rooms.http.post("/api/rooms/direct", json={"user_id": str(ada.id)}, headers=bob.headers)
        assert dm.status_code == 201
        kinds = [e.type for e in await rooms.events() if e.type.startswith("user.")]
        assert kinds == ["user.blocked", "user.unblocked"]

    async def test_contact_and_block_requests_about_nobody_or_yourself_are_refused(self, rooms: RoomsHarness) -> None:
        ada = await rooms.user("ada")
        me = await rooms.http.post("/api/rooms/contacts", json={"user_id": str(ada.id)}, headers=ada.headers)
        assert (me.status_code, me.json()["code"]) == (422, "invalid_target")
        ghost = await rooms.http.post(
            "/api/rooms/blocks", json={"user_id": "00000000-0000-4000-8000-000000000000"}, headers=ada.headers
        )
        assert (ghost.status_code, ghost.json()["code"]) == (404, "user_not_found")
        nothing = await rooms.http.delete("/api/rooms/blocks/00000000-0000-4000-8000-000000000000", headers=ada.headers)
        assert nothing.json()["code"] == "block_not_found"

    async def test_a_block_closes_the_direct_room_until_every_block_between_the_two_is_lifted(
        self, rooms: RoomsHarness
    ) -> None:
        ada, bob = await rooms.user("ada"), await rooms.user("bob")
        dm = (await rooms.http.post("/api/rooms/direct", json={"user_id": str(bob.id)}, headers=ada.headers)).json()

        async def blocked() -> list[bool]:
            seen = [await rooms.http.get(f"/api/rooms/{dm['id']}", headers=u.headers) for u in (ada, bob)]
            assert [r.json()["my_role"] for r in seen] == ["member", "member"], "the room stays, with both in it"
            return [r.json()["blocked"] for r in seen]

        assert dm["blocked"] is False
        await rooms.http.post("/api/rooms/blocks", json={"user_id": str(bob.id)}, headers=ada.headers)
        assert await blocked() == [True, True]
        await rooms.http.post("/api/rooms/blocks", json={"user_id": str(ada.id)}, headers=bob.headers)
        await rooms.http.delete(f"/api/rooms/blocks/{bob.id}", headers=ada.headers)
        assert await blocked() == [True, True], "bob's own block still stands"
        await rooms.http.delete(f"/api/rooms/blocks/{ada.id}", headers=bob.headers)
        assert await blocked() == [False, False]
        events = [e for e in await rooms.events() if e.key == dm["id"]]
        changes = [(e.type, e.data.room_version) for e in events[3:]]  # type: ignore[attr-defined]
        assert changes == [("room.blocked", 4), ("room.unblocked", 5)], "one event per change of state"
        for envelope in events:
            assert decode(encode(envelope, topic=ROOMS_EVENTS.name), ROOMS_EVENTS) == envelope

    async def test_neither_side_of_a_block_can_bring_the_other_into_a_room_or_a_contact(
        self, rooms: RoomsHarness
    ) -> None:
        ada, bob, cat = await rooms.user("ada"), await rooms.user("bob"), await rooms.user("cat")
        adas = await rooms.create(ada, "private", "adas room")
        bobs = await rooms.create(bob, "private", "bobs room")
        await rooms.http.post("/api/rooms/blocks", json={"user_id": str(bob.id)}, headers=ada.headers)
        for me, other, mine in ((ada, bob, adas), (bob, ada, bobs)):  # the blocker first, then the blocked
            group = {"kind": "group_dm", "members": [str(other.id), str(cat.id)]}
            refused = [
                await rooms.http.post("/api/rooms", json=group, headers=me.headers),
                await rooms.http.post(
                    f"/api/rooms/{mine['id']}/invitations", json={"user_id": str(other.id)}, headers=me.headers
                ),
                await rooms.http.post("/api/rooms/contacts", json={"user_id": str(other.id)}, headers=me.headers),
                await rooms.http.post("/api/rooms/direct", json={"user_id": str(other.id)}, headers=me.headers),
            ]
            assert [(r.status_code, r.json()["code"]) for r in refused] == [(403, "blocked")] * 4, me.username
        mine = (await rooms.http.get("/api/rooms/mine", headers=ada.headers)).json()["items"]
        assert [r["kind"] for r in mine] == ["private"], "no group conversation was made"
        with_cat = await rooms.http.post(
            "/api/rooms", json={"kind": "group_dm", "members": [str(cat.id)]}, headers=ada.headers
        )
        assert with_cat.status_code == 201, "a block concerns only the two people"

    async def test_a_block_withdraws_the_invitations_between_the_two(self, rooms: RoomsHarness) -> None:
        ada, bob = await rooms.user("ada"), await rooms.user("bob")
        adas = await rooms.create(ada, "private", "adas room")
        bobs = await rooms.create(bob, "private", "bobs room")
        for inviter, invitee, room in ((ada, bob, adas), (bob, ada, bobs)):
            invited = await rooms.http.post(
                f"/api/rooms/{room['id']}/invitations", json={"user_id": str(invitee.id)}, headers=inviter.headers
            )
            assert invited.status_code == 204
        await rooms.http.post("/api/rooms/blocks", json={"user_id": str(bob.id)}, headers=ada.headers)
        for invitee, room in ((bob, adas), (ada, bobs)):
            assert (await rooms.http.get("/api/rooms/invitations", headers=invitee.headers)).json() == []
            accepted = await rooms.http.post(f"/api/rooms/{room['id']}/invitation/accept", headers=invitee.headers)
            assert accepted.json()["code"] == "invitation_not_found"

    async def test_an_invitation_or_request_that_slipped_past_a_block_cannot_be_accepted(
        self, rooms: RoomsHarness
    ) -> None:
        ada, bob = await rooms.user("ada"), await rooms.user("bob")
        bobs = await rooms.create(bob, "private", "bobs room")
        await rooms.http.post("/api/rooms/blocks", json={"user_id": str(bob.id)}, headers=ada.headers)
        # What a request racing the block could leave behind.
        now = rooms.clock()
        async with rooms.module.context.store.transaction() as tx:
            await tx.put_invitation(
                Invitation(room_id=uuid.UUID(bobs["id"]), user_id=ada.id, invited_by=bob.id, created_at=now)
            )
            low, high = sorted((ada.id, bob.id))
            await tx.put_contact(Contact(user_low=low, user_high=high, requested_by=bob.id, created_at=now))
        joined = await rooms.http.post(f"/api/rooms/{bobs['id']}/invitation/accept", headers=ada.headers)
        contact = await rooms.http.post(f"/api/rooms/contacts/{bob.id}/accept", headers=ada.headers)
        assert [(r.status_code, r.json()["code"]) for r in (joined, contact)] == [(403, "blocked")] * 2
