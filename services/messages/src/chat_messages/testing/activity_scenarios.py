"""The room's activity (joins, leaves, removals, bans and renames kept after the seq they followed) and how it is
read. Mixed into :class:`~chat_messages.testing.scenarios.MessagesScenarios`."""

from __future__ import annotations

import uuid

import httpx

from chat_contracts import rooms as rooms_ev
from chat_messages.testing.harness import MessagesHarness, Person


async def _activity(msgs: MessagesHarness, person: Person, room_id: uuid.UUID, **params: int) -> httpx.Response:
    return await msgs.http.get(f"/api/messages/rooms/{room_id}/activity", params=params, headers=person.headers)


def _said(response: httpx.Response) -> list[tuple[str, int]]:
    """Each activity as (kind, after_seq)."""
    assert response.status_code == 200, response.text
    return [(a["kind"], a["after_seq"]) for a in response.json()["items"]]


class ActivityScenarios:
    async def test_joins_leaves_removals_bans_and_renames_are_kept_after_the_seq_they_followed(
        self, msgs: MessagesHarness
    ) -> None:
        ada, bob, cat = await msgs.person("ada"), await msgs.person("bob"), await msgs.person("cat")
        room = await msgs.room(ada)
        await msgs.send(ada, room, "one")
        await msgs.room_event(room, rooms_ev.MemberJoined, user_id=bob.id, role="member", by=ada.id)
        await msgs.join(room, cat)
        await msgs.send(bob, room, "two")
        await msgs.room_event(room, rooms_ev.MemberKicked, user_id=bob.id, by=ada.id)
        await msgs.room_event(
            room, rooms_ev.MemberRoleChanged, user_id=cat.id, old_role="member", new_role="admin", by=ada.id
        )
        await msgs.room_event(room, rooms_ev.RoomUpdated, kind="public", name="room", topic="only the topic")
        await msgs.room_event(room, rooms_ev.RoomUpdated, kind="public", name="lounge", by=cat.id)
        await msgs.room_event(room, rooms_ev.MemberLeft, user_id=cat.id)
        await msgs.room_event(room, rooms_ev.MemberBanned, user_id=cat.id, by=ada.id)
        response = await _activity(msgs, ada, room)
        assert _said(response) == [
            ("joined", 0),
            ("joined", 1),
            ("joined", 1),
            ("kicked", 2),
            ("renamed", 2),
            ("left", 2),
            ("banned", 2),
        ], "role and topic changes are not activity"
        items = response.json()["items"]
        assert [a["room_version"] for a in items] == [2, 3, 4, 5, 8, 9, 10]
        assert (items[0]["user_id"], items[0]["by"]) == (str(ada.id), None)
        assert (items[1]["user_id"], items[1]["by"]) == (str(bob.id), str(ada.id))
        assert (items[3]["user_id"], items[3]["by"]) == (str(bob.id), str(ada.id))
        assert (items[4]["name"], items[4]["by"], items[4]["user_id"]) == ("lounge", str(cat.id), None)
        assert all(a["room_id"] == str(room) and a["occurred_at"] for a in items)

    async def test_a_redelivered_room_event_is_kept_once(self, msgs: MessagesHarness) -> None:
        from chat_contracts.envelope import Envelope

        ada, bob = await msgs.person("ada"), await msgs.person("bob")
        room = await msgs.room(ada)
        joined = rooms_ev.MemberJoined(
            room_id=room,
            room_version=msgs.version_of(room) + 1,
            user_id=bob.id,
            role="member",
            occurred_at=msgs.clock(),
        )
        envelope = Envelope.wrap(joined, source="rooms", key=str(room))
        for _ in range(2):
            await msgs.bus.on_room_event(envelope)
            await msgs.send(ada, room, "between the deliveries")
        assert _said(await _activity(msgs, ada, room)) == [("joined", 0), ("joined", 0)]

    async def test_activity_is_read_in_a_window_of_seqs_and_pages_by_room_version(self, msgs: MessagesHarness) -> None:
        ada = await msgs.person("ada")
        people = [await msgs.person(f"p{i}") for i in range(4)]
        room = await msgs.room(ada)
        for seq, person in enumerate(people, start=1):
            await msgs.send(ada, room, f"m{seq}")
            await msgs.join(room, person)  # after seq 1, 2, 3, 4
        assert _said(await _activity(msgs, ada, room, after_seq=1, before_seq=4)) == [("joined", 2), ("joined", 3)]
        assert _said(await _activity(msgs, ada, room, after_seq=3)) == [("joined", 4)]
        assert _said(await _activity(msgs, ada, room, before_seq=2)) == [("joined", 0), ("joined", 1)]
        first = (await _activity(msgs, ada, room, limit=2)).json()["items"]
        rest = (await _activity(msgs, ada, room, after_version=first[-1]["room_version"])).json()["items"]
        assert [a["after_seq"] for a in first + rest] == [0, 1, 2, 3, 4]

    async def test_a_member_who_sees_history_from_joining_sees_activity_from_their_join(
        self, msgs: MessagesHarness
    ) -> None:
        ada, bob, cat = await msgs.person("ada"), await msgs.person("bob"), await msgs.person("cat")
        room = await msgs.room(ada, history="joined")
        await msgs.send(ada, room, "before bob")
        await msgs.join(room, cat)
        await msgs.send(ada, room, "still before bob")
        await msgs.join(room, bob)
        await msgs.room_event(room, rooms_ev.MemberLeft, user_id=cat.id)
        assert _said(await _activity(msgs, bob, room)) == [("joined", 2), ("left", 2)]
        assert _said(await _activity(msgs, ada, room)) == [("joined", 0), ("joined", 1), ("joined", 2), ("left", 2)]

    async def test_activity_is_for_members_and_stays_readable_in_an_archived_room(self, msgs: MessagesHarness) -> None:
        ada, bob, eve = await msgs.person("ada"), await msgs.person("bob"), await msgs.person("eve")
        room = await msgs.room(ada, bob)
        await msgs.room_event(room, rooms_ev.MemberLeft, user_id=bob.id)
        for stranger in (eve, bob):
            refused = await _activity(msgs, stranger, room)
            assert (refused.status_code, refused.json()["code"]) == (404, "room_not_found")
        await msgs.room_event(room, rooms_ev.RoomArchived, by=ada.id)
        assert _said(await _activity(msgs, ada, room)) == [("joined", 0), ("joined", 0), ("left", 0)]

    async def test_bad_activity_queries_get_a_problem_with_a_code(self, msgs: MessagesHarness) -> None:
        ada = await msgs.person("ada")
        room = await msgs.room(ada)
        cases: list[tuple[dict[str, int], str]] = [
            ({"after_seq": 5, "before_seq": 5}, "invalid_range"),
            ({"limit": 0}, "validation_failed"),
            ({"limit": 101}, "validation_failed"),
            ({"after_seq": -1}, "validation_failed"),
        ]
        for params, code in cases:
            refused = await _activity(msgs, ada, room, **params)
            assert refused.status_code == 422, params
            assert refused.headers["content-type"].startswith("application/problem+json")
            assert refused.json()["code"] == code, refused.json()

    async def test_a_deleted_room_takes_its_activity_with_it(self, msgs: MessagesHarness) -> None:
        ada = await msgs.person("ada")
        room = await msgs.room(ada)
        store = msgs.module.context.store
        assert len(await store.activity(room, limit=10)) == 1
        await msgs.room_event(room, rooms_ev.RoomDeleted, by=ada.id)
        assert (await _activity(msgs, ada, room)).status_code == 404
        assert list(await store.activity(room, limit=10)) == []
