"""What the registry knows about one topic."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal

from chat_contracts.base import Contract

DLQ_SUFFIX = ".dlq"


@dataclass(frozen=True)
class TopicSpec:
    """A topic: its name, partition key, sizing, retention, who produces and consumes it, what it carries."""

    name: str
    key_field: str
    partitions: int
    cleanup_policy: Literal["delete", "compact"]
    retention_ms: int | None
    producers: frozenset[str]
    consumers: frozenset[str]
    payloads: tuple[type[Contract], ...]
    description: str = ""
    payload_types: dict[str, type[Contract]] = field(init=False, repr=False, compare=False)
    key_fields: dict[type[Contract], str] = field(init=False, repr=False, compare=False)
    """Each payload's key field, looked up once (``key_of`` runs for every record published)."""

    def __post_init__(self) -> None:
        by_type: dict[str, type[Contract]] = {}
        for payload in self.payloads:
            type_field = payload.model_fields.get("type")
            if type_field is None or not isinstance(type_field.default, str):
                raise TypeError(f"{payload.__name__} needs a Literal 'type' field with a default")
            if type_field.default in by_type:
                raise TypeError(f"{self.name}: type {type_field.default!r} declared twice")
            if self.key_field_of(payload) not in payload.model_fields:
                raise TypeError(f"{self.name}: {payload.__name__} lacks key field {self.key_field_of(payload)!r}")
            by_type[type_field.default] = payload
        object.__setattr__(self, "payload_types", by_type)
        object.__setattr__(self, "key_fields", {payload: self.key_field_of(payload) for payload in self.payloads})

    @property
    def dlq(self) -> str:
        """The dead-letter topic for records of this topic that cannot be processed."""
        return self.name + DLQ_SUFFIX

    def key_field_of(self, payload: type[Contract]) -> str:
        """The field whose value keys ``payload``'s records: the topic's, unless the payload names its own
        (``KEY_FIELD``) because it is about no instance of what the topic is keyed by."""
        own = getattr(payload, "KEY_FIELD", None)
        return own if isinstance(own, str) else self.key_field

    def key_of(self, data: Contract) -> str:
        """The record key for ``data``: the value of its key field."""
        kind = type(data)
        return key_text(getattr(data, self.key_fields.get(kind) or self.key_field_of(kind)))


@lru_cache(maxsize=16_384)
def key_text(value: object) -> str:
    """``str(value)``, remembered: a room's or user's UUID keys every record about it, and formatting a UUID as
    text is Python code, several times dearer than finding it again."""
    return str(value)
