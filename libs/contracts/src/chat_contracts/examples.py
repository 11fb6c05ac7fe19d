"""One valid, deterministic example of every contract, for tests here and in the services.

    from chat_contracts.examples import example
    event = example(MessageCreated, seq=7, body="hi")

All examples share a small cast (``ALICE_ID`` sends in ``ROOM_ID``, ``BOB_ID`` reacts, …) and one instant
(``EXAMPLE_TIME``) so they fit together in one scenario.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any, TypeVar

from chat_contracts import ephemeral, messages_commands, messages_events, rooms, social, users
from chat_contracts.base import Contract

C = TypeVar("C", bound=Contract)

ALICE_ID = uuid.UUID("0b5b3b8e-6f2a-4c1e-9d7a-a11ce0000001")
BOB_ID = uuid.UUID("0b5b3b8e-6f2a-4c1e-9d7a-b0b000000002")
ROOM_ID = uuid.UUID("5e1f7c2a-3d4b-4e6f-8a9b-700000000001")
MESSAGE_ID = uuid.UUID("9c8d7e6f-5a4b-4c3d-8e2f-3e55a9e00001")
REPLY_TO_ID = uuid.UUID("9c8d7e6f-5a4b-4c3d-8e2f-3e55a9e00000")
ATTACHMENT_ID = uuid.UUID("4a7c2e1b-8d3f-4b6a-9c5e-a77ac4000001")
SESSION_ID = uuid.UUID("2d4f6a8c-1e3b-4d5f-8a7c-5e5510000001")
CLIENT_MSG_ID = "c-0001"
REQUEST_ID = "r-0001"
EXAMPLE_TIME = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


def example(payload_type: type[C], /, **overrides: Any) -> C:
    """A valid ``payload_type`` instance; ``overrides`` replace fields and are validated like any input."""
    base = _examples().get(payload_type)
    if base is None:
        raise LookupError(f"no example for {payload_type.__name__}")
    if not isinstance(base, payload_type):
        raise TypeError(f"example for {payload_type.__name__} is a {type(base).__name__}")
    if not overrides:
        return base
    return payload_type.model_validate({**base.model_dump(), **overrides})


def all_examples() -> tuple[Contract, ...]:
    """One example per contract, in no particular order."""
    return tuple(_examples().values())


@cache
def _examples() -> dict[type[Contract], Contract]:
    instances: tuple[Contract, ...] = (
        *_user_examples(),
        *_room_examples(),
        *_message_examples(),
        *_ephemeral(),
        *_social_examples(),
    )
    return {type(instance): instance for instance in instances}


def _user_examples() -> tuple[Contract, ...]:
    return (
        users.UserRegistered(
            user_id=ALICE_ID,
            username="alice",
            display_name="Alice",
            email_verified=True,
            occurred_at=EXAMPLE_TIME,
        ),
        users.UserUpdated(
            user_id=ALICE_ID,
            username="alice",
            display_name="Alice Liddell",
            avatar_url="https://cdn.example.com/avatars/alice.png",
            occurred_at=EXAMPLE_TIME,
        ),
        users.UserDeleted(user_id=ALICE_ID, occurred_at=EXAMPLE_TIME),
        users.UserSessionsRevoked(
            user_id=ALICE_ID, session_ids=(SESSION_ID,), reason="password_changed", occurred_at=EXAMPLE_TIME
        ),
        users.SigningKeyWithdrawn(kid="Xq3v0bq7h2lO1Lq9", occurred_at=EXAMPLE_TIME),
    )


def _room_examples() -> tuple[Contract, ...]:
    common: dict[str, Any] = {"room_id": ROOM_ID, "occurred_at": EXAMPLE_TIME}
    return (
        rooms.RoomCreated(**common, room_version=1, kind="public", name="general", topic="Say hi", created_by=ALICE_ID),
        rooms.RoomUpdated(**common, room_version=4, kind="public", name="general", topic="Be nice", by=ALICE_ID),
        rooms.RoomArchived(**common, room_version=5, by=ALICE_ID),
        rooms.RoomUnarchived(**common, room_version=6, by=ALICE_ID),
        rooms.RoomBlocked(**common, room_version=13),
        rooms.RoomUnblocked(**common, room_version=14),
        rooms.RoomDeleted(**common, room_version=7, by=ALICE_ID),
        rooms.MemberJoined(**common, room_version=2, user_id=ALICE_ID, role="owner"),
        rooms.MemberLeft(**common, room_version=8, user_id=BOB_ID),
        rooms.MemberInvited(**common, room_version=3, user_id=BOB_ID, by=ALICE_ID),
        rooms.MemberKicked(**common, room_version=9, user_id=BOB_ID, by=ALICE_ID, reason="spam"),
        rooms.MemberBanned(**common, room_version=10, user_id=BOB_ID, by=ALICE_ID, reason="spam"),
        rooms.MemberUnbanned(**common, room_version=11, user_id=BOB_ID, by=ALICE_ID),
        rooms.MemberRoleChanged(
            **common, room_version=12, user_id=BOB_ID, old_role="member", new_role="admin", by=ALICE_ID
        ),
    )


def _message_examples() -> tuple[Contract, ...]:
    return (
        messages_commands.SendMessage(
            room_id=ROOM_ID,
            sender_id=ALICE_ID,
            client_msg_id=CLIENT_MSG_ID,
            body="hello @bob",
            reply_to=REPLY_TO_ID,
            attachment_ids=(ATTACHMENT_ID,),
            request_id=REQUEST_ID,
        ),
        messages_commands.EditMessage(
            room_id=ROOM_ID,
            actor_id=ALICE_ID,
            message_id=MESSAGE_ID,
            body="hello, @bob",
            request_id=REQUEST_ID,
        ),
        messages_commands.DeleteMessage(
            room_id=ROOM_ID, actor_id=ALICE_ID, message_id=MESSAGE_ID, request_id=REQUEST_ID
        ),
        messages_commands.ReactToMessage(
            room_id=ROOM_ID,
            actor_id=BOB_ID,
            message_id=MESSAGE_ID,
            emoji="👍",
            action="add",
            request_id=REQUEST_ID,
        ),
        messages_commands.MarkRead(room_id=ROOM_ID, actor_id=BOB_ID, up_to_seq=1, request_id=REQUEST_ID),
        messages_commands.AcknowledgeDelivery(room_id=ROOM_ID, actor_id=BOB_ID, up_to_seq=1, request_id=REQUEST_ID),
        messages_events.MessageCreated(
            message_id=MESSAGE_ID,
            room_id=ROOM_ID,
            seq=1,
            sender_id=ALICE_ID,
            client_msg_id=CLIENT_MSG_ID,
            body="hello @bob",
            reply_to=REPLY_TO_ID,
            attachment_ids=(ATTACHMENT_ID,),
            mentions=messages_events.Mentions(users=(messages_events.MentionedUser(user_id=BOB_ID, username="bob"),)),
            created_at=EXAMPLE_TIME,
            request_id=REQUEST_ID,
        ),
        messages_events.MessageEdited(
            message_id=MESSAGE_ID,
            room_id=ROOM_ID,
            seq=1,
            body="hello, @bob",
            edited_by=ALICE_ID,
            edited_at=EXAMPLE_TIME + timedelta(minutes=1),
            version=2,
            request_id=REQUEST_ID,
        ),
        messages_events.MessageDeleted(
            message_id=MESSAGE_ID,
            room_id=ROOM_ID,
            seq=1,
            deleted_by=ALICE_ID,
            deleted_at=EXAMPLE_TIME + timedelta(minutes=3),
            version=4,
            request_id=REQUEST_ID,
        ),
        messages_events.ReactionChanged(
            message_id=MESSAGE_ID,
            room_id=ROOM_ID,
            seq=1,
            emoji="👍",
            user_id=BOB_ID,
            action="add",
            counts={"👍": 1},
            version=3,
            request_id=REQUEST_ID,
        ),
        messages_events.ReadMarkerMoved(room_id=ROOM_ID, user_id=BOB_ID, up_to_seq=1, request_id=REQUEST_ID),
        messages_events.DeliveryMarkerMoved(room_id=ROOM_ID, user_id=BOB_ID, up_to_seq=1, request_id=REQUEST_ID),
        messages_events.MessageRejected(
            room_id=ROOM_ID,
            sender_id=ALICE_ID,
            command="message.send",
            client_msg_id=CLIENT_MSG_ID,
            request_id=REQUEST_ID,
            code="rate_limited",
            message="Slow down.",
            retry_after=1.5,
        ),
    )


def _ephemeral() -> tuple[Contract, ...]:
    return (
        ephemeral.TypingChanged(
            room_id=ROOM_ID, user_id=ALICE_ID, typing=True, expires_at=EXAMPLE_TIME + timedelta(seconds=5)
        ),
        ephemeral.PresenceChanged(
            room_id=ROOM_ID, user_id=ALICE_ID, status="online", last_seen=EXAMPLE_TIME, instance_id="gw-a"
        ),
        ephemeral.PresenceChanges(
            room_id=ROOM_ID,
            instance_id="gw-a",
            changes=(
                ephemeral.PresenceReport(user_id=ALICE_ID, status="online", last_seen=EXAMPLE_TIME),
                ephemeral.PresenceReport(user_id=BOB_ID, status="away", last_seen=EXAMPLE_TIME),
            ),
        ),
        ephemeral.GatewayHeartbeat(
            room_id=ephemeral.NO_ROOM, instance_id="gw-a", started_at=EXAMPLE_TIME, interval_seconds=5
        ),
    )


def _social_examples() -> tuple[Contract, ...]:
    a, b, t = ALICE_ID, BOB_ID, EXAMPLE_TIME
    return (
        social.ContactRequested(user_id=a, other_id=b, occurred_at=t),
        social.ContactAccepted(user_id=a, other_id=b, occurred_at=t),
        social.ContactEnded(user_id=a, other_id=b, occurred_at=t, reason="declined"),
        social.UserBlocked(user_id=a, other_id=b, occurred_at=t),
        social.UserUnblocked(user_id=a, other_id=b, occurred_at=t),
    )
