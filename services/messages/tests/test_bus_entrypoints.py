"""The bus entrypoints: every command and event the service's topics carry has a use case (or is knowingly left
out), and what the use cases need of the envelope reaches them."""

from __future__ import annotations

import uuid
from pathlib import Path

from chat_contracts import messages_commands as cmd
from chat_contracts import rooms as rooms_ev
from chat_contracts.envelope import Envelope
from chat_contracts.topics import MESSAGES_COMMANDS, ROOMS_EVENTS, TOPICS, USERS_EVENTS
from chat_contracts.users import SigningKeyWithdrawn, UserSessionsRevoked
from chat_messages.bootstrap import build_context
from chat_messages.entrypoints.bus import (
    COMMANDS,
    CONSUMER_GROUP,
    ROOM_EVENTS,
    ROOM_NEWS,
    USER_EVENTS,
    BusEntrypoints,
    bus_handlers,
)
from chat_messages.service.context import MessagesContext
from chat_messages.service.owner import RoomOwner
from chat_messages.settings import MessagesSettings
from chat_messages.testing.fake_attachments import FakeAttachmentStore
from chat_messages.testing.fakes import FakeClock, FakeMessageStore, RecordingPublisher
from chat_runtime.bus.port import Pace
from chat_runtime.settings import load_settings
from chat_runtime.testing.tokens import TokenMint

NOT_FOR_THE_MESSAGES_SERVICE = {UserSessionsRevoked, SigningKeyWithdrawn}  # read by the token check's EndedSessionsFeed


def test_every_command_on_the_commands_topic_has_a_use_case() -> None:
    assert set(COMMANDS) == set(MESSAGES_COMMANDS.payloads)


def test_every_room_event_reaches_the_projection_and_the_ledgers() -> None:
    assert set(ROOM_EVENTS) == set(ROOMS_EVENTS.payloads)
    assert set(ROOM_NEWS) == set(ROOMS_EVENTS.payloads)


def test_every_user_event_has_a_use_case_or_is_knowingly_left_out() -> None:
    assert set(USER_EVENTS) == set(USERS_EVENTS.payloads) - NOT_FOR_THE_MESSAGES_SERVICE


def _context(tmp_path: Path, clock: FakeClock, publisher: RecordingPublisher) -> MessagesContext:
    settings = load_settings(MessagesSettings, data_dir=tmp_path)
    mint = TokenMint(issuer=settings.auth_issuer, audience=settings.auth_audience, clock=clock)
    return build_context(
        settings,
        store=FakeMessageStore(),
        attachments=FakeAttachmentStore(),
        publisher=publisher,
        jwks=mint.jwks,
        clock=clock,
    )


def test_the_service_subscribes_to_exactly_the_topics_the_registry_says_it_consumes(tmp_path: Path) -> None:
    ctx = _context(tmp_path, FakeClock(), RecordingPublisher())
    handlers = bus_handlers(ctx, RoomOwner(ctx.store), instance_id="a")
    consumed = {spec.name for spec in TOPICS.values() if "messages" in spec.consumers}
    assert {handler.spec.name for handler in handlers} == consumed


def test_only_the_commands_consumer_follows_the_pace_it_is_given(tmp_path: Path) -> None:
    ctx = _context(tmp_path, FakeClock(), RecordingPublisher())
    pace = Pace(lambda: 0.0, fill=6)
    handlers = bus_handlers(ctx, RoomOwner(ctx.store), instance_id="a", pace=pace)
    assert {(handler.spec.name, handler.group) for handler in handlers if handler.pace is pace} == {
        (MESSAGES_COMMANDS.name, CONSUMER_GROUP)
    }
    assert all(handler.pace is None for handler in bus_handlers(ctx, RoomOwner(ctx.store), instance_id="a"))


async def test_each_answer_of_a_batch_carries_its_commands_correlation_id(tmp_path: Path) -> None:
    clock, publisher = FakeClock(), RecordingPublisher()
    ctx = _context(tmp_path, clock, publisher)
    bus = BusEntrypoints(ctx, RoomOwner(ctx.store))
    room, ada = uuid.uuid4(), uuid.uuid4()
    created = rooms_ev.RoomCreated(
        room_id=room, room_version=1, kind="public", name="r", created_by=ada, occurred_at=clock()
    )
    joined = rooms_ev.MemberJoined(room_id=room, room_version=2, user_id=ada, role="owner", occurred_at=clock())
    for event in (created, joined):
        await bus.on_room_event(Envelope.wrap(event, source="rooms", key=str(room)))
    commands = [
        Envelope.wrap(
            cmd.SendMessage(room_id=room, sender_id=ada, client_msg_id=f"m{i}", body="hi", request_id=f"r{i}"),
            source="gateway",
            key=str(room),
            correlation_id=f"c{i}",
        )
        for i in range(3)
    ]
    await bus.on_commands(commands)
    assert [(e.correlation_id, e.data.request_id) for e in publisher.events] == [  # type: ignore[attr-defined]
        ("c0", "r0"),
        ("c1", "r1"),
        ("c2", "r2"),
    ]
    assert publisher.batches == 1
