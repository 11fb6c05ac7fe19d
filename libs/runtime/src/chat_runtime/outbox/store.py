"""The outbox table and the writer's side: enqueue an event in the transaction that makes the change."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import Any, Final, TypeAlias

from chat_contracts.envelope import Envelope, encode
from chat_runtime import tracing
from chat_runtime.extras import missing_extra

try:
    from sqlalchemy import (
        BigInteger,
        Column,
        DateTime,
        Identity,
        Index,
        LargeBinary,
        MetaData,
        String,
        Table,
        func,
        insert,
        text,
    )
    from sqlalchemy.dialects import postgresql
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
except ImportError as missing:
    raise missing_extra("postgres", __name__, missing) from missing

# Kafka brokers refuse records over ``message.max.bytes`` (about 1 MiB by default). A record that can never be
# published would block its key in the outbox forever, so refuse it while the writer can still roll back.
MAX_RECORD_BYTES: Final = 1_000_000

StoredHeader: TypeAlias = list[str | dict[str, str]]
"""One header as stored: ``[name, text]``, or ``[name, {"base64": ...}]`` when the value is not plain text."""

# The canonical definition lives on a private MetaData: enqueue and the relay use it, and services copy it
# into their own MetaData with ``outbox_table``. Defining a Table connects to nothing.
_METADATA: Final = MetaData()

OUTBOX: Final = Table(
    "outbox",
    _METADATA,
    Column("position", BigInteger, Identity(always=True), primary_key=True),
    Column("event_id", postgresql.UUID(as_uuid=True), nullable=False, unique=True),
    Column("topic", String(200), nullable=False),
    Column("record_key", String(200), nullable=False),
    Column("record_value", LargeBinary, nullable=False),
    Column("headers", postgresql.JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("published_at", DateTime(timezone=True), nullable=True),
    Index("outbox_unpublished", "position", postgresql_where=text("published_at IS NULL")),
)
"""The ``outbox`` table exactly as each PostgreSQL service's migration 0001 creates it."""


def outbox_table(metadata: MetaData) -> Table:
    """Add the outbox table (with its partial index) to a service's own MetaData and return it."""
    return OUTBOX.to_metadata(metadata)


def encode_headers(headers: Sequence[tuple[str, bytes]]) -> list[StoredHeader]:
    """Headers as a JSON list that PostgreSQL's jsonb accepts and ``decode_headers`` restores exactly."""
    stored: list[StoredHeader] = []
    for name, value in headers:
        _check_name(name)
        readable = _as_text(value)
        if readable is None:
            stored.append([name, {"base64": base64.b64encode(value).decode("ascii")}])
        else:
            stored.append([name, readable])
    return stored


def decode_headers(stored: Any) -> tuple[tuple[str, bytes], ...]:
    """The record headers ``encode_headers`` stored, byte for byte, in their original order."""
    if not isinstance(stored, list):
        raise ValueError(f"outbox headers must be a JSON list, not {type(stored).__name__}")
    headers: list[tuple[str, bytes]] = []
    for item in stored:
        if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str)):
            raise ValueError(f"an outbox header must be [name, value], not {item!r}")
        name, value = item
        if isinstance(value, str):
            headers.append((name, value.encode("utf-8")))
        elif isinstance(value, dict) and set(value) == {"base64"} and isinstance(value["base64"], str):
            try:
                headers.append((name, base64.b64decode(value["base64"], validate=True)))
            except binascii.Error as exc:
                raise ValueError(f"outbox header {name!r} is not valid base64: {exc}") from exc
        else:
            raise ValueError(f"outbox header {name!r} has an unreadable value {value!r}")
    return tuple(headers)


def _as_text(value: bytes) -> str | None:
    # jsonb cannot hold U+0000, so a NUL byte forces base64 even in otherwise valid UTF-8.
    if b"\x00" in value:
        return None
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _check_name(name: str) -> None:
    if "\x00" in name:
        raise ValueError(f"header name {name!r} contains NUL, which jsonb cannot store")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"header name {name!r} is not encodable as UTF-8") from exc


async def enqueue(connection: AsyncConnection | AsyncSession, envelope: Envelope, *, topic: str) -> None:
    """Write ``envelope`` for ``topic`` to the outbox in the caller's open transaction.

    The event commits or rolls back with the change. Enqueue after the statements that lock or update the
    aggregate the event is about, so that one key's outbox positions follow its commit order.
    """
    if not connection.in_transaction():
        raise RuntimeError(
            "outbox.enqueue must run inside the transaction that makes the change "
            "(open one with `async with engine.begin()` or `async with session.begin()`)"
        )
    # The trace context of the change rides with the row, so the relay's publish continues its trace.
    record = encode(envelope, topic=topic, trace=tracing.trace_headers())
    size = len(record.key) + len(record.value) + sum(len(n) + len(v) for n, v in record.headers)
    if size > MAX_RECORD_BYTES:
        raise ValueError(f"{envelope.type} record is {size} bytes; the limit is {MAX_RECORD_BYTES}")
    await connection.execute(
        insert(OUTBOX).values(
            event_id=envelope.id,
            topic=topic,
            record_key=envelope.key,
            record_value=record.value,
            headers=encode_headers(record.headers),
        )
    )
