"""Every layer applies the same client limits, those of chat_contracts: the gateway's socket payloads refuse exactly
what the messages service and the bus contracts would refuse, and the settings default to the contracts' numbers."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from chat_contracts.fields import (
    ATTACHMENT_MAX_BYTES,
    MAX_ATTACHMENTS,
    MAX_BODY_CHARS,
    MAX_CLIENT_MSG_ID_CHARS,
    MAX_EMOJI_CHARS,
    MAX_FRAME_BYTES,
    MAX_ROOMS_PER_SUBSCRIBE,
)
from chat_contracts.messages_commands import ReactToMessage, SendMessage
from chat_gateway.service.protocol import React, Send, SubscribeMany
from chat_gateway.settings import GatewaySettings
from chat_messages.domain.errors import Rejection
from chat_messages.domain.text import normalize_body
from chat_messages.settings import MessagesSettings
from chat_runtime.settings import SettingsError, load_settings

ROOM, MESSAGE = str(uuid.uuid4()), str(uuid.uuid4())


def accepts(model: type[BaseModel], **payload: Any) -> bool:
    try:
        model.model_validate(payload)
    except ValidationError:
        return False
    return True


def service_accepts(body: str) -> bool:
    try:
        normalize_body(body, has_attachments=True)
    except Rejection as rejection:
        return rejection.code != "too_long"
    return True


@pytest.mark.parametrize(
    "body",
    [
        "x" * MAX_BODY_CHARS,
        "x" * (MAX_BODY_CHARS + 1),
        "x" * MAX_BODY_CHARS + "   \n",
        "e\u0301" * MAX_BODY_CHARS,
        "e\u0301" * (MAX_BODY_CHARS + 1),
        "\ufb2c" * (MAX_BODY_CHARS // 3),
        "\ufb2c" * (MAX_BODY_CHARS // 3 + 1),
        "🙂" * MAX_BODY_CHARS,
        "x" * 16000,
    ],
)
def test_the_gateway_refuses_a_body_exactly_when_the_messages_service_would(body: str) -> None:
    sent = {"room_id": ROOM, "client_msg_id": "c-1", "body": body}
    assert accepts(Send, **sent) is service_accepts(body)


def test_the_gateway_takes_every_client_msg_id_emoji_and_attachment_list_the_bus_contracts_take() -> None:
    common = {"room_id": ROOM, "request_id": "r-1"}
    user = uuid.uuid4()
    for client_msg_id in ("c" * MAX_CLIENT_MSG_ID_CHARS, "c" * (MAX_CLIENT_MSG_ID_CHARS + 1), "a b"):
        assert accepts(Send, room_id=ROOM, client_msg_id=client_msg_id) is accepts(
            SendMessage, **common, sender_id=user, client_msg_id=client_msg_id, body=""
        )
    for attachments in (MAX_ATTACHMENTS, MAX_ATTACHMENTS + 1):
        ids = [str(uuid.uuid4()) for _ in range(attachments)]
        assert accepts(Send, room_id=ROOM, client_msg_id="c", attachment_ids=ids) is accepts(
            SendMessage, **common, sender_id=user, client_msg_id="c", body="", attachment_ids=ids
        )
    family = "👩\u200d👩\u200d👧\u200d👦"
    for emoji in ("👍", family, ":" + "x" * (MAX_EMOJI_CHARS - 2) + ":", "x" * (MAX_EMOJI_CHARS + 1), "a b"):
        reaction = {"message_id": MESSAGE, "emoji": emoji, "action": "add"}
        assert accepts(React, room_id=ROOM, **reaction) is accepts(ReactToMessage, **common, actor_id=user, **reaction)
    assert accepts(React, room_id=ROOM, message_id=MESSAGE, emoji="x" * MAX_EMOJI_CHARS, action="add")


def test_room_subscribe_many_takes_up_to_the_contracts_number_of_rooms() -> None:
    rooms = [{"room_id": str(uuid.uuid4())} for _ in range(MAX_ROOMS_PER_SUBSCRIBE + 1)]
    assert accepts(SubscribeMany, rooms=rooms[:MAX_ROOMS_PER_SUBSCRIBE])
    assert not accepts(SubscribeMany, rooms=rooms)


def test_the_settings_default_to_the_contracts_limits_and_cannot_exceed_the_frame_limit() -> None:
    assert load_settings(MessagesSettings).attachment_max_bytes == ATTACHMENT_MAX_BYTES
    assert load_settings(GatewaySettings).max_message_bytes == MAX_FRAME_BYTES
    with pytest.raises(SettingsError, match="CHAT_GATEWAY_MAX_MESSAGE_BYTES"):
        load_settings(GatewaySettings, max_message_bytes=MAX_FRAME_BYTES + 1)
