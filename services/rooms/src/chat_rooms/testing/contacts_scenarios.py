"""Contacts and blocks through the HTTP API (runs with the rooms scenarios on both stores)."""

from __future__ import annotations

from chat_contracts import social
from chat_contracts.envelope import decode, encode
from chat_contracts.topics import SOCIAL_EVENTS
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
