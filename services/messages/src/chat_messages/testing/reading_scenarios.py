"""Reading a room's messages through the HTTP API: history pages, search, threads and mentions, and the read
markers and receipts that follow them. Mixed into :class:`~chat_messages.testing.scenarios.MessagesScenarios`."""

from __future__ import annotations

from chat_contracts import messages_commands as cmd
from chat_contracts import messages_events as ev
from chat_messages.testing.harness import MessagesHarness


class ReadingScenarios:
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
