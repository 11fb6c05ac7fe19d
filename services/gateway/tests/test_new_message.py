"""``message:new`` is built straight from the event; it must stay exactly ``MessageOut`` as JSON, the shape history
pages carry, so a live message and the same one replayed are equal."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from chat_contracts import messages_events as mev
from chat_contracts.messages_out import MentionOut, MessageOut
from chat_gateway.service.delivery import new_message


def through_the_model(data: mev.MessageCreated) -> dict[str, object]:
    return MessageOut(
        id=data.message_id,
        room_id=data.room_id,
        seq=data.seq,
        sender_id=data.sender_id,
        client_msg_id=data.client_msg_id,
        body=data.body,
        created_at=data.created_at,
        edited_at=None,
        deleted=False,
        deleted_by=None,
        reply_to=data.reply_to,
        attachment_ids=list(data.attachment_ids),
        mentions=[MentionOut(user_id=m.user_id, username=m.username) for m in data.mentions.users],
        mentions_room=data.mentions.room,
        reactions=[],
        version=1,
    ).model_dump(mode="json")


def event(**fields: object) -> mev.MessageCreated:
    base: dict[str, object] = {
        "message_id": uuid.uuid4(),
        "room_id": uuid.uuid4(),
        "seq": 7,
        "sender_id": uuid.uuid4(),
        "client_msg_id": "c-1",
        "body": "hello",
        "created_at": datetime(2026, 12, 5, 8, 0, 1, 123456, tzinfo=UTC),
    }
    return mev.MessageCreated.model_validate(base | fields)


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"created_at": datetime(2026, 12, 5, 8, 0, 1, tzinfo=UTC)},  # no fraction of a second
        {"created_at": "2026-12-05T09:00:01.5+01:00"},  # another offset, made UTC by the contract
        {"body": "héllo 👋\nsecond line", "reply_to": uuid.uuid4(), "request_id": "r-1"},
        {"attachment_ids": [uuid.uuid4(), uuid.uuid4()]},
        {"mentions": {"users": [{"user_id": uuid.uuid4(), "username": "ada"}], "room": True}},
        {"body": "", "attachment_ids": [uuid.uuid4()]},
    ],
)
def test_message_new_is_message_out_as_json(fields: dict[str, object]) -> None:
    data = event(**fields)
    assert new_message(data) == through_the_model(data)
    MessageOut.model_validate(new_message(data))
