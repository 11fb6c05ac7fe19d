"""The messages service's behaviour: the delivery invariants, rejections, changes, the room's life, retention and
attachments, with reading (:mod:`.reading_scenarios`) and the room's activity (:mod:`.activity_scenarios`) mixed
in. Runs on the in-memory fake (unit) and on the Mongo-wire server (integration); subclasses provide ``msgs``."""

from __future__ import annotations

import asyncio
import uuid

from chat_contracts import messages_commands as cmd
from chat_contracts import messages_events as ev
from chat_contracts import rooms as rooms_ev
from chat_contracts.envelope import decode, encode
from chat_contracts.topics import MESSAGES_EVENTS
from chat_messages.entrypoints.bus import BusEntrypoints
from chat_messages.service.owner import RoomOwner
from chat_messages.testing.activity_scenarios import ActivityScenarios
from chat_messages.testing.harness import MessagesHarness
from chat_messages.testing.reading_scenarios import ReadingScenarios


def _rid() -> str:
    return uuid.uuid4().hex


class MessagesScenarios(ReadingScenarios, ActivityScenarios):
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
