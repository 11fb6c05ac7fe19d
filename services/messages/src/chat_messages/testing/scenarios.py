"""The messages service's behaviour: the delivery invariants, changes, reading and receipts. Runs on the
in-memory fake (unit) and on the Mongo-wire server (integration); subclasses provide ``msgs``."""

from __future__ import annotations

import asyncio
import uuid

import httpx

from chat_contracts import messages_commands as cmd
from chat_contracts import messages_events as ev
from chat_contracts import rooms as rooms_ev
from chat_contracts.envelope import decode, encode
from chat_contracts.topics import MESSAGES_EVENTS
from chat_messages.entrypoints.bus import BusEntrypoints
from chat_messages.service.owner import RoomOwner
from chat_messages.testing.harness import MessagesHarness, Person


def _rid() -> str:
    return uuid.uuid4().hex


async def _activity(msgs: MessagesHarness, person: Person, room_id: uuid.UUID, **params: int) -> httpx.Response:
    return await msgs.http.get(f"/api/messages/rooms/{room_id}/activity", params=params, headers=person.headers)


def _said(response: httpx.Response) -> list[tuple[str, int]]:
    """Each activity as (kind, after_seq)."""
    assert response.status_code == 200, response.text
    return [(a["kind"], a["after_seq"]) for a in response.json()["items"]]


class MessagesScenarios:
    # --- invariants 1-3: durable, idempotent, gap-free -----------------------------------------------------------

    async def test_a_sent_message_gets_the_next_seq_and_is_stored_before_it_is_announced(
        self, msgs: MessagesHarness
    ) -> None:
        ada = await msgs.person("ada")
        room = await msgs.room(ada)
        first, second = await msgs.send(ada, room, "one"), await msgs.send(ada, room, "two")
        assert isinstance(first.data, ev.MessageCreated)
        assert isinstance(second.data, ev.MessageCreated)
        assert (first.data.seq, second.data.seq) == (1, 2)
        page = (await msgs.history(ada, room)).json()["items"]
        assert [(m["seq"], m["body"]) for m in page] == [(2, "two"), (1, "one")]

    async def test_resending_with_same_client_msg_id_returns_original_seq(self, msgs: MessagesHarness) -> None:
        ada = await msgs.person("ada")
        room = await msgs.room(ada)
        original = await msgs.send(ada, room, "hi", client_msg_id="c-1")
        again = await msgs.send(ada, room, "hi (edited before retry)", client_msg_id="c-1")
        assert isinstance(original.data, ev.MessageCreated)
        assert isinstance(again.data, ev.MessageCreated)
        assert (again.data.message_id, again.data.seq, again.data.body) == (
            original.data.message_id,
            original.data.seq,
            "hi",
        )
        assert again.data.request_id != original.data.request_id, "the answer goes to the retrying request"
        assert len((await msgs.history(ada, room)).json()["items"]) == 1

    async def test_concurrent_senders_and_retries_leave_seq_dense_and_unique(self, msgs: MessagesHarness) -> None:
        people = [await msgs.person(f"p{i}") for i in range(5)]
        room = await msgs.room(people[0], *people[1:])
        msgs.module.context.settings.send_burst = 1000  # this test is about ordering, not limits
        sends = [msgs.send(people[i % 5], room, f"m{i}", client_msg_id=f"c{i % 40}") for i in range(60)]
        answers = await asyncio.gather(*sends)
        created = [a.data for a in answers if isinstance(a.data, ev.MessageCreated)]
        assert len(created) == 60
        by_client = {c.client_msg_id: c.seq for c in created}
        assert len(by_client) == 40
        assert all(by_client[c.client_msg_id] == c.seq for c in created), "a retry always gets the original seq"
        assert sorted(by_client.values()) == list(range(1, 41))

    async def test_two_instances_owning_the_room_at_once_never_reuse_or_skip_a_seq(self, msgs: MessagesHarness) -> None:
        ada = await msgs.person("ada")
        room = await msgs.room(ada)
        msgs.module.context.settings.send_burst = 1000
        other_instance = BusEntrypoints(msgs.module.context, RoomOwner(msgs.module.context.store))
        await msgs.send(ada, room, "warm the first cache")

        async def on_other(i: int) -> None:
            command = cmd.SendMessage(
                room_id=room, sender_id=ada.id, client_msg_id=f"o{i}", body="x", request_id=_rid()
            )
            from chat_contracts.envelope import Envelope

            envelope = Envelope.wrap(command, source="gateway", key=str(room))
            await other_instance.on_command(envelope)

        await asyncio.gather(
            *(msgs.send(ada, room, "y", client_msg_id=f"m{i}") for i in range(15)), *(on_other(i) for i in range(15))
        )
        seqs = sorted(m["seq"] for m in (await msgs.history(ada, room, limit=100)).json()["items"])
        assert seqs == list(range(1, 32))

    # --- rejections ----------------------------------------------------------------------------------------------

    async def test_non_members_are_rejected_and_nothing_is_stored(self, msgs: MessagesHarness) -> None:
        ada, eve = await msgs.person("ada"), await msgs.person("eve")
        room = await msgs.room(ada)
        answer = await msgs.send(eve, room, "let me in")
        assert isinstance(answer.data, ev.MessageRejected)
        assert (answer.data.code, answer.data.sender_id) == ("not_member", eve.id)
        assert (await msgs.history(ada, room)).json()["items"] == []

    async def test_a_member_whose_join_is_still_on_its_way_is_waited_for_not_refused(
        self, msgs: MessagesHarness
    ) -> None:
        ada, bob = await msgs.person("ada"), await msgs.person("bob")
        room = await msgs.room(ada)  # versions 1 (created) and 2 (ada joined)

        async def join_arrives_late() -> None:
            await asyncio.sleep(0.3)
            await msgs.join(room, bob)  # version 3

        late = asyncio.create_task(join_arrives_late())
        answer = await msgs.send(bob, room, "just joined", room_version=3)  # the gateway saw bob at version 3
        await late
        assert isinstance(answer.data, ev.MessageCreated), answer.data
        unknown = await msgs.person("eve")
        refused = await msgs.send(unknown, room, "not a member", room_version=3)  # the projection is at 3 already
        assert isinstance(refused.data, ev.MessageRejected)
        assert refused.data.code == "not_member"

    async def test_bad_messages_are_rejected_with_a_code(self, msgs: MessagesHarness) -> None:
        ada = await msgs.person("ada")
        room, other = await msgs.room(ada), await msgs.room(ada)
        elsewhere = await msgs.send(ada, other, "in another room")
        assert isinstance(elsewhere.data, ev.MessageCreated)
        cases = [
            (await msgs.send(ada, room, "x" * 4001), "too_long"),
            (await msgs.send(ada, room, "   "), "invalid"),
            (await msgs.send(ada, room, "re", reply_to=elsewhere.data.message_id), "invalid_reply"),
        ]
        for answer, code in cases:
            assert isinstance(answer.data, ev.MessageRejected)
            assert answer.data.code == code
        composed = "e\u0301" * 4000  # 8,000 code points, 4,000 after NFC
        accepted = await msgs.send(ada, room, composed)
        assert isinstance(accepted.data, ev.MessageCreated)
        assert accepted.data.body == "\u00e9" * 4000

    async def test_an_archived_room_takes_no_new_messages(self, msgs: MessagesHarness) -> None:
        ada = await msgs.person("ada")
        room = await msgs.room(ada)
        await msgs.room_event(room, rooms_ev.RoomArchived, by=ada.id)
        answer = await msgs.send(ada, room)
        assert isinstance(answer.data, ev.MessageRejected)
        assert answer.data.code == "room_archived"
        await msgs.room_event(room, rooms_ev.RoomUnarchived, by=ada.id)
        assert isinstance((await msgs.send(ada, room)).data, ev.MessageCreated)

    async def test_a_direct_room_closed_by_a_block_takes_no_writes_from_either_until_reopened(
        self, msgs: MessagesHarness
    ) -> None:
        ada, bob = await msgs.person("ada"), await msgs.person("bob")
        room = await msgs.room(ada, bob, kind="direct")
        earlier = (await msgs.send(bob, room, "before the block")).data
        assert isinstance(earlier, ev.MessageCreated)
        await msgs.room_event(room, rooms_ev.RoomBlocked)
        published = len(msgs.events)
        writes: list[cmd.SendMessage | cmd.EditMessage | cmd.ReactToMessage | cmd.DeleteMessage] = [
            cmd.SendMessage(room_id=room, sender_id=bob.id, client_msg_id="b-2", body="hello?", request_id=_rid()),
            cmd.SendMessage(room_id=room, sender_id=ada.id, client_msg_id="a-1", body="hi", request_id=_rid()),
            cmd.EditMessage(
                room_id=room, actor_id=bob.id, message_id=earlier.message_id, body="changed", request_id=_rid()
            ),
            cmd.ReactToMessage(
                room_id=room,
                actor_id=ada.id,
                message_id=earlier.message_id,
                emoji="👍",
                action="add",
                request_id=_rid(),
            ),
            cmd.DeleteMessage(room_id=room, actor_id=bob.id, message_id=earlier.message_id, request_id=_rid()),
        ]
        for write in writes:
            refused = (await msgs.command(write)).data
            assert isinstance(refused, ev.MessageRejected), write.type
            assert (refused.code, refused.command) == ("user_blocked", write.type)
        assert all(isinstance(e.data, ev.MessageRejected) for e in msgs.events[published:]), "nothing else announced"
        read = (await msgs.command(cmd.MarkRead(room_id=room, actor_id=ada.id, up_to_seq=1, request_id=_rid()))).data
        assert isinstance(read, ev.ReadMarkerMoved), "each person's own unread count still moves"
        kept = (await msgs.history(ada, room)).json()["items"]
        assert [(m["seq"], m["body"], m["deleted"]) for m in kept] == [(1, "before the block", False)]

        await msgs.room_event(room, rooms_ev.RoomUnblocked)
        again = (await msgs.send(bob, room, "hello again", client_msg_id="b-2")).data
        assert isinstance(again, ev.MessageCreated)
        assert again.seq == 2, "the refused sends took no seq"

    async def test_a_send_the_gateway_stamped_after_a_block_waits_for_the_block_and_is_refused(
        self, msgs: MessagesHarness
    ) -> None:
        ada, bob = await msgs.person("ada"), await msgs.person("bob")
        room = await msgs.room(ada, bob, kind="direct")
        block_version = msgs.version_of(room) + 1
        # The gateway has read room.blocked (so it stamps the command with its version) before this projection.
        stamped = cmd.SendMessage(
            room_id=room,
            sender_id=bob.id,
            client_msg_id="b-1",
            body="sent right after the block",
            request_id=_rid(),
            room_version=block_version,
        )
        answer, _ = await asyncio.gather(msgs.command(stamped), msgs.room_event(room, rooms_ev.RoomBlocked))
        assert isinstance(answer.data, ev.MessageRejected)
        assert answer.data.code == "user_blocked"

    async def test_sending_too_fast_is_rejected_with_retry_after(self, msgs: MessagesHarness) -> None:
        ada = await msgs.person("ada")
        room = await msgs.room(ada)
        answers = [await msgs.send(ada, room) for _ in range(11)]
        assert all(isinstance(a.data, ev.MessageCreated) for a in answers[:10])
        limited = answers[10].data
        assert isinstance(limited, ev.MessageRejected)
        assert limited.code == "rate_limited"
        assert limited.retry_after is not None
        assert 0 < limited.retry_after <= 1
        msgs.clock.advance(seconds=1)
        assert isinstance((await msgs.send(ada, room)).data, ev.MessageCreated)

    # --- changing messages ---------------------------------------------------------------------------------------

    async def test_the_author_edits_once_per_request_and_the_version_grows(self, msgs: MessagesHarness) -> None:
        ada, bob = await msgs.person("ada"), await msgs.person("bob")
        room = await msgs.room(ada, bob)
        sent = (await msgs.send(ada, room, "helo")).data
        assert isinstance(sent, ev.MessageCreated)
        edit = cmd.EditMessage(room_id=room, actor_id=ada.id, message_id=sent.message_id, body="hello", request_id="e1")
        first, again = await msgs.command(edit), await msgs.command(edit)
        assert isinstance(first.data, ev.MessageEdited)
        assert isinstance(again.data, ev.MessageEdited)
        assert (first.data.version, again.data.version, first.data.body) == (2, 2, "hello")
        by_bob = await msgs.command(edit.model_copy(update={"actor_id": bob.id, "request_id": "e2"}))
        assert isinstance(by_bob.data, ev.MessageRejected)
        assert by_bob.data.code == "forbidden"
        stored = (
            await msgs.http.get(f"/api/messages/rooms/{room}/messages/{sent.message_id}", headers=ada.headers)
        ).json()
        assert (stored["body"], stored["version"], stored["edited_at"] is not None) == ("hello", 2, True)

    async def test_a_deleted_message_leaves_a_tombstone_in_seq_order(self, msgs: MessagesHarness) -> None:
        ada, bob, cat = await msgs.person("ada"), await msgs.person("bob"), await msgs.person("cat")
        admin = await msgs.person("admin")
        room = await msgs.room(ada, bob, cat)
        await msgs.join(room, admin, role="admin")
        one, two = (await msgs.send(bob, room, "one")).data, (await msgs.send(bob, room, "two")).data
        assert isinstance(one, ev.MessageCreated)
        assert isinstance(two, ev.MessageCreated)
        delete_one = cmd.DeleteMessage(room_id=room, actor_id=cat.id, message_id=one.message_id, request_id="d0")
        refused = await msgs.command(delete_one)
        assert isinstance(refused.data, ev.MessageRejected)
        assert refused.data.code == "forbidden"
        by_admin = await msgs.command(
            cmd.DeleteMessage(room_id=room, actor_id=admin.id, message_id=one.message_id, request_id="d1")
        )
        assert isinstance(by_admin.data, ev.MessageDeleted)
        page = (await msgs.history(ada, room, order="oldest")).json()["items"]
        assert [(m["seq"], m["deleted"], m["body"]) for m in page] == [(1, True, ""), (2, False, "two")]

    async def test_reactions_are_counted_once_per_user_and_request(self, msgs: MessagesHarness) -> None:
        ada, bob = await msgs.person("ada"), await msgs.person("bob")
        room = await msgs.room(ada, bob)
        sent = (await msgs.send(ada, room)).data
        assert isinstance(sent, ev.MessageCreated)

        async def react(person_id: uuid.UUID, action: str, request_id: str) -> ev.ReactionChanged:
            answer = await msgs.command(
                cmd.ReactToMessage(
                    room_id=room,
                    actor_id=person_id,
                    message_id=sent.message_id,
                    emoji="👍",
                    action=action,  # type: ignore[arg-type]
                    request_id=request_id,
                )
            )
            assert isinstance(answer.data, ev.ReactionChanged)
            return answer.data

        assert (await react(ada.id, "add", "r1")).counts == {"👍": 1}
        assert (await react(ada.id, "add", "r1")).counts == {"👍": 1}
        assert (await react(bob.id, "add", "r2")).counts == {"👍": 2}
        removed = await react(ada.id, "remove", "r3")
        assert (removed.counts, removed.version) == ({"👍": 1}, 4)

    # --- reading -------------------------------------------------------------------------------------------------

    async def test_history_pages_by_seq_in_both_directions(self, msgs: MessagesHarness) -> None:
        ada = await msgs.person("ada")
        room = await msgs.room(ada)
        msgs.module.context.settings.send_burst = 1000
        for i in range(1, 11):
            await msgs.send(ada, room, f"m{i}")
        newest = (await msgs.history(ada, room, before_seq=8, limit=3)).json()["items"]
        assert [m["seq"] for m in newest] == [7, 6, 5]
        oldest = (await msgs.history(ada, room, after_seq=3, limit=3)).json()["items"]
        assert [m["seq"] for m in oldest] == [4, 5, 6]
        assert (await msgs.history(ada, room, limit=101)).status_code == 422

    async def test_a_room_that_shows_history_from_joining_hides_what_came_before(self, msgs: MessagesHarness) -> None:
        ada, bob = await msgs.person("ada"), await msgs.person("bob")
        room = await msgs.room(ada, history="joined")
        await msgs.send(ada, room, "before bob")
        await msgs.join(room, bob)
        await msgs.send(ada, room, "after bob")
        assert [m["body"] for m in (await msgs.history(bob, room)).json()["items"]] == ["after bob"]
        assert len((await msgs.history(ada, room)).json()["items"]) == 2

    async def test_strangers_see_nothing_of_a_room(self, msgs: MessagesHarness) -> None:
        ada, eve = await msgs.person("ada"), await msgs.person("eve")
        room = await msgs.room(ada)
        sent = (await msgs.send(ada, room, "secret plans")).data
        assert isinstance(sent, ev.MessageCreated)
        for path in (
            f"/api/messages/rooms/{room}/messages",
            f"/api/messages/rooms/{room}/messages/{sent.message_id}",
            f"/api/messages/rooms/{room}/messages/{sent.message_id}/thread",
            f"/api/messages/rooms/{room}/receipts",
        ):
            response = await msgs.http.get(path, headers=eve.headers)
            assert response.status_code == 404, path
            assert "secret" not in response.text
        everywhere = await msgs.http.get("/api/messages/search", params={"q": "secret"}, headers=eve.headers)
        assert everywhere.json()["items"] == []

    async def test_search_finds_messages_with_every_word_in_my_rooms(self, msgs: MessagesHarness) -> None:
        ada, bob = await msgs.person("ada"), await msgs.person("bob")
        room, other = await msgs.room(ada, bob), await msgs.room(bob)
        await msgs.send(ada, room, "The Quick brown fox")
        await msgs.send(ada, room, "quick thinking")
        gone = (await msgs.send(ada, room, "quick fox, deleted")).data
        assert isinstance(gone, ev.MessageCreated)
        await msgs.command(cmd.DeleteMessage(room_id=room, actor_id=ada.id, message_id=gone.message_id, request_id="x"))
        await msgs.send(bob, other, "quick fox elsewhere")
        found = (await msgs.http.get("/api/messages/search", params={"q": "FOX quick"}, headers=ada.headers)).json()
        assert [m["body"] for m in found["items"]] == ["The Quick brown fox"]
        in_room = (
            await msgs.http.get(
                "/api/messages/search", params={"q": "quick", "room_id": str(room)}, headers=ada.headers
            )
        ).json()
        assert [m["body"] for m in in_room["items"]] == ["quick thinking", "The Quick brown fox"]

    async def test_a_thread_shows_a_message_and_its_replies(self, msgs: MessagesHarness) -> None:
        ada, bob = await msgs.person("ada"), await msgs.person("bob")
        room = await msgs.room(ada, bob)
        root = (await msgs.send(ada, room, "question?")).data
        assert isinstance(root, ev.MessageCreated)
        await msgs.send(bob, room, "answer", reply_to=root.message_id)
        await msgs.send(ada, room, "unrelated")
        thread = (
            await msgs.http.get(f"/api/messages/rooms/{room}/messages/{root.message_id}/thread", headers=bob.headers)
        ).json()
        assert thread["message"]["body"] == "question?"
        assert [r["body"] for r in thread["replies"]] == ["answer"]

    async def test_mentions_name_known_users_and_the_room(self, msgs: MessagesHarness) -> None:
        ada, bob = await msgs.person("ada"), await msgs.person("bob")
        room = await msgs.room(ada, bob)
        answer = (await msgs.send(ada, room, "@Bob look, @room: @nobody here")).data
        assert isinstance(answer, ev.MessageCreated)
        assert [(m.user_id, m.username) for m in answer.mentions.users] == [(bob.id, "bob")]
        assert answer.mentions.room is True

    # --- markers and receipts ------------------------------------------------------------------------------------

    async def test_read_markers_only_move_forward_and_drive_unread_counts(self, msgs: MessagesHarness) -> None:
        ada, bob = await msgs.person("ada"), await msgs.person("bob")
        room = await msgs.room(ada, bob)
        for body in ("m0", "@bob m1", "@room m2", "m3"):
            await msgs.send(ada, room, body)
        await msgs.send(bob, room, "mine, @bob")
        unread = (await msgs.http.get("/api/messages/unread", headers=bob.headers)).json()
        assert unread == [{"room_id": str(room), "unread": 4, "read_seq": 0, "last_seq": 5, "mentions": 2}]
        moved = await msgs.command(cmd.MarkRead(room_id=room, actor_id=bob.id, up_to_seq=3, request_id="k1"))
        back = await msgs.command(cmd.MarkRead(room_id=room, actor_id=bob.id, up_to_seq=1, request_id="k2"))
        beyond = await msgs.command(cmd.MarkRead(room_id=room, actor_id=bob.id, up_to_seq=99, request_id="k3"))
        assert [getattr(e.data, "up_to_seq", None) for e in (moved, back, beyond)] == [3, 3, 5]
        assert (await msgs.http.get("/api/messages/unread", headers=bob.headers)).json()[0]["unread"] == 0

    async def test_receipts_tell_the_sender_when_everyone_has_received_and_read(self, msgs: MessagesHarness) -> None:
        ada, bob, cat = await msgs.person("ada"), await msgs.person("bob"), await msgs.person("cat")
        room = await msgs.room(ada, bob, cat)
        await msgs.send(ada, room, "one")
        await msgs.send(ada, room, "two")
        await msgs.command(cmd.AcknowledgeDelivery(room_id=room, actor_id=bob.id, up_to_seq=2, request_id="a1"))
        partly = (await msgs.http.get(f"/api/messages/rooms/{room}/receipts", headers=ada.headers)).json()
        assert (partly["delivered_to_all_seq"], partly["read_by_all_seq"]) == (0, 0)
        await msgs.command(cmd.MarkRead(room_id=room, actor_id=cat.id, up_to_seq=2, request_id="a2"))
        everyone = (await msgs.http.get(f"/api/messages/rooms/{room}/receipts", headers=ada.headers)).json()
        assert (everyone["delivered_to_all_seq"], everyone["read_by_all_seq"]) == (2, 0)

    # --- the room's activity ----------------------------------------------------------------------------------------

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

    # --- the room's life -------------------------------------------------------------------------------------------

    async def test_a_deleted_room_takes_its_messages_with_it(self, msgs: MessagesHarness) -> None:
        ada = await msgs.person("ada")
        room = await msgs.room(ada)
        await msgs.send(ada, room, "soon gone")
        await msgs.room_event(room, rooms_ev.RoomDeleted, by=ada.id)
        assert (await msgs.history(ada, room)).status_code == 404
        assert isinstance((await msgs.send(ada, room)).data, ev.MessageRejected)

    async def test_a_member_who_left_is_refused_and_sees_nothing(self, msgs: MessagesHarness) -> None:
        ada, bob = await msgs.person("ada"), await msgs.person("bob")
        room = await msgs.room(ada, bob)
        await msgs.room_event(room, rooms_ev.MemberKicked, user_id=bob.id, by=ada.id)
        answer = await msgs.send(bob, room)
        assert isinstance(answer.data, ev.MessageRejected)
        assert answer.data.code == "not_member"
        assert (await msgs.history(bob, room)).status_code == 404

    async def test_every_published_event_matches_its_contract(self, msgs: MessagesHarness) -> None:
        ada, bob = await msgs.person("ada"), await msgs.person("bob")
        room = await msgs.room(ada, bob)
        sent = (await msgs.send(ada, room, "hi")).data
        assert isinstance(sent, ev.MessageCreated)
        await msgs.command(
            cmd.EditMessage(room_id=room, actor_id=ada.id, message_id=sent.message_id, body="hey", request_id="1")
        )
        await msgs.command(
            cmd.ReactToMessage(
                room_id=room, actor_id=bob.id, message_id=sent.message_id, emoji="🎉", action="add", request_id="2"
            )
        )
        await msgs.command(cmd.MarkRead(room_id=room, actor_id=bob.id, up_to_seq=1, request_id="3"))
        await msgs.command(cmd.AcknowledgeDelivery(room_id=room, actor_id=bob.id, up_to_seq=1, request_id="4"))
        await msgs.command(cmd.DeleteMessage(room_id=room, actor_id=ada.id, message_id=sent.message_id, request_id="5"))
        await msgs.send(bob, uuid.uuid4(), "nowhere")
        assert {e.type for e in msgs.events} == set(MESSAGES_EVENTS.payload_types)
        for envelope in msgs.events:
            assert envelope.source == "messages"
            assert decode(encode(envelope, topic=MESSAGES_EVENTS.name), MESSAGES_EVENTS) == envelope

    async def test_the_moderation_policy_refuses_messages_and_names_the_rule(self, msgs: MessagesHarness) -> None:
        msgs.module.context.settings.blocked_patterns = [r"\bspam+\b", r"buy\s+now"]
        ada = await msgs.person("ada")
        room = await msgs.room(ada)
        refused = (await msgs.send(ada, room, "BUY   now!!")).data
        assert isinstance(refused, ev.MessageRejected)
        assert refused.code == "blocked"
        assert "rule 2" in refused.message
        sent = (await msgs.send(ada, room, "spamalot is a musical")).data
        assert isinstance(sent, ev.MessageCreated)
        edit = cmd.EditMessage(room_id=room, actor_id=ada.id, message_id=sent.message_id, body="spammm", request_id="e")
        refused_edit = (await msgs.command(edit)).data
        assert isinstance(refused_edit, ev.MessageRejected)
        assert (refused_edit.code, refused_edit.command) == ("blocked", "message.edit")

    # --- retention ------------------------------------------------------------------------------------------------

    async def test_old_messages_are_swept_by_the_room_policy_but_a_seq_is_never_reused(
        self, msgs: MessagesHarness
    ) -> None:
        from chat_messages.service.retention import sweep

        ada, bob = await msgs.person("ada"), await msgs.person("bob")
        room = await msgs.room(ada, bob)
        refused = await msgs.http.put(f"/api/messages/rooms/{room}/retention", json={"days": 7}, headers=bob.headers)
        assert (refused.status_code, refused.json()["code"]) == (403, "forbidden_role")
        set_policy = await msgs.http.put(f"/api/messages/rooms/{room}/retention", json={"days": 7}, headers=ada.headers)
        assert set_policy.json() == {"days": 7}
        for body in ("one", "two", "three"):
            await msgs.send(ada, room, body)
        msgs.clock.advance(days=8)
        swept = await sweep(msgs.module.context)
        assert swept.messages_deleted == 2, "the newest message stays: it holds the room's highest seq"
        after = (await msgs.send(ada, room, "four")).data
        assert isinstance(after, ev.MessageCreated)
        assert after.seq == 4
        ada.token = msgs.mint.access_token(ada.id, ada.username)  # eight days later: a fresh access token
        assert [m["seq"] for m in (await msgs.history(ada, room, order="oldest")).json()["items"]] == [3, 4]
        forever = await msgs.http.put(f"/api/messages/rooms/{room}/retention", json={"days": None}, headers=ada.headers)
        assert forever.json() == {"days": None}
        msgs.clock.advance(days=30)
        assert (await sweep(msgs.module.context)).messages_deleted == 0

    async def test_a_deleted_room_keeps_its_data_for_the_grace_period_then_purges_it(
        self, msgs: MessagesHarness
    ) -> None:
        from chat_messages.service.retention import sweep

        msgs.module.context.settings.deleted_room_retention_days = 2
        ada = await msgs.person("ada")
        room = await msgs.room(ada)
        await msgs.send(ada, room, "kept a while")
        await msgs.room_event(room, rooms_ev.RoomDeleted, by=ada.id)
        assert (await msgs.history(ada, room)).status_code == 404, "nobody reads a deleted room"
        assert await msgs.module.context.store.last_seq(room) == 1
        msgs.clock.advance(days=1)
        assert (await sweep(msgs.module.context)).rooms_purged == 0
        msgs.clock.advance(days=1, seconds=1)
        assert (await sweep(msgs.module.context)).rooms_purged == 1
        assert await msgs.module.context.store.last_seq(room) == 0

    # --- attachments ------------------------------------------------------------------------------------------------

    async def test_a_message_carries_its_uploaded_files_and_deleting_it_removes_them(
        self, msgs: MessagesHarness
    ) -> None:
        ada, bob = await msgs.person("ada"), await msgs.person("bob")
        room = await msgs.room(ada, bob)
        pdf = b"%PDF-1.7\n" + b"x" * 2048
        uploaded = await msgs.http.post(
            f"/api/messages/rooms/{room}/attachments", content=pdf, headers={**ada.headers, "X-Filename": "plan.pdf"}
        )
        assert uploaded.status_code == 201, uploaded.text
        file_id = uploaded.json()["id"]
        assert uploaded.json()["content_type"] == "application/pdf"
        theirs = await msgs.send(bob, room, "mine now?", attachment_ids=(uuid.UUID(file_id),))
        assert isinstance(theirs.data, ev.MessageRejected)
        assert theirs.data.code == "invalid"
        sent = (await msgs.send(ada, room, "", attachment_ids=(uuid.UUID(file_id),))).data
        assert isinstance(sent, ev.MessageCreated)
        assert sent.attachment_ids == (uuid.UUID(file_id),)
        download = await msgs.http.get(f"/api/messages/rooms/{room}/attachments/{file_id}", headers=bob.headers)
        assert download.content == pdf
        deleted = await msgs.command(
            cmd.DeleteMessage(room_id=room, actor_id=ada.id, message_id=sent.message_id, request_id="del")
        )
        assert isinstance(deleted.data, ev.MessageDeleted)
        gone = await msgs.http.get(f"/api/messages/rooms/{room}/attachments/{file_id}", headers=bob.headers)
        assert gone.status_code == 404
