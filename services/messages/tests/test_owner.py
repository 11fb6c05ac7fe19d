"""The room owner and batched commands: what a batch costs the store and the bus, and how seqs stay dense when a
batch meets a resend, a rival owner, a failed write or a room that changed."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest

from chat_contracts import messages_commands as cmd
from chat_contracts import messages_events as ev
from chat_contracts import rooms as rooms_ev
from chat_contracts.base import Contract
from chat_contracts.envelope import Envelope
from chat_messages.bootstrap import build_context
from chat_messages.domain.model import Message
from chat_messages.entrypoints.bus import BusEntrypoints
from chat_messages.service.context import MessagesContext
from chat_messages.service.owner import HEAD_STEP, RoomLedger, RoomOwner
from chat_messages.service.ports import InsertOutcome
from chat_messages.service.projection import apply_room_event, note_room_event
from chat_messages.settings import MessagesSettings
from chat_messages.testing.fake_attachments import FakeAttachmentStore
from chat_messages.testing.fakes import FakeClock, FakeMessageStore, RecordingPublisher
from chat_runtime.settings import load_settings
from chat_runtime.testing.tokens import TokenMint

E = TypeVar("E", bound=Contract)


class Setting:
    def __init__(self, tmp_path: Path, store: FakeMessageStore | None = None) -> None:
        settings = load_settings(MessagesSettings, data_dir=tmp_path, send_burst=1000, send_per_second=100)
        self.clock = FakeClock()
        self.store = store or FakeMessageStore()
        self.publisher = RecordingPublisher()
        mint = TokenMint(issuer=settings.auth_issuer, audience=settings.auth_audience, clock=self.clock)
        self.ctx: MessagesContext = build_context(
            settings,
            store=self.store,
            attachments=FakeAttachmentStore(),
            publisher=self.publisher,
            jwks=mint.jwks,
            clock=self.clock,
        )
        self.owner = RoomOwner(self.store)
        self.versions: dict[uuid.UUID, int] = {}

    def room_event(self, room_id: uuid.UUID, event: type[E], **fields: object) -> E:
        version = self.versions[room_id] = self.versions.get(room_id, 0) + 1
        return event.model_validate(
            {"room_id": room_id, "room_version": version, "occurred_at": self.clock(), **fields}
        )

    async def room(self, *members: uuid.UUID) -> uuid.UUID:
        room_id = uuid.uuid4()
        created = self.room_event(
            room_id, rooms_ev.RoomCreated, kind="public", name="r", created_by=members[0], history="shared"
        )
        await apply_room_event(self.ctx, self.owner, created)
        for user in members:
            joined = self.room_event(room_id, rooms_ev.MemberJoined, user_id=user, role="member")
            await apply_room_event(self.ctx, self.owner, joined)
        return room_id

    async def batch(self, commands: Sequence[cmd.SendMessage | cmd.EditMessage]) -> list[Contract]:
        before = len(self.publisher.events)
        await BusEntrypoints(self.ctx, self.owner).on_commands(delivered(commands))
        return [e.data for e in self.publisher.events[before:]]


def delivered(commands: Sequence[cmd.SendMessage | cmd.EditMessage]) -> list[Envelope]:
    """The commands as the bus delivers them, a batch at a time."""
    return [Envelope.wrap(c, source="gateway", key=str(c.room_id)) for c in commands]


def send(room_id: uuid.UUID, sender: uuid.UUID, client_msg_id: str, **extra: object) -> cmd.SendMessage:
    return cmd.SendMessage.model_validate(
        {
            "room_id": room_id,
            "sender_id": sender,
            "client_msg_id": client_msg_id,
            "body": f"body of {client_msg_id}",
            "request_id": uuid.uuid4().hex,
            **extra,
        }
    )


def seqs(answers: Sequence[Contract]) -> list[int]:
    return [a.seq for a in answers if isinstance(a, ev.MessageCreated)]


def stored_seqs(store: FakeMessageStore, room_id: uuid.UUID) -> list[int]:
    return sorted(s.message.seq for s in store.messages.values() if s.message.room_id == room_id)


async def test_a_batch_of_sends_costs_one_store_write_and_one_publish(tmp_path: Path) -> None:
    setting = Setting(tmp_path)
    people = [uuid.uuid4() for _ in range(3)]
    room = await setting.room(*people)
    await setting.batch([send(room, people[0], "warm-up")])  # the room's ledger and memberships are read once
    writes, batches = setting.store.writes, setting.publisher.batches
    commands = [send(room, people[i % 3], f"m{i}") for i in range(20)]
    answers = await setting.batch(commands)
    assert (setting.store.writes - writes, setting.publisher.batches - batches) == (1, 1)
    assert [getattr(a, "request_id", None) for a in answers] == [c.request_id for c in commands]
    assert seqs(answers) == list(range(2, 22))
    assert stored_seqs(setting.store, room) == list(range(1, 22))


async def test_a_batch_over_several_rooms_numbers_each_room_on_its_own_in_one_write(tmp_path: Path) -> None:
    setting = Setting(tmp_path)
    ada, bob = uuid.uuid4(), uuid.uuid4()
    rooms = [await setting.room(ada, bob) for _ in range(3)]
    writes = setting.store.writes
    commands = [send(rooms[i % 3], (ada, bob)[i % 2], f"m{i}") for i in range(9)]
    answers = await setting.batch(commands)  # the ledgers and memberships of the three rooms, read together
    assert setting.store.writes - writes == 1
    assert [(a.room_id, a.seq) for a in answers if isinstance(a, ev.MessageCreated)] == [
        (rooms[i % 3], i // 3 + 1) for i in range(9)
    ]
    assert [stored_seqs(setting.store, room) for room in rooms] == [[1, 2, 3]] * 3


async def test_a_batch_of_one_room_is_answered_without_a_task_of_its_own(tmp_path: Path) -> None:
    setting = Setting(tmp_path)
    ada = uuid.uuid4()
    room = await setting.room(ada)
    await setting.batch([send(room, ada, "warm-up")])
    made: list[str] = []

    def counted(loop: asyncio.AbstractEventLoop, coro: Any, **options: Any) -> asyncio.Task[Any]:
        made.append(coro.__qualname__)
        return asyncio.Task(coro, loop=loop, **options)

    loop = asyncio.get_running_loop()
    loop.set_task_factory(counted)
    try:
        answers = await setting.batch([send(room, ada, "a"), send(room, ada, "b")])
    finally:
        loop.set_task_factory(None)
    assert seqs(answers) == [2, 3]
    assert made == []


async def test_a_resend_inside_a_batch_is_answered_by_the_stored_message_and_its_seq_goes_to_the_next(
    tmp_path: Path,
) -> None:
    setting = Setting(tmp_path)
    ada = uuid.uuid4()
    room = await setting.room(ada)
    (original,) = await setting.batch([send(room, ada, "x")])
    assert isinstance(original, ev.MessageCreated)
    answers = await setting.batch([send(room, ada, "a"), send(room, ada, "x"), send(room, ada, "b")])
    assert [(a.client_msg_id, a.seq) for a in answers if isinstance(a, ev.MessageCreated)] == [
        ("a", 2),
        ("x", 1),
        ("b", 3),
    ]
    assert answers[1].message_id == original.message_id  # type: ignore[attr-defined]
    assert stored_seqs(setting.store, room) == [1, 2, 3]


async def test_the_same_client_msg_id_twice_in_one_batch_is_stored_once(tmp_path: Path) -> None:
    setting = Setting(tmp_path)
    ada = uuid.uuid4()
    room = await setting.room(ada)
    first, again = send(room, ada, "same"), send(room, ada, "same")
    answers = await setting.batch([first, again, send(room, ada, "next")])
    created = [a for a in answers if isinstance(a, ev.MessageCreated)]
    assert [(a.client_msg_id, a.seq, a.request_id) for a in created] == [
        ("same", 1, first.request_id),
        ("same", 1, again.request_id),
        ("next", 2, created[2].request_id),
    ]
    assert created[0].message_id == created[1].message_id
    assert stored_seqs(setting.store, room) == [1, 2]


async def test_an_owner_that_is_behind_numbers_again_from_the_store_and_leaves_no_gap(tmp_path: Path) -> None:
    setting = Setting(tmp_path)
    ada = uuid.uuid4()
    room = await setting.room(ada)
    stale = RoomOwner(setting.store)
    await stale.ledger(room)  # loaded while the room was empty: it expects seq 1 next
    await setting.batch([send(room, ada, f"new-{i}") for i in range(3)])  # the current owner stores 1..3
    before = len(setting.publisher.events)
    await BusEntrypoints(setting.ctx, stale).on_commands(delivered([send(room, ada, f"old-{i}") for i in range(4)]))
    answers = [e.data for e in setting.publisher.events[before:]]
    assert seqs(answers) == [4, 5, 6, 7]
    assert stored_seqs(setting.store, room) == list(range(1, 8))


class FailingOnce(FakeMessageStore):
    """Refuses the first insert as an unreachable server would."""

    def __init__(self) -> None:
        super().__init__()
        self.fail = True

    async def insert_messages(self, messages: Sequence[Message]) -> InsertOutcome:
        if self.fail:
            self.fail = False
            raise ConnectionError("store unreachable")
        return await super().insert_messages(messages)


async def test_a_batch_whose_write_failed_is_numbered_again_from_where_it_was_when_redelivered(
    tmp_path: Path,
) -> None:
    store = FailingOnce()
    setting = Setting(tmp_path, store)
    ada = uuid.uuid4()
    room = await setting.room(ada)
    commands = [send(room, ada, f"m{i}") for i in range(5)]
    with pytest.raises(ConnectionError):
        await setting.batch(commands)
    assert setting.publisher.events == []  # nothing was announced
    answers = await setting.batch(commands)  # the bus delivers the same records again
    assert seqs(answers) == [1, 2, 3, 4, 5]
    assert stored_seqs(store, room) == [1, 2, 3, 4, 5]


async def test_a_room_event_seen_from_another_instance_makes_the_owner_read_the_membership_again(
    tmp_path: Path,
) -> None:
    setting = Setting(tmp_path)
    ada, bob = uuid.uuid4(), uuid.uuid4()
    room = await setting.room(ada, bob)
    assert seqs(await setting.batch([send(room, bob, "before")])) == [1]
    # Another instance's projection removes bob; this instance only hears about it on its broadcast subscription.
    kicked = setting.room_event(room, rooms_ev.MemberKicked, user_id=bob, by=ada)
    await apply_room_event(setting.ctx, RoomOwner(setting.store), kicked)
    note_room_event(setting.owner, kicked)
    (answer,) = await setting.batch([send(room, bob, "after")])
    assert isinstance(answer, ev.MessageRejected)
    assert answer.code == "not_member"


async def test_a_command_issued_at_a_newer_room_version_waits_for_the_projection(tmp_path: Path) -> None:
    setting = Setting(tmp_path)
    ada, bob = uuid.uuid4(), uuid.uuid4()
    room = await setting.room(ada)
    joined = setting.room_event(room, rooms_ev.MemberJoined, user_id=bob, role="member")
    version = setting.versions[room]

    async def join_a_moment_later() -> None:
        await asyncio.sleep(0.2)
        await apply_room_event(setting.ctx, setting.owner, joined)

    joining = asyncio.create_task(join_a_moment_later())
    answers = await setting.batch([send(room, bob, "hi", room_version=version)])
    await joining
    assert seqs(answers) == [1]


async def test_an_edit_in_a_batch_sees_the_sends_before_it(tmp_path: Path) -> None:
    setting = Setting(tmp_path)
    ada = uuid.uuid4()
    room = await setting.room(ada)
    (created,) = await setting.batch([send(room, ada, "first")])
    assert isinstance(created, ev.MessageCreated)
    edit = cmd.EditMessage(
        room_id=room, actor_id=ada, message_id=created.message_id, body="edited", request_id=uuid.uuid4().hex
    )
    answers = await setting.batch([send(room, ada, "second"), edit, send(room, ada, "third")])
    assert [type(a).__name__ for a in answers] == ["MessageCreated", "MessageEdited", "MessageCreated"]
    assert seqs(answers) == [2, 3]
    assert setting.store.writes >= 2


# The send budget, kept in memory by the room's owner.


def ledger() -> RoomLedger:
    return RoomLedger(room_id=uuid.uuid4(), state=None, next_seq=1)


async def test_heads_are_written_together_and_not_due_before_a_room_moves_a_step(tmp_path: Path) -> None:
    setting = Setting(tmp_path)
    person = uuid.uuid4()
    quiet, busy = await setting.room(person), await setting.room(person)
    await setting.batch([send(quiet, person, "q1")] + [send(busy, person, f"b{i}") for i in range(HEAD_STEP - 1)])
    due = asyncio.create_task(setting.owner.heads_due())
    await asyncio.sleep(0.05)
    assert not due.done(), "a room that moved less than a step waits for the flush interval"
    await setting.batch([send(busy, person, "one-more")])
    await asyncio.wait_for(due, 0.5)  # a room a whole step behind is due at once
    assert setting.store.heads == {}, "nothing written before the flush"
    await setting.owner.flush_heads()
    assert setting.store.heads == {quiet: 1, busy: HEAD_STEP}, "every room that moved, in one write"
    await setting.batch([send(busy, person, "after-the-flush")])
    due = asyncio.create_task(setting.owner.heads_due())
    await asyncio.sleep(0.05)
    assert not due.done(), "the step counts from the head written last"
    due.cancel()


def test_a_budget_gives_its_capacity_then_says_how_long_to_wait() -> None:
    room, user = ledger(), uuid.uuid4()
    for _ in range(3):
        assert room.take(user, now=0.0, capacity=3, per_second=0.5) == 0.0
    assert room.take(user, now=0.0, capacity=3, per_second=0.5) == pytest.approx(2.0)
    assert room.take(user, now=1.0, capacity=3, per_second=0.5) == pytest.approx(1.0)


def test_a_refused_take_takes_nothing_and_the_budget_refills_over_time_up_to_its_capacity() -> None:
    room, user = ledger(), uuid.uuid4()

    def take(at: float) -> float:
        return room.take(user, now=at, capacity=2, per_second=1)

    assert take(0) == 0.0
    assert take(0) == 0.0
    assert take(0.25) == pytest.approx(0.75)
    assert take(0.5) == pytest.approx(0.5)
    assert take(1.0) == 0.0
    assert take(1.0) == pytest.approx(1.0)
    later = timedelta(hours=1).total_seconds()
    assert take(later) == 0.0
    assert take(later) == 0.0
    assert take(later) > 0


def test_budgets_are_kept_per_sender_and_never_refill_for_time_going_backwards() -> None:
    room, ada, bob = ledger(), uuid.uuid4(), uuid.uuid4()
    assert room.take(ada, now=10.0, capacity=1, per_second=1) == 0.0
    assert room.take(ada, now=10.0, capacity=1, per_second=1) > 0
    assert room.take(bob, now=10.0, capacity=1, per_second=1) == 0.0
    assert room.take(ada, now=5.0, capacity=1, per_second=1) > 0
