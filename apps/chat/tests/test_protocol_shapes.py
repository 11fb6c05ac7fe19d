"""Shapes two services must agree on: a live ``message:new`` from the gateway and an item of the messages
service's history page are the same object, so a client handles replayed and live messages alike."""

from __future__ import annotations

from chat_gateway.service.protocol import MessageOut as LiveMessage
from chat_messages.entrypoints.http import MessageOut as HistoryItem


def test_a_live_message_has_exactly_the_fields_of_a_history_item() -> None:
    live, history = LiveMessage.model_json_schema(), HistoryItem.model_json_schema()
    assert set(live["properties"]) == set(history["properties"])
    assert set(live["required"]) == set(history["required"])
