"""The rooms service's behaviour through its HTTP API. Runs on the in-memory fake store (unit tests) and on
PostgreSQL (integration tests): subclasses provide the ``rooms`` fixture (a RoomsHarness)."""

from __future__ import annotations

import uuid
from typing import Any

from chat_contracts import rooms as ev
from chat_contracts.envelope import decode, encode
from chat_contracts.topics import ROOMS_EVENTS
from chat_contracts.users import UserDeleted, UserUpdated
from chat_rooms.entrypoints.bus import BusEntrypoints
from chat_rooms.testing.harness import RoomsHarness


def _types(events: list[Any]) -> list[str]:
    return [e.type for e in events]


class RoomsScenarios:
    """Every scenario starts from an empty service."""

    # --- creating and finding ------------------------------------------------------------------------------

    async def test_creating_a_room_makes_the_caller_its_owner_and_announces_both(self, rooms: RoomsHarness) -> None:
        ada = await rooms.user("ada")
        room = await rooms.create(ada, "public", "General", topic="anything goes")
        assert room["my_role"] == "owner"
        assert room["member_count"] == 1
        events = [e for e in await rooms.events() if e.key == room["id"]]
        assert _types(events) == ["room.created", "room.member_joined"]
        assert [e.data.room_version for e in events] == [1, 2]  # type: ignore[attr-defined]
        for envelope in events:
            assert decode(encode(envelope, topic=ROOMS_EVENTS.name), ROOMS_EVENTS) == envelope

    async def test_an_unverified_account_cannot_create_rooms(self, rooms: RoomsHarness) -> None:
        eve = await rooms.user("eve", verified=False)
        response = await rooms.http.post("/api/rooms", json={"kind": "public", "name": "x"}, headers=eve.headers)
        assert response.status_code == 403
        assert response.json()["code"] == "email_unverified"

    async def test_requests_without_a_valid_token_are_refused_with_a_code(self, rooms: RoomsHarness) -> None:
        assert (await rooms.http.get("/api/rooms")).json()["code"] == "unauthenticated"
        bad = await rooms.http.get("/api/rooms", headers={"Authorization": "Bearer not.a.token"})
        assert bad.status_code == 401
        assert bad.json()["code"].startswith("token_")

    async def test_bad_input_is_refused_with_a_clear_code(self, rooms: RoomsHarness) -> None:
        ada = await rooms.user("ada")
        cases = [
            ({"kind": "public", "name": "x" * 81}, "invalid_name"),
            ({"kind": "public", "name": "ok", "topic": "a\nb"}, "invalid_topic"),
            ({"kind": "password", "name": "pw"}, "room_password_required"),
            ({"kind": "public", "name": "ok", "password": "secret1"}, "invalid_room_password"),
            ({"kind": "public", "name": "ok", "color": "red"}, "validation_failed"),
            ({"kind": "direct", "name": "ok"}, "validation_failed"),
        ]
        for body, code in cases:
            response = await rooms.http.post("/api/rooms", json=body, headers=ada.headers)
            assert response.status_code == 422, (body, response.text)
            assert response.json()["code"] == code, body
        cursor = await rooms.http.get("/api/rooms?cursor=garbage", headers=ada.headers)
        assert cursor.json()["code"] == "invalid_cursor"

    async def test_the_directory_finds_rooms_by_any_part_of_the_name_in_any_case(self, rooms: RoomsHarness) -> None:
        ada = await rooms.user("ada")
        for name in ("General", "Engineering general", "random", "Gen-Z"):
            await rooms.create(ada, "public", name)
        await rooms.create(ada, "password", "General secrets", password="letmein")
        await rooms.create(ada, "private", "general-private")
        response = await rooms.http.get("/api/rooms", params={"q": "GEN"}, headers=ada.headers)
        names = [r["name"] for r in response.json()["items"]]
        assert names == ["Engineering general", "Gen-Z", "General", "General secrets"]
        literal = await rooms.http.get("/api/rooms", params={"q": "%"}, headers=ada.headers)
        assert literal.json()["items"] == []

    async def test_directory_pages_return_every_room_exactly_once(self, rooms: RoomsHarness) -> None:
        ada = await rooms.user("ada")
        for i in range(7):
            await rooms.create(ada, "public", f"room {i}")
        seen: list[str] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 3, **({"cursor": cursor} if cursor else {})}
            page = (await rooms.http.get("/api/rooms", params=params, headers=ada.headers)).json()
            seen += [r["id"] for r in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert len(seen) == 7 == len(set(seen))

    async def test_my_rooms_lists_memberships_newest_first_with_my_role(self, rooms: RoomsHarness) -> None:
        ada, bob = await rooms.user("ada"), await rooms.user("bob")
        first = await rooms.create(ada, "public", "first")
        rooms.clock.advance(seconds=1)
        second = await rooms.create(bob, "public", "second")
        rooms.clock.advance(seconds=1)
        assert (await rooms.join(ada, second["id"])).status_code == 200
        mine = (await rooms.http.get("/api/rooms/mine", headers=ada.headers)).json()["items"]
        assert [(r["id"], r["my_role"]) for r in mine] == [(second["id"], "member"), (first["id"], "owner")]

    # --- joining ---------------------------------------------------------------------------------------------

    async def test_anyone_verified_joins_a_public_room_once(self, rooms: RoomsHarness) -> None:
        ada, bob = await rooms.user("ada"), await rooms.user("bob")
        room = await rooms.create(ada)
        joined = await rooms.join(bob, room["id"])
        again = await rooms.join(bob, room["id"])
        assert joined.status_code == again.status_code == 200
        assert again.json()["member_count"] == 2
        joins = [e for e in await rooms.events() if isinstance(e.data, ev.MemberJoined) and e.data.user_id == bob.id]
        assert len(joins) == 1

    async def test_a_private_room_is_invisible_until_you_are_invited(self, rooms: RoomsHarness) -> None:
        ada, bob = await rooms.user("ada"), await rooms.user("bob")
        room = await rooms.create(ada, "private", "secret plans")
        for response in (
            await rooms.http.get(f"/api/rooms/{room['id']}", headers=bob.headers),
            await rooms.http.get(f"/api/rooms/{room['id']}/members", headers=bob.headers),
            await rooms.join(bob, room["id"]),
        ):
            assert response.status_code == 404
            assert response.json()["code"] == "room_not_found"
        invited = await rooms.http.post(
            f"/api/rooms/{room['id']}/invitations", json={"user_id": str(bob.id)}, headers=ada.headers
        )
        assert invited.status_code == 204
        pending = (await rooms.http.get("/api/rooms/invitations", headers=bob.headers)).json()
        assert [p["room"]["id"] for p in pending] == [room["id"]]
        accepted = await rooms.http.post(f"/api/rooms/{room['id']}/invitation/accept", headers=bob.headers)
        assert accepted.json()["my_role"] == "member"
        assert (await rooms.http.get("/api/rooms/invitations", headers=bob.headers)).json() == []

    async def test_a_declined_invitation_is_gone(self, rooms: RoomsHarness) -> None:
        ada, bob = await rooms.user("ada"), await rooms.user("bob")
        room = await rooms.create(ada, "private", "p")
        await rooms.http.post(
            f"/api/rooms/{room['id']}/invitations", json={"user_id": str(bob.id)}, headers=ada.headers
        )
        assert (
            await rooms.http.post(f"/api/rooms/{room['id']}/invitation/decline", headers=bob.headers)
        ).status_code == 204
        assert (await rooms.join(bob, room["id"])).status_code == 404

    async def test_a_password_room_needs_its_password_and_throttles_guessing(self, rooms: RoomsHarness) -> None:
        ada, bob = await rooms.user("ada"), await rooms.user("bob")
        room = await rooms.create(ada, "password", "vault", password="open sesame")
        assert (await rooms.http.get(f"/api/rooms/{room['id']}", headers=bob.headers)).json()[
            "password_protected"
        ] is True
        statuses = []
        for _ in range(6):
            response = await rooms.join(bob, room["id"], password="wrong")
            statuses.append((response.status_code, response.json()["code"]))
        assert statuses[:5] == [(403, "wrong_room_password")] * 5
        assert statuses[5] == (429, "rate_limited")
        rooms.clock.advance(seconds=2)
        assert (await rooms.join(bob, room["id"], password="open sesame")).status_code == 200

    async def test_banned_users_cannot_come_back_until_unbanned(self, rooms: RoomsHarness) -> None:
        ada, bob = await rooms.user("ada"), await rooms.user("bob")
        room = await rooms.create(ada)
        await rooms.join(bob, room["id"])
        banned = await rooms.http.post(
            f"/api/rooms/{room['id']}/bans", json={"user_id": str(bob.id), "reason": "spam"}, headers=ada.headers
        )
        assert banned.status_code == 204
        again = await rooms.join(bob, room["id"])
        assert (again.status_code, again.json()["code"]) == (403, "banned")
        invite = await rooms.http.post(
            f"/api/rooms/{room['id']}/invitations", json={"user_id": str(bob.id)}, headers=ada.headers
        )
        assert invite.json()["code"] == "banned"
        assert (
            await rooms.http.delete(f"/api/rooms/{room['id']}/bans/{bob.id}", headers=ada.headers)
        ).status_code == 204
        assert (await rooms.join(bob, room["id"])).status_code == 200
        kinds = _types([e for e in await rooms.events() if e.key == room["id"]])
        assert "room.member_banned" in kinds
        assert "room.member_unbanned" in kinds

    # --- direct messages ---------------------------------------------------------------------------------------

    async def test_a_direct_conversation_is_created_once_whoever_asks(self, rooms: RoomsHarness) -> None:
        ada, bob = await rooms.user("ada"), await rooms.user("bob")
        first = await rooms.http.post("/api/rooms/direct", json={"user_id": str(bob.id)}, headers=ada.headers)
        second = await rooms.http.post("/api/rooms/direct", json={"user_id": str(ada.id)}, headers=bob.headers)
        assert (first.status_code, second.status_code) == (201, 200)
        assert first.json()["id"] == second.json()["id"]
        assert first.json()["member_count"] == 2

    async def test_direct_messages_respect_blocks_and_need_someone_else(self, rooms: RoomsHarness) -> None:
        ada = await rooms.user("ada")
        self_dm = await rooms.http.post("/api/rooms/direct", json={"user_id": str(ada.id)}, headers=ada.headers)
        assert self_dm.status_code == 422
        nobody = await rooms.http.post("/api/rooms/direct", json={"user_id": str(uuid.uuid4())}, headers=ada.headers)
        assert nobody.json()["code"] == "user_not_found"

    # --- roles and moderation -----------------------------------------------------------------------------------

    async def test_roles_decide_who_may_kick_whom(self, rooms: RoomsHarness) -> None:
        owner, admin, member, other = [await rooms.user(n) for n in ("owner1", "admin1", "member1", "other1")]
        room = await rooms.create(owner)
        for user in (admin, member, other):
            await rooms.join(user, room["id"])
        promoted = await rooms.http.put(
            f"/api/rooms/{room['id']}/members/{admin.id}/role", json={"role": "admin"}, headers=owner.headers
        )
        assert promoted.json()["role"] == "admin"
        refused = [
            await rooms.http.post(f"/api/rooms/{room['id']}/members/{other.id}/kick", headers=member.headers),
            await rooms.http.post(f"/api/rooms/{room['id']}/members/{owner.id}/kick", headers=admin.headers),
            await rooms.http.put(
                f"/api/rooms/{room['id']}/members/{member.id}/role", json={"role": "admin"}, headers=admin.headers
            ),
        ]
        assert [(r.status_code, r.json()["code"]) for r in refused] == [(403, "forbidden_role")] * 3
        kicked = await rooms.http.post(
            f"/api/rooms/{room['id']}/members/{other.id}/kick", json={"reason": "off-topic"}, headers=admin.headers
        )
        assert kicked.status_code == 204
        check = await rooms.http.get(f"/api/rooms/{room['id']}/members/{other.id}", headers=owner.headers)
        assert check.status_code == 404

    async def test_the_owner_transfers_ownership_before_leaving(self, rooms: RoomsHarness) -> None:
        ada, bob = await rooms.user("ada"), await rooms.user("bob")
        room = await rooms.create(ada)
        await rooms.join(bob, room["id"])
        early = await rooms.http.post(f"/api/rooms/{room['id']}/leave", headers=ada.headers)
        assert (early.status_code, early.json()["code"]) == (409, "owner_must_transfer")
        assert (
            await rooms.http.post(
                f"/api/rooms/{room['id']}/transfer", json={"user_id": str(bob.id)}, headers=ada.headers
            )
        ).status_code == 204
        assert (await rooms.http.post(f"/api/rooms/{room['id']}/leave", headers=ada.headers)).status_code == 204
        view = (await rooms.http.get(f"/api/rooms/{room['id']}", headers=bob.headers)).json()
        assert (view["my_role"], view["member_count"]) == ("owner", 1)

    async def test_the_last_member_leaving_deletes_the_room(self, rooms: RoomsHarness) -> None:
        ada = await rooms.user("ada")
        room = await rooms.create(ada)
        assert (await rooms.http.post(f"/api/rooms/{room['id']}/leave", headers=ada.headers)).status_code == 204
        assert (await rooms.http.get(f"/api/rooms/{room['id']}", headers=ada.headers)).status_code == 404
        assert _types([e for e in await rooms.events() if e.key == room["id"]])[-1] == "room.deleted"

    async def test_an_archived_room_is_read_only_until_unarchived(self, rooms: RoomsHarness) -> None:
        ada, bob = await rooms.user("ada"), await rooms.user("bob")
        room = await rooms.create(ada)
        assert (await rooms.http.post(f"/api/rooms/{room['id']}/archive", headers=ada.headers)).json()[
            "archived"
        ] is True
        refused = [
            await rooms.http.patch(f"/api/rooms/{room['id']}", json={"topic": "new"}, headers=ada.headers),
            await rooms.http.post(
                f"/api/rooms/{room['id']}/invitations", json={"user_id": str(bob.id)}, headers=ada.headers
            ),
            await rooms.join(bob, room["id"]),
        ]
        assert [r.json()["code"] for r in refused] == ["room_archived"] * 3
        assert (await rooms.http.get(f"/api/rooms/{room['id']}", headers=ada.headers)).status_code == 200
        assert (await rooms.http.post(f"/api/rooms/{room['id']}/unarchive", headers=ada.headers)).json()[
            "archived"
        ] is False
        assert (await rooms.join(bob, room["id"])).status_code == 200

    async def test_settings_changes_are_saved_and_announced_with_a_growing_version(self, rooms: RoomsHarness) -> None:
        ada = await rooms.user("ada")
        room = await rooms.create(ada)
        updated = await rooms.http.patch(
            f"/api/rooms/{room['id']}", json={"name": "Lobby", "topic": "hi", "history": "joined"}, headers=ada.headers
        )
        assert updated.json()["name"] == "Lobby"
        assert updated.json()["version"] > room["version"]
        last = [e for e in await rooms.events() if e.key == room["id"]][-1]
        assert isinstance(last.data, ev.RoomUpdated)
        assert (last.data.name, last.data.history) == ("Lobby", "joined")

    async def test_deleting_a_room_tells_everyone_and_it_is_gone(self, rooms: RoomsHarness) -> None:
        ada, bob = await rooms.user("ada"), await rooms.user("bob")
        room = await rooms.create(ada)
        await rooms.join(bob, room["id"])
        assert (await rooms.http.delete(f"/api/rooms/{room['id']}", headers=bob.headers)).json()[
            "code"
        ] == "forbidden_role"
        assert (await rooms.http.delete(f"/api/rooms/{room['id']}", headers=ada.headers)).status_code == 204
        assert (await rooms.http.get(f"/api/rooms/{room['id']}", headers=bob.headers)).status_code == 404

    async def test_group_conversations_let_members_invite_up_to_the_size_limit(self, rooms: RoomsHarness) -> None:
        people = [await rooms.user(f"p{i}") for i in range(11)]
        group = await rooms.create(people[0], "group_dm", None, members=[str(p.id) for p in people[1:3]])
        assert group["member_count"] == 3
        for person in people[3:10]:
            invited = await rooms.http.post(
                f"/api/rooms/{group['id']}/invitations", json={"user_id": str(person.id)}, headers=people[1].headers
            )
            assert invited.status_code == 204
            await rooms.http.post(f"/api/rooms/{group['id']}/invitation/accept", headers=person.headers)
        full = await rooms.http.post(
            f"/api/rooms/{group['id']}/invitations", json={"user_id": str(people[10].id)}, headers=people[1].headers
        )
        assert (full.status_code, full.json()["code"]) == (409, "room_full")

    # --- other services and the users projection ----------------------------------------------------------------

    async def test_the_membership_check_answers_members_and_hides_from_strangers(self, rooms: RoomsHarness) -> None:
        ada, bob, eve = await rooms.user("ada"), await rooms.user("bob"), await rooms.user("eve")
        room = await rooms.create(ada, "private", "p")
        ok = await rooms.http.get(f"/api/rooms/{room['id']}/members/{ada.id}", headers=ada.headers)
        assert ok.json()["role"] == "owner"
        assert (
            await rooms.http.get(f"/api/rooms/{room['id']}/members/{ada.id}", headers=eve.headers)
        ).status_code == 404
        assert (
            await rooms.http.get(f"/api/rooms/{room['id']}/members/{bob.id}", headers=ada.headers)
        ).status_code == 404

    async def test_a_deleted_account_leaves_every_room_and_ownership_passes_on(self, rooms: RoomsHarness) -> None:
        ada, bob = await rooms.user("ada"), await rooms.user("bob")
        shared = await rooms.create(ada, "public", "shared")
        alone = await rooms.create(ada, "public", "alone")
        await rooms.join(bob, shared["id"])
        envelope = await rooms.deliver(UserDeleted(user_id=ada.id, occurred_at=rooms.clock()))
        await rooms.deliver(UserDeleted(user_id=ada.id, occurred_at=rooms.clock()))
        view = (await rooms.http.get(f"/api/rooms/{shared['id']}", headers=bob.headers)).json()
        assert (view["my_role"], view["member_count"]) == ("owner", 1)
        assert (await rooms.http.get(f"/api/rooms/{alone['id']}", headers=bob.headers)).status_code == 404
        before = len(await rooms.events())
        await BusEntrypoints(rooms.module.context).on_user_event(envelope)
        assert len(await rooms.events()) == before, "a redelivered event changes nothing"

    async def test_a_renamed_user_is_found_under_the_new_name(self, rooms: RoomsHarness) -> None:
        ada = await rooms.user("ada")
        await rooms.deliver(UserUpdated(user_id=ada.id, username="ada2", display_name="Ada", occurred_at=rooms.clock()))
        async with rooms.module.context.store.transaction() as tx:
            assert (await tx.user_by_username("ADA2")) is not None
            assert await tx.user_by_username("ada") is None

    # --- the non-member matrix -------------------------------------------------------------------------------------

    async def test_non_members_can_neither_see_private_data_nor_change_anything(self, rooms: RoomsHarness) -> None:
        owner = await rooms.user("owner")
        strangers = [await rooms.user(f"stranger{i}") for i in range(3)]
        target = await rooms.user("target")
        created = [
            await rooms.create(owner, "public", "pub"),
            await rooms.create(owner, "private", "priv"),
            await rooms.create(owner, "password", "pw", password="right one"),
            await rooms.create(owner, "group_dm", None, members=[str(target.id)]),
            (
                await rooms.http.post("/api/rooms/direct", json={"user_id": str(target.id)}, headers=owner.headers)
            ).json(),
        ]
        before = len(await rooms.events())
        for room in created:
            rid = room["id"]
            hidden = room["kind"] in ("private", "group_dm", "direct")
            for stranger in strangers:
                h = stranger.headers
                calls = [
                    ("GET", f"/api/rooms/{rid}", None),
                    ("GET", f"/api/rooms/{rid}/members", None),
                    ("GET", f"/api/rooms/{rid}/members/{owner.id}", None),
                    ("PATCH", f"/api/rooms/{rid}", {"topic": "pwned"}),
                    ("POST", f"/api/rooms/{rid}/archive", None),
                    ("POST", f"/api/rooms/{rid}/unarchive", None),
                    ("DELETE", f"/api/rooms/{rid}", None),
                    ("POST", f"/api/rooms/{rid}/invitations", {"user_id": str(stranger.id)}),
                    ("POST", f"/api/rooms/{rid}/members/{target.id}/kick", None),
                    ("PUT", f"/api/rooms/{rid}/members/{owner.id}/role", {"role": "member"}),
                    ("POST", f"/api/rooms/{rid}/transfer", {"user_id": str(stranger.id)}),
                    ("GET", f"/api/rooms/{rid}/bans", None),
                    ("POST", f"/api/rooms/{rid}/bans", {"user_id": str(owner.id)}),
                    ("DELETE", f"/api/rooms/{rid}/bans/{owner.id}", None),
                    ("POST", f"/api/rooms/{rid}/leave", None),
                    ("POST", f"/api/rooms/{rid}/invitation/accept", None),
                    ("POST", f"/api/rooms/{rid}/invitation/decline", None),
                ]
                if room["kind"] != "public":
                    calls.append(
                        (
                            "POST",
                            f"/api/rooms/{rid}/join",
                            {"password": "guess"} if room["kind"] == "password" else None,
                        )
                    )
                for method, path, body in calls:
                    response = await rooms.http.request(method, path, json=body, headers=h)
                    if method == "GET" and path == f"/api/rooms/{rid}" and not hidden:
                        assert response.status_code == 200
                        assert response.json()["my_role"] is None
                        continue
                    if method == "GET" and path == f"/api/rooms/{rid}/members" and room["kind"] == "public":
                        assert response.status_code == 200, "a public room's member list is public"
                        continue
                    assert response.status_code in (403, 404), (room["kind"], method, path, response.status_code)
                    if hidden:
                        assert response.status_code == 404, (room["kind"], method, path)
        assert len(await rooms.events()) == before, "no action by a non-member changed anything"

    async def test_every_kind_of_change_emits_its_event_and_each_matches_its_contract(
        self, rooms: RoomsHarness
    ) -> None:
        ada, bob, cat = await rooms.user("ada"), await rooms.user("bob"), await rooms.user("cat")
        room = await rooms.create(ada, "public", "everything")
        rid, h = room["id"], ada.headers
        await rooms.http.patch(f"/api/rooms/{rid}", json={"topic": "all events"}, headers=h)
        await rooms.join(bob, rid)
        await rooms.http.put(f"/api/rooms/{rid}/members/{bob.id}/role", json={"role": "admin"}, headers=h)
        await rooms.http.post(f"/api/rooms/{rid}/invitations", json={"user_id": str(cat.id)}, headers=h)
        await rooms.http.post(f"/api/rooms/{rid}/invitation/accept", headers=cat.headers)
        await rooms.http.post(f"/api/rooms/{rid}/members/{cat.id}/kick", headers=h)
        await rooms.http.post(f"/api/rooms/{rid}/bans", json={"user_id": str(cat.id)}, headers=h)
        await rooms.http.delete(f"/api/rooms/{rid}/bans/{cat.id}", headers=h)
        await rooms.http.post(f"/api/rooms/{rid}/leave", headers=bob.headers)
        await rooms.http.post(f"/api/rooms/{rid}/archive", headers=h)
        await rooms.http.post(f"/api/rooms/{rid}/unarchive", headers=h)
        await rooms.http.delete(f"/api/rooms/{rid}", headers=h)
        dm = (await rooms.http.post("/api/rooms/direct", json={"user_id": str(bob.id)}, headers=h)).json()["id"]
        await rooms.http.post("/api/rooms/blocks", json={"user_id": str(bob.id)}, headers=h)
        await rooms.http.delete(f"/api/rooms/blocks/{bob.id}", headers=h)
        emitted = await rooms.events()
        assert {e.type for e in emitted if e.key in (rid, dm)} == set(ROOMS_EVENTS.payload_types)
        for room_id in (rid, dm):
            events = [e for e in emitted if e.key == room_id]
            versions = [e.data.room_version for e in events]  # type: ignore[attr-defined]
            assert versions == list(range(1, len(events) + 1)), "one version step per event, in order"
            for envelope in events:
                assert envelope.source == "rooms"
                assert decode(encode(envelope, topic=ROOMS_EVENTS.name), ROOMS_EVENTS) == envelope
