"""The topic registry: every Kafka topic, its key, sizing, retention, producers and consumers.

This is the only place topic names appear. Services refer to topics through the specs below.

Partitions: the two messages topics carry every chat message and get 12, the rest 6. Both messages topics use
the same count and the same key (``room_id``), so a room's commands and events land on the same partition
number, and a consumer group can spread the load over up to 12 instances. Kafka only lets the count grow, and
growing it moves keys between partitions (breaking per-room order during the move), so start with room to
spare.

Retention: ``retention_ms=None`` means "keep forever" (Kafka ``retention.ms=-1``).

- ``chat.users.events`` and ``chat.rooms.events`` are kept forever with ``delete`` cleanup: services build
  their own projections from them (messages keeps room membership), and a new or rebuilt projection replays
  from the first offset. Compaction would be wrong because one key carries different kinds of facts (a later
  ``MemberLeft`` does not replace an earlier ``MemberJoined`` of another user). The users topic carries no
  email or secret, but a deleted account's username and display name stay in the log; if that must change,
  the way out is a compacted snapshot topic with tombstones, not shorter retention here.
- ``chat.messages.commands`` and ``chat.messages.events``: 7 days. The message store, not Kafka, is the record
  of history; 7 days covers a consumer that is down over a long weekend.
- ``chat.ephemeral``: 1 hour. Typing and presence are worthless minutes later.

Dead letters: records a consumer cannot process go, unchanged (same key, value and headers), to ``spec.dlq``
(``<name>.dlq``) with the reason and origin in the ``DLQ_HEADER_*`` headers.
"""

from __future__ import annotations

from typing import Final, Literal, TypeAlias

from chat_contracts import ephemeral, messages_commands, messages_events, rooms, social, users
from chat_contracts.base import Contract
from chat_contracts.spec import DLQ_SUFFIX, TopicSpec

__all__ = [
    "DLQ_HEADER_OFFSET",
    "DLQ_HEADER_PARTITION",
    "DLQ_HEADER_REASON",
    "DLQ_HEADER_TOPIC",
    "DLQ_PARTITIONS",
    "DLQ_RETENTION_MS",
    "DLQ_SUFFIX",
    "EPHEMERAL",
    "MESSAGES_COMMANDS",
    "MESSAGES_EVENTS",
    "ROOMS_EVENTS",
    "SERVICES",
    "SOCIAL_EVENTS",
    "TOPICS",
    "USERS_EVENTS",
    "Service",
    "TopicSpec",
    "all_payloads",
    "topic_for",
]

Service: TypeAlias = Literal["auth", "rooms", "messages", "gateway"]
SERVICES: Final[frozenset[str]] = frozenset({"auth", "rooms", "messages", "gateway"})

_HOUR_MS: Final = 60 * 60 * 1000
_DAY_MS: Final = 24 * _HOUR_MS

USERS_EVENTS: Final = TopicSpec(
    name="chat.users.events",
    key_field="user_id",
    partitions=6,
    cleanup_policy="delete",
    retention_ms=None,
    producers=frozenset({"auth"}),
    consumers=frozenset({"rooms", "messages", "gateway"}),
    payloads=users.PAYLOADS,
    description="Account facts: registration, profile changes, deletion, ended sessions; withdrawn signing keys.",
)

ROOMS_EVENTS: Final = TopicSpec(
    name="chat.rooms.events",
    key_field="room_id",
    partitions=6,
    cleanup_policy="delete",
    retention_ms=None,
    producers=frozenset({"rooms"}),
    consumers=frozenset({"messages", "gateway"}),
    payloads=rooms.PAYLOADS,
    description="Rooms and membership, each event stamped with the room's version.",
)

SOCIAL_EVENTS: Final = TopicSpec(
    name="chat.social.events",
    key_field="user_id",
    partitions=6,
    cleanup_policy="delete",
    retention_ms=None,
    producers=frozenset({"rooms"}),
    consumers=frozenset({"gateway"}),
    payloads=social.PAYLOADS,
    description="Contacts and blocks between two users, keyed by the user who acted.",
)

MESSAGES_COMMANDS: Final = TopicSpec(
    name="chat.messages.commands",
    key_field="room_id",
    partitions=12,
    cleanup_policy="delete",
    retention_ms=7 * _DAY_MS,
    producers=frozenset({"gateway"}),
    consumers=frozenset({"messages"}),
    payloads=messages_commands.PAYLOADS,
    description="What users ask of the messages service: send, edit, delete, react, move markers.",
)

MESSAGES_EVENTS: Final = TopicSpec(
    name="chat.messages.events",
    key_field="room_id",
    partitions=12,
    cleanup_policy="delete",
    retention_ms=7 * _DAY_MS,
    producers=frozenset({"messages"}),
    consumers=frozenset({"gateway"}),
    payloads=messages_events.PAYLOADS,
    description="What happened to messages, and the answer to every command (including rejections).",
)

EPHEMERAL: Final = TopicSpec(
    name="chat.ephemeral",
    key_field="room_id",
    partitions=6,
    cleanup_policy="delete",
    retention_ms=_HOUR_MS,
    producers=frozenset({"gateway"}),
    consumers=frozenset({"gateway"}),
    payloads=ephemeral.PAYLOADS,
    description="Typing and presence between gateway instances, per room.",
)

TOPICS: Final[dict[str, TopicSpec]] = {
    spec.name: spec
    for spec in (USERS_EVENTS, ROOMS_EVENTS, SOCIAL_EVENTS, MESSAGES_COMMANDS, MESSAGES_EVENTS, EPHEMERAL)
}

DLQ_PARTITIONS: Final = 1
"""Dead-letter topics are read by people and tools, not scaled-out consumers; order does not matter."""
DLQ_RETENTION_MS: Final = 30 * _DAY_MS
"""Long enough for someone to notice, diagnose and replay."""

DLQ_HEADER_REASON: Final = "dlq.reason"
"""Why the record was dead-lettered, e.g. the ``ContractError.reason`` (``invalid_data: …``)."""
DLQ_HEADER_TOPIC: Final = "dlq.topic"
DLQ_HEADER_PARTITION: Final = "dlq.partition"
DLQ_HEADER_OFFSET: Final = "dlq.offset"


def _index() -> dict[str, TopicSpec]:
    by_type: dict[str, TopicSpec] = {}
    for spec in TOPICS.values():
        for type_name in spec.payload_types:
            if type_name in by_type:
                raise TypeError(f"type {type_name!r} is on both {by_type[type_name].name} and {spec.name}")
            by_type[type_name] = spec
    return by_type


_BY_TYPE: Final = _index()


def topic_for(payload: type[Contract] | Contract | str) -> TopicSpec:
    """The topic that carries ``payload`` (a contract class, an instance, or its ``type`` string).

    Raises LookupError for anything no topic carries.
    """
    if isinstance(payload, str):
        spec = _BY_TYPE.get(payload)
        if spec is None:
            raise LookupError(f"no topic carries {payload!r}")
        return spec
    cls = payload if isinstance(payload, type) else type(payload)
    type_field = cls.model_fields.get("type")
    type_name = None if type_field is None else type_field.default
    spec = _BY_TYPE.get(type_name) if isinstance(type_name, str) else None
    # The type string alone is not enough: a look-alike class with a registered type is not carried anywhere.
    if spec is None or spec.payload_types[str(type_name)] is not cls:
        raise LookupError(f"no topic carries {cls.__name__}")
    return spec


def all_payloads() -> tuple[type[Contract], ...]:
    """Every contract on every topic, in registry order."""
    return tuple(payload for spec in TOPICS.values() for payload in spec.payloads)
