"""What the registry knows about one topic."""

from __future__ import annotations

from dataclasses import dataclass, field
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
        return str(getattr(data, self.key_field_of(type(data))))
