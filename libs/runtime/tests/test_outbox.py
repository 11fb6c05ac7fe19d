"""The outbox's database-free parts: header storage, the table definition, enqueue's checks, relay wiring.

The relay's behaviour against real PostgreSQL and Kafka is in tests/integration/test_outbox_relay.py.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any, cast

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.sql import ClauseElement

from chat_contracts.envelope import Envelope, encode
from chat_contracts.examples import example
from chat_contracts.topics import USERS_EVENTS
from chat_contracts.users import UserRegistered
from chat_runtime.bus.inprocess import InProcessBroker, InProcessBus
from chat_runtime.outbox import (
    DEFAULT_POLL_INTERVAL,
    MAX_RECORD_BYTES,
    OUTBOX,
    OutboxRelay,
    decode_headers,
    encode_headers,
    enqueue,
    outbox_table,
)

HEADER_CASES = {
    "none": (),
    "text": (("type", b"user.registered"), ("id", b"6f1c3c1e-7d7a-4a53-9c35-8d0f7f4d9b01")),
    "empty value": (("flag", b""),),
    "unicode": (("name", "ünïcode ключ ✓".encode()),),
    "not utf-8": (("blob", bytes(range(256))),),
    "nul in utf-8": (("nul", b"a\x00b"),),
    "invalid utf-8 tail": (("tail", b"ok\xc3"),),
    "repeated names keep order": (("x", b"2"), ("x", b"1"), ("y", b"\xff"), ("x", b"3")),
}


def _envelope(**overrides: Any) -> Envelope:
    data = example(UserRegistered, **overrides)
    return Envelope.wrap(data, source="auth", key=USERS_EVENTS.key_of(data), correlation_id="corr-1")


@pytest.mark.parametrize("headers", HEADER_CASES.values(), ids=HEADER_CASES.keys())
def test_headers_survive_storage_byte_for_byte(headers: tuple[tuple[str, bytes], ...]) -> None:
    stored = json.loads(json.dumps(encode_headers(headers)))
    assert decode_headers(stored) == headers


@pytest.mark.parametrize("headers", HEADER_CASES.values(), ids=HEADER_CASES.keys())
def test_stored_headers_hold_nothing_jsonb_refuses(headers: tuple[tuple[str, bytes], ...]) -> None:
    # PostgreSQL's jsonb rejects the escape \u0000 and json.dumps escapes every other control character.
    assert "\\u0000" not in json.dumps(encode_headers(headers))


def test_text_headers_are_stored_readably_and_binary_ones_as_base64() -> None:
    stored = encode_headers((("type", b"user.registered"), ("blob", b"\xff\x00")))
    assert stored == [["type", "user.registered"], ["blob", {"base64": "/wA="}]]


def test_an_envelopes_headers_are_all_stored_as_text() -> None:
    record = encode(_envelope(), topic=USERS_EVENTS.name)
    stored = encode_headers(record.headers)
    assert all(isinstance(value, str) for _, value in stored)
    assert decode_headers(stored) == record.headers


@pytest.mark.parametrize(
    "stored",
    [
        {"type": "x"},
        [["type"]],
        [["type", "a", "b"]],
        [[1, "a"]],
        [["type", 1]],
        [["type", {"base64": "not base64!"}]],
        [["type", {"base64": "AA==", "extra": "x"}]],
        [["type", {"hex": "00"}]],
    ],
)
def test_unreadable_stored_headers_are_refused(stored: Any) -> None:
    with pytest.raises(ValueError, match="outbox header"):
        decode_headers(stored)


def test_a_header_name_jsonb_cannot_store_is_refused() -> None:
    with pytest.raises(ValueError, match="NUL"):
        encode_headers((("bad\x00name", b"x"),))


def test_the_outbox_table_can_join_a_services_metadata() -> None:
    service_metadata = MetaData()
    table = outbox_table(service_metadata)
    assert table is not OUTBOX
    assert service_metadata.tables["outbox"] is table
    assert [c.name for c in table.columns] == [c.name for c in OUTBOX.columns]
    assert [c.name for c in table.primary_key] == ["position"]
    (index,) = table.indexes
    assert index.name == "outbox_unpublished"
    assert str(index.dialect_options["postgresql"]["where"]) == "published_at IS NULL"


class _RecordingConnection:
    """Just enough of an AsyncConnection to see what enqueue executes."""

    def __init__(self, *, in_transaction: bool) -> None:
        self._in_transaction = in_transaction
        self.statements: list[ClauseElement] = []

    def in_transaction(self) -> bool:
        return self._in_transaction

    async def execute(self, statement: ClauseElement) -> None:
        self.statements.append(statement)


async def test_enqueue_inserts_the_encoded_record_keyed_by_the_envelope_key() -> None:
    connection = _RecordingConnection(in_transaction=True)
    envelope = _envelope()
    await enqueue(cast(AsyncConnection, connection), envelope, topic=USERS_EVENTS.name)
    (statement,) = connection.statements
    params = statement.compile().params
    record = encode(envelope, topic=USERS_EVENTS.name)
    assert params["event_id"] == envelope.id
    assert params["topic"] == USERS_EVENTS.name
    assert params["record_key"].encode() == record.key
    assert params["record_value"] == record.value
    assert decode_headers(params["headers"]) == record.headers


async def test_enqueue_outside_a_transaction_is_refused() -> None:
    connection = _RecordingConnection(in_transaction=False)
    with pytest.raises(RuntimeError, match="inside the transaction"):
        await enqueue(cast(AsyncConnection, connection), _envelope(), topic=USERS_EVENTS.name)
    assert connection.statements == []


async def test_enqueue_refuses_a_record_no_broker_would_accept() -> None:
    connection = _RecordingConnection(in_transaction=True)
    # model_copy skips validation, which is the only way to build an envelope this large.
    huge = _envelope().model_copy(update={"correlation_id": "c" * MAX_RECORD_BYTES})
    with pytest.raises(ValueError, match="limit"):
        await enqueue(cast(AsyncConnection, connection), huge, topic=USERS_EVENTS.name)
    assert connection.statements == []


def _relay(registry: CollectorRegistry | None = None, **options: Any) -> OutboxRelay:
    # Creating an engine connects to nothing; these relays are never started.
    engine = create_async_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
    return OutboxRelay(engine, InProcessBus(InProcessBroker()), name="auth", registry=registry, **options)


def test_relays_sharing_a_registry_share_its_metrics() -> None:
    registry = CollectorRegistry()
    auth, rooms = _relay(registry), _relay(registry)
    assert auth.metrics is rooms.metrics
    assert _relay().metrics is not auth.metrics


@pytest.mark.parametrize(
    "options",
    [
        {"poll_interval": 0},
        {"batch_size": 0},
        {"max_in_flight": 0},
        {"purge_interval": -1},
        {"retention": timedelta(seconds=-1)},
    ],
)
def test_a_relay_refuses_settings_that_cannot_work(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="must"):
        _relay(**options)


async def test_a_relay_that_was_never_started_ignores_wake_and_stop() -> None:
    relay = _relay()
    relay.wake()
    await relay.stop()
    await relay.abort()
    assert not relay.active


def test_an_idle_relay_only_polls_every_few_seconds_unless_told_otherwise() -> None:
    # A commit wakes the relay; the poll only catches a lost wake, so it need not run twice a second.
    assert _relay().poll_interval == DEFAULT_POLL_INTERVAL >= 5
    assert _relay(poll_interval=0.2).poll_interval == 0.2
