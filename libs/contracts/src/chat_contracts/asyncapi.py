"""Publish the Kafka side of the protocol as an AsyncAPI 3.0 document, generated from the topic registry.

uv run python -m chat_contracts.asyncapi --out docs/asyncapi/kafka.json            # regenerate
uv run python -m chat_contracts.asyncapi --out docs/asyncapi/kafka.json --check    # exit 1 if stale
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from chat_contracts.schema_export import contract_schema, envelope_schema, render
from chat_contracts.topics import TOPICS

ASYNCAPI_VERSION = "3.0.0"


def _component_name(type_name: str) -> str:
    return "".join(part.capitalize() for part in type_name.replace("_", ".").split("."))


def document(version: str = "0.1.0") -> dict[str, Any]:
    """The AsyncAPI document: one channel per topic, its messages, and who sends and receives them."""
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for spec in TOPICS.values():
        channel_messages: dict[str, Any] = {}
        for type_name, payload in sorted(spec.payload_types.items()):
            name = _component_name(type_name)
            messages[name] = {
                "name": type_name,
                "title": payload.__name__,
                "summary": (payload.__doc__ or "").strip().splitlines()[0] if payload.__doc__ else "",
                "contentType": "application/json",
                "headers": {"$ref": "#/components/schemas/RecordHeaders"},
                "payload": contract_schema(payload, spec.name),
                "bindings": {"kafka": {"key": {"type": "string", "description": f"the {spec.key_field_of(payload)}"}}},
            }
            channel_messages[name] = {"$ref": f"#/components/messages/{name}"}
        channels[spec.name] = {
            "address": spec.name,
            "description": spec.description,
            "messages": channel_messages,
            "bindings": {
                "kafka": {
                    "topic": spec.name,
                    "partitions": spec.partitions,
                    "topicConfiguration": {
                        "cleanup.policy": [spec.cleanup_policy],
                        "retention.ms": spec.retention_ms if spec.retention_ms is not None else -1,
                    },
                }
            },
        }
        refs = [{"$ref": f"#/channels/{spec.name}/messages/{name}"} for name in channel_messages]
        for producer in sorted(spec.producers):
            operations[f"{producer}.send.{spec.name}"] = {
                "action": "send",
                "channel": {"$ref": f"#/channels/{spec.name}"},
                "summary": f"{producer} publishes to {spec.name} (key: {spec.key_field})",
                "messages": refs,
            }
        for consumer in sorted(spec.consumers):
            operations[f"{consumer}.receive.{spec.name}"] = {
                "action": "receive",
                "channel": {"$ref": f"#/channels/{spec.name}"},
                "summary": f"{consumer} consumes {spec.name} in its own consumer group",
                "messages": refs,
            }
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "chat — Kafka topics",
            "version": version,
            "description": (
                "Every record value is the JSON envelope (components/schemas/Envelope) whose `data` is the "
                "message payload below; the record key is the topic's key field; headers repeat type, "
                "version, source, id and correlation_id. Undecodable records go to `<topic>.dlq` with "
                "`dlq.*` headers."
            ),
        },
        "servers": {"kafka": {"host": "127.0.0.1:19092", "protocol": "kafka", "description": "local broker"}},
        "channels": channels,
        "operations": operations,
        "components": {
            "messages": messages,
            "schemas": {
                "Envelope": envelope_schema(),
                "RecordHeaders": {
                    "type": "object",
                    "properties": {
                        name: {"type": "string"} for name in ("type", "version", "source", "id", "correlation_id")
                    },
                    "required": ["type", "version", "source", "id", "correlation_id"],
                },
            },
        },
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Write (or with --check, verify) the AsyncAPI document."""
    parser = argparse.ArgumentParser(prog="python -m chat_contracts.asyncapi", description=__doc__)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--check", action="store_true", help="exit 1 if the file differs from the registry")
    args = parser.parse_args(argv)
    text = render(document())
    if args.check:
        if not args.out.exists() or args.out.read_text(encoding="utf-8") != text:
            print(f"{args.out} is stale: run `make schemas`", file=sys.stderr)
            return 1
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

__all__ = ["document", "main"]
