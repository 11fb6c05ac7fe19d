"""The Socket.IO AsyncAPI document is generated from the protocol models and covers every event served."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from chat_gateway.asyncapi import document, main
from chat_gateway.service.protocol import CLIENT_EVENTS, GATEWAY_EVENTS, MESSAGE_EVENTS

COMMITTED = Path(__file__).parents[3] / "docs" / "asyncapi" / "socketio.json"


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _refs(value)]
    return []


def test_every_reference_resolves() -> None:
    doc = document()
    refs = _refs(doc)
    assert len(refs) > 50
    for ref in refs:
        node: Any = doc
        for part in ref.removeprefix("#/").split("/"):
            assert part in node, f"{ref} does not resolve"
            node = node[part]


def test_every_client_event_is_received_with_its_ack_and_every_server_event_is_sent() -> None:
    operations = document()["operations"]
    for event in CLIENT_EVENTS:
        assert operations[f"receive {event}"]["action"] == "receive"
        assert "reply" in operations[f"receive {event}"]
    for event in [*GATEWAY_EVENTS, *MESSAGE_EVENTS]:
        assert operations[f"send {event}"]["action"] == "send"


def test_the_committed_document_matches_the_protocol() -> None:
    assert main(["--out", str(COMMITTED), "--check"]) == 0
