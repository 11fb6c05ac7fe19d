"""User lookups through the HTTP API (runs with the rooms scenarios on both stores)."""

from __future__ import annotations

import uuid
from typing import Any

from chat_contracts.users import UserDeleted, UserRegistered, UserUpdated
from chat_rooms.testing.harness import RoomsHarness, User


async def _lookup(rooms: RoomsHarness, asker: User, *ids: uuid.UUID | str) -> Any:
    response = await rooms.http.get(
        "/api/rooms/users", params={"ids": ",".join(str(i) for i in ids)}, headers=asker.headers
    )
    assert response.status_code == 200, response.text
    return response.json()


class UsersScenarios:
    async def test_ids_are_looked_up_in_the_order_asked_and_unknown_ones_left_out(self, rooms: RoomsHarness) -> None:
        ada, bob = await rooms.user("ada"), await rooms.user("Bob")
        found = await _lookup(rooms, ada, bob.id, uuid.uuid4(), ada.id, bob.id)
        assert found == [
            {"user_id": str(bob.id), "username": "Bob", "display_name": "Bob", "avatar_url": None},
            {"user_id": str(ada.id), "username": "ada", "display_name": "Ada", "avatar_url": None},
        ]
        assert await _lookup(rooms, ada, uuid.uuid4()) == []
        # Spaces around the commas and a trailing comma are forgiven.
        spaced = await rooms.http.get("/api/rooms/users", params={"ids": f" {ada.id} , {bob.id},"}, headers=ada.headers)
        assert [u["username"] for u in spaced.json()] == ["ada", "Bob"]

    async def test_a_username_finds_its_user_in_any_case(self, rooms: RoomsHarness) -> None:
        ada, bob = await rooms.user("ada"), await rooms.user("Bob")
        for spelled in ("Bob", "bob", "BOB", "\uff22\uff4f\uff42"):  # the last is fullwidth: NFKC makes it Bob
            response = await rooms.http.get(f"/api/rooms/users/by-username/{spelled}", headers=ada.headers)
            assert response.status_code == 200, response.text
            assert response.json() == {
                "user_id": str(bob.id),
                "username": "Bob",
                "display_name": "Bob",
                "avatar_url": None,
            }
        missing = await rooms.http.get("/api/rooms/users/by-username/nobody", headers=ada.headers)
        assert (missing.status_code, missing.json()["code"]) == (404, "user_not_found")
        assert missing.headers["content-type"].startswith("application/problem+json")

    async def test_lookups_need_a_signed_in_user(self, rooms: RoomsHarness) -> None:
        ada = await rooms.user("ada")
        for path in (f"/api/rooms/users?ids={ada.id}", "/api/rooms/users/by-username/ada"):
            response = await rooms.http.get(path)
            assert (response.status_code, response.json()["code"]) == (401, "unauthenticated")

    async def test_bad_lookups_are_refused_with_a_code(self, rooms: RoomsHarness) -> None:
        ada = await rooms.user("ada")
        hundred = [uuid.uuid4() for _ in range(100)]
        assert await _lookup(rooms, ada, *hundred) == []
        cases = [
            ("/api/rooms/users", "validation_failed"),
            ("/api/rooms/users?ids=", "validation_failed"),
            ("/api/rooms/users?ids=,", "invalid_ids"),
            ("/api/rooms/users?ids=not-a-uuid", "invalid_ids"),
            (f"/api/rooms/users?ids={ada.id},42", "invalid_ids"),
            ("/api/rooms/users?ids=" + ",".join(str(i) for i in [*hundred, uuid.uuid4()]), "validation_failed"),
            ("/api/rooms/users?ids=" + ",".join(i.hex for i in [*hundred, uuid.uuid4()]), "invalid_ids"),
            ("/api/rooms/users/by-username/" + "x" * 65, "validation_failed"),
        ]
        for path, code in cases:
            response = await rooms.http.get(path, headers=ada.headers)
            assert response.status_code == 422, (path, response.text)
            assert response.json()["code"] == code, path

    async def test_lookups_follow_profile_changes_and_deletions(self, rooms: RoomsHarness) -> None:
        ada, bob = await rooms.user("ada"), await rooms.user("bob")
        await rooms.deliver(
            UserUpdated(
                user_id=bob.id,
                username="robert",
                display_name="Robert B.",
                avatar_url="/api/auth/avatars/bob.png",
                occurred_at=rooms.clock(),
            )
        )
        assert await _lookup(rooms, ada, bob.id) == [
            {
                "user_id": str(bob.id),
                "username": "robert",
                "display_name": "Robert B.",
                "avatar_url": "/api/auth/avatars/bob.png",
            }
        ]
        assert (await rooms.http.get("/api/rooms/users/by-username/bob", headers=ada.headers)).status_code == 404
        robert = await rooms.http.get("/api/rooms/users/by-username/Robert", headers=ada.headers)
        assert robert.json()["user_id"] == str(bob.id)
        # A deleted account is dropped from the projection: no longer found either way.
        await rooms.deliver(UserDeleted(user_id=bob.id, occurred_at=rooms.clock()))
        assert await _lookup(rooms, ada, bob.id, ada.id) == [
            {"user_id": str(ada.id), "username": "ada", "display_name": "Ada", "avatar_url": None}
        ]
        assert (await rooms.http.get("/api/rooms/users/by-username/robert", headers=ada.headers)).status_code == 404

    async def test_a_username_taken_over_finds_the_newcomer_while_ids_still_find_both(
        self, rooms: RoomsHarness
    ) -> None:
        ada, sam = await rooms.user("ada"), await rooms.user("sam")
        newcomer = uuid.uuid4()
        await rooms.deliver(
            UserRegistered(
                user_id=newcomer, username="Sam", display_name="New Sam", email_verified=True, occurred_at=rooms.clock()
            )
        )
        found = (await rooms.http.get("/api/rooms/users/by-username/sam", headers=ada.headers)).json()
        assert found["user_id"] == str(newcomer)
        # The previous holder keeps their last known profile until their own rename arrives.
        assert [u["user_id"] for u in await _lookup(rooms, ada, sam.id, newcomer)] == [str(sam.id), str(newcomer)]
