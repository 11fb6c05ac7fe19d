"""Publish the Socket.IO side of the protocol as an AsyncAPI 3.0 document, generated from ``service.protocol``.

uv run python -m chat_gateway.asyncapi --out docs/asyncapi/socketio.json            # regenerate
uv run python -m chat_gateway.asyncapi --out docs/asyncapi/socketio.json --check    # exit 1 if stale

Written from the gateway's side: ``receive`` operations are what clients emit (each with its ack as the reply),
``send`` operations are what the gateway emits to clients.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from chat_contracts.topics import MESSAGES_EVENTS
from chat_gateway.service.protocol import CLIENT_EVENTS, GATEWAY_EVENTS, MESSAGE_EVENTS, ErrorAck

ASYNCAPI_VERSION = "3.0.0"
CHANNEL = "socket"


def _schema(model: type[BaseModel], defs: dict[str, Any]) -> dict[str, Any]:
    """The model's JSON Schema with its ``$defs`` lifted into ``components/schemas``."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    defs.update(schema.pop("$defs", {}))
    return schema


def _message_event_schema(type_name: str, *, defs: dict[str, Any]) -> dict[str, Any]:
    schema = _schema(MESSAGES_EVENTS.payload_types[type_name], defs)
    properties = dict(schema["properties"])
    required = [r for r in schema.get("required", []) if r not in ("type", "request_id")]
    properties.pop("type", None)
    properties.pop("request_id", None)
    schema["properties"] = properties
    schema["required"] = required
    return schema


def _name(event: str) -> str:
    return "".join(part.capitalize() for part in event.replace(":", "_").split("_"))


def document(version: str = "0.1.0") -> dict[str, Any]:
    defs: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    defs["ErrorAck"] = _schema(ErrorAck, defs)
    for event, spec in CLIENT_EVENTS.items():
        name = _name(event)
        messages[name] = {
            "name": event,
            "summary": spec.summary,
            "contentType": "application/json",
            "payload": _schema(spec.payload, defs),
        }
        messages[f"{name}Ack"] = {
            "name": f"{event} ack",
            "summary": f"The answer to {event}: success, or ErrorAck with a code",
            "contentType": "application/json",
            "payload": {"oneOf": [_schema(spec.ack, defs), {"$ref": "#/components/schemas/ErrorAck"}]},
        }
        operations[f"receive {event}"] = {
            "action": "receive",
            "channel": {"$ref": f"#/channels/{CHANNEL}"},
            "summary": spec.summary,
            "messages": [{"$ref": f"#/channels/{CHANNEL}/messages/{name}"}],
            "reply": {
                "channel": {"$ref": f"#/channels/{CHANNEL}"},
                "messages": [{"$ref": f"#/channels/{CHANNEL}/messages/{name}Ack"}],
            },
        }
    for event, (summary, model) in GATEWAY_EVENTS.items():
        name = _name(event)
        messages[name] = {"name": event, "summary": summary, "contentType": "application/json"}
        messages[name]["payload"] = _schema(model, defs)
    for event, type_name in MESSAGE_EVENTS.items():
        name = _name(event) + ("Event" if event in CLIENT_EVENTS else "")
        messages[name] = {
            "name": event,
            "summary": f"Mirrors {type_name} on chat.messages.events, to the room's subscribers in seq order",
            "contentType": "application/json",
            "payload": _message_event_schema(type_name, defs=defs),
        }
    server_events = list(GATEWAY_EVENTS) + list(MESSAGE_EVENTS)
    for event in server_events:
        name = _name(event) + ("Event" if event in CLIENT_EVENTS else "")
        operations[f"send {event}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{CHANNEL}"},
            "summary": messages[name]["summary"],
            "messages": [{"$ref": f"#/channels/{CHANNEL}/messages/{name}"}],
        }
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "chat — Socket.IO gateway",
            "version": version,
            "description": (
                "Socket.IO v5 on path /socket.io/ (default namespace). Connect with the access token in the auth "
                "payload ({token}); a refused connection gets connect_error with data {code, message, "
                "retry_after?}. Every client event is answered with an ack: the success shape below or ErrorAck. "
                "docs/protocol.md explains recovery, typing, presence, token refresh and slow clients."
            ),
        },
        "servers": {
            "gateway": {"host": "127.0.0.1:8000", "protocol": "ws", "pathname": "/socket.io/"},
        },
        "channels": {
            CHANNEL: {
                "address": "/",
                "description": "The default namespace; rooms and users are Socket.IO rooms inside it.",
                "messages": {name: {"$ref": f"#/components/messages/{name}"} for name in messages},
            }
        },
        "operations": operations,
        "components": {"messages": messages, "schemas": dict(sorted(defs.items()))},
    }


def render(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, sort_keys=False, ensure_ascii=False) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--check", action="store_true", help="exit 1 when the file differs from the code")
    args = parser.parse_args(argv)
    text = render(document())
    if args.check:
        current = args.out.read_text() if args.out.exists() else ""
        if current != text:
            print(f"{args.out} is out of date: run `make schemas`", file=sys.stderr)
            return 1
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
