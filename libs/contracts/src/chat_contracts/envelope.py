"""The event envelope and its Kafka record form.

A record's value is the JSON envelope; its key is the envelope key (the topic's partition key) and its
headers repeat type, version, source, id and correlation id so brokers, tools and dead-letter readers can
route or inspect a record without parsing the value. When tracing is on, the W3C trace context of the publish
(``traceparent``, ``tracestate``) follows them; it is not part of the envelope, so a consumer's contract never
depends on it.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    SerializeAsAny,
    ValidationError,
    field_validator,
)

from chat_contracts.base import Contract
from chat_contracts.errors import ContractError
from chat_contracts.ids import random_hex, random_uuid

if TYPE_CHECKING:
    from chat_contracts.spec import TopicSpec

HEADER_TYPE = "type"
HEADER_VERSION = "version"
HEADER_SOURCE = "source"
HEADER_ID = "id"
HEADER_CORRELATION_ID = "correlation_id"
HEADER_TRACEPARENT = "traceparent"
HEADER_TRACESTATE = "tracestate"
"""W3C Trace Context (https://www.w3.org/TR/trace-context/), as OpenTelemetry's Kafka instrumentations carry it."""


def new_correlation_id() -> str:
    """A fresh correlation id for work that does not continue an existing one."""
    return random_hex()


class Envelope(BaseModel):
    """Metadata around one command or event; ``data`` is the typed payload."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: uuid.UUID = Field(default_factory=random_uuid)
    type: str = Field(min_length=1, max_length=100)
    version: int = Field(ge=1)
    source: str = Field(min_length=1, max_length=50)
    occurred_at: AwareDatetime
    key: str = Field(min_length=1, max_length=200)
    correlation_id: str = Field(min_length=1, max_length=200)
    data: SerializeAsAny[Contract]

    @field_validator("occurred_at")
    @classmethod
    def _to_utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)

    @classmethod
    def wrap(
        cls,
        data: Contract,
        *,
        source: str,
        key: str,
        correlation_id: str | None = None,
        occurred_at: datetime | None = None,
    ) -> Envelope:
        """Envelope ``data`` for publishing; type and version come from the payload class."""
        return cls(
            type=_payload_type(data),
            version=data.SCHEMA_VERSION,
            source=source,
            key=key,
            correlation_id=correlation_id or new_correlation_id(),
            occurred_at=occurred_at or datetime.now(UTC),
            data=data,
        )


class _RawEnvelope(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: uuid.UUID
    type: str = Field(min_length=1, max_length=100)
    version: int = Field(ge=1)
    source: str = Field(min_length=1, max_length=50)
    occurred_at: AwareDatetime
    key: str = Field(min_length=1, max_length=200)
    correlation_id: str = Field(min_length=1, max_length=200)
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Record:
    """One Kafka record as bytes, the form both bus adapters carry."""

    topic: str
    key: bytes
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = field(default=())

    def header(self, name: str) -> str | None:
        """The first header called ``name``, decoded, or None."""
        for header_name, raw in self.headers:
            if header_name == name:
                return raw.decode("utf-8", errors="replace")
        return None


def _payload_type(data: Contract) -> str:
    value = getattr(data, "type", None)
    if not isinstance(value, str):
        raise TypeError(f"{type(data).__name__} has no string 'type' discriminator")
    return value


def encode(envelope: Envelope, *, topic: str, trace: Sequence[tuple[str, bytes]] = ()) -> Record:
    """Serialize an envelope to the record published on ``topic``; ``trace`` (the ``traceparent`` and
    ``tracestate`` headers of the publishing span, when tracing is on) follows the envelope's own headers."""
    value = envelope.model_dump_json().encode("utf-8")
    headers = (
        (HEADER_TYPE, envelope.type.encode()),
        (HEADER_VERSION, str(envelope.version).encode()),
        (HEADER_SOURCE, envelope.source.encode()),
        (HEADER_ID, str(envelope.id).encode()),
        (HEADER_CORRELATION_ID, envelope.correlation_id.encode()),
        *trace,
    )
    return Record(topic=topic, key=envelope.key.encode("utf-8"), value=value, headers=headers)


def encode_later(envelope: Envelope, *, topic: str, trace: Sequence[tuple[str, bytes]] = ()) -> Record:
    """The record ``encode`` would make, whose value and headers are made when first read: the in-process bus
    hands consumers the (frozen) envelope itself, so most of its records are never read as bytes; one that is (a
    dead letter, a bus that round-trips every record, an inspection) reads exactly what ``encode`` gives."""
    return _EncodedWhenRead(envelope, topic=topic, trace=tuple(trace))


class _EncodedWhenRead(Record):
    __slots__ = ("_envelope", "_trace")

    def __init__(self, envelope: Envelope, *, topic: str, trace: tuple[tuple[str, bytes], ...]) -> None:
        object.__setattr__(self, "topic", topic)
        object.__setattr__(self, "key", envelope.key.encode("utf-8"))
        object.__setattr__(self, "_envelope", envelope)
        object.__setattr__(self, "_trace", trace)

    def __eq__(self, other: object) -> bool:
        # A plain Record with the same fields is the same record (the dataclass's own __eq__ wants one class).
        if not isinstance(other, Record):
            return NotImplemented
        return (self.topic, self.key, self.value, self.headers) == (other.topic, other.key, other.value, other.headers)

    __hash__ = Record.__hash__

    def __getattr__(self, name: str) -> Any:
        # Called only for an attribute not set yet: the value and headers, the first time either is read.
        if name not in ("value", "headers"):
            raise AttributeError(name)
        made = encode(self._envelope, topic=self.topic, trace=self._trace)
        object.__setattr__(self, "value", made.value)
        object.__setattr__(self, "headers", made.headers)
        return getattr(made, name)


def decode(record: Record, spec: TopicSpec) -> Envelope:
    """Parse and validate a record against its topic's contracts.

    Raises ContractError with a reason fit for the dead-letter topic when the value is not JSON, is not an
    envelope, names a type the topic does not carry, or its data does not match the contract.
    """
    try:
        raw_json = orjson.loads(record.value)
    except orjson.JSONDecodeError as exc:  # also what orjson raises for bytes that are not UTF-8
        raise ContractError(f"invalid_json: {exc}") from exc
    try:
        raw = _RawEnvelope.model_validate(raw_json)
    except ValidationError as exc:
        raise ContractError(f"invalid_envelope: {_summarize(exc)}") from exc
    payload_type = spec.payload_types.get(raw.type)
    if payload_type is None:
        raise ContractError(f"unknown_type: {raw.type!r} is not carried on {spec.name}")
    if raw.data.get("type", raw.type) != raw.type:
        raise ContractError(f"type_mismatch: envelope says {raw.type!r}, data says {raw.data.get('type')!r}")
    try:
        data = payload_type.model_validate({**raw.data, "type": raw.type})
    except ValidationError as exc:
        raise ContractError(f"invalid_data: {raw.type}: {_summarize(exc)}") from exc
    return Envelope(
        id=raw.id,
        type=raw.type,
        version=raw.version,
        source=raw.source,
        occurred_at=raw.occurred_at,
        key=raw.key,
        correlation_id=raw.correlation_id,
        data=data,
    )


def _summarize(exc: ValidationError) -> str:
    parts = [f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}" for err in exc.errors()[:5]]
    return "; ".join(parts)


def headers_from(
    pairs: Sequence[tuple[str, bytes | None]] | Mapping[str, bytes],
) -> tuple[tuple[str, bytes], ...]:
    """Normalize headers as aiokafka hands them over (values may be None)."""
    items = pairs.items() if isinstance(pairs, Mapping) else pairs
    return tuple((name, value or b"") for name, value in items)
