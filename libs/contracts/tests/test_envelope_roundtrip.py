"""Every contract survives the trip through a Kafka record; decoding refuses the rest with a DLQ reason."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chat_contracts.base import Contract
from chat_contracts.envelope import Envelope, Record, decode, encode, encode_later
from chat_contracts.errors import ContractError
from chat_contracts.examples import ROOM_ID, all_examples, example
from chat_contracts.messages_events import MessageCreated
from chat_contracts.topics import MESSAGES_EVENTS, USERS_EVENTS, all_payloads, topic_for
from chat_contracts.users import UserRegistered


def record_for(payload: Contract) -> Record:
    spec = topic_for(payload)
    envelope = Envelope.wrap(payload, source=min(spec.producers), key=spec.key_of(payload))
    return encode(envelope, topic=spec.name)


def message_created_value(**changes: Any) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(record_for(example(MessageCreated)).value)
    value.update(changes)
    return value


def as_record(value: dict[str, Any] | bytes) -> Record:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return Record(topic=MESSAGES_EVENTS.name, key=str(ROOM_ID).encode(), value=raw)


@pytest.mark.parametrize("payload", all_examples(), ids=lambda payload: type(payload).__name__)
def test_every_contract_round_trips_through_a_record_on_its_topic(payload: Contract) -> None:
    spec = topic_for(payload)
    envelope = Envelope.wrap(payload, source=min(spec.producers), key=spec.key_of(payload), correlation_id="c-1")

    record = encode(envelope, topic=spec.name)
    decoded = decode(record, spec)

    assert decoded == envelope
    assert type(decoded.data) is type(payload)
    assert decoded.data == payload
    assert record.topic == spec.name
    assert record.key == spec.key_of(payload).encode()
    assert record.header("type") == type(payload).model_fields["type"].default


def test_there_is_an_example_for_every_contract() -> None:
    assert {type(payload) for payload in all_examples()} == set(all_payloads())


def test_decoding_rejects_bytes_that_are_not_json() -> None:
    with pytest.raises(ContractError) as caught:
        decode(as_record(b"{not json"), MESSAGES_EVENTS)
    assert caught.value.reason.startswith("invalid_json:")


def test_decoding_rejects_bytes_that_are_not_utf8() -> None:
    with pytest.raises(ContractError) as caught:
        decode(as_record(b"\xff\xfe"), MESSAGES_EVENTS)
    assert caught.value.reason.startswith("invalid_json:")


@pytest.mark.parametrize(
    "value",
    [
        b"[]",
        b'"message.created"',
        b'{"hello": "world"}',
    ],
)
def test_decoding_rejects_json_that_is_not_an_envelope(value: bytes) -> None:
    with pytest.raises(ContractError) as caught:
        decode(as_record(value), MESSAGES_EVENTS)
    assert caught.value.reason.startswith("invalid_envelope:")


def test_decoding_rejects_an_envelope_with_unknown_fields() -> None:
    with pytest.raises(ContractError) as caught:
        decode(as_record(message_created_value(surprise=1)), MESSAGES_EVENTS)
    assert caught.value.reason.startswith("invalid_envelope:")


def test_decoding_rejects_an_envelope_without_an_id() -> None:
    value = message_created_value()
    del value["id"]
    with pytest.raises(ContractError) as caught:
        decode(as_record(value), MESSAGES_EVENTS)
    assert caught.value.reason.startswith("invalid_envelope:")


def test_decoding_rejects_a_type_no_contract_has() -> None:
    value = message_created_value(type="message.exploded")
    value["data"]["type"] = "message.exploded"
    with pytest.raises(ContractError) as caught:
        decode(as_record(value), MESSAGES_EVENTS)
    assert caught.value.reason.startswith("unknown_type:")


def test_decoding_rejects_a_type_that_belongs_to_another_topic() -> None:
    with pytest.raises(ContractError) as caught:
        decode(record_for(example(UserRegistered)), MESSAGES_EVENTS)
    assert caught.value.reason.startswith("unknown_type:")
    assert decode(record_for(example(UserRegistered)), USERS_EVENTS).type == "user.registered"


def test_decoding_rejects_data_whose_type_contradicts_the_envelope() -> None:
    value = message_created_value()
    value["data"]["type"] = "message.edited"
    with pytest.raises(ContractError) as caught:
        decode(as_record(value), MESSAGES_EVENTS)
    assert caught.value.reason.startswith("type_mismatch:")


@pytest.mark.parametrize(
    ("field", "bad"),
    [
        ("seq", 0),
        ("seq", "one"),
        ("room_id", "not-a-uuid"),
        ("created_at", "2025-01-02T03:04:05"),
        ("client_msg_id", "has spaces"),
        ("body", "x" * 16001),
    ],
)
def test_decoding_rejects_data_that_breaks_the_contract(field: str, bad: object) -> None:
    value = message_created_value()
    value["data"][field] = bad
    with pytest.raises(ContractError) as caught:
        decode(as_record(value), MESSAGES_EVENTS)
    assert caught.value.reason.startswith(f"invalid_data: message.created: {field}")


def test_decoding_rejects_data_missing_a_required_field() -> None:
    value = message_created_value()
    del value["data"]["sender_id"]
    with pytest.raises(ContractError) as caught:
        decode(as_record(value), MESSAGES_EVENTS)
    assert caught.value.reason.startswith("invalid_data:")


def test_decoding_rejects_data_with_unknown_fields() -> None:
    value = message_created_value()
    value["data"]["surprise"] = True
    with pytest.raises(ContractError) as caught:
        decode(as_record(value), MESSAGES_EVENTS)
    assert caught.value.reason.startswith("invalid_data:")
    assert "surprise" in caught.value.reason


def test_decoding_rejects_unknown_fields_in_nested_data() -> None:
    value = message_created_value()
    value["data"]["mentions"] = {"users": [], "room": False, "everyone": True}
    with pytest.raises(ContractError) as caught:
        decode(as_record(value), MESSAGES_EVENTS)
    assert caught.value.reason.startswith("invalid_data:")


@pytest.mark.parametrize(
    ("field", "bad"),
    [
        ("key", "k" * 201),
        ("source", ""),
        ("version", 0),
        ("correlation_id", ""),
        ("occurred_at", "2025-01-02T03:04:05"),
    ],
)
def test_decoding_rejects_an_envelope_field_that_breaks_the_envelope(field: str, bad: object) -> None:
    with pytest.raises(ContractError) as caught:
        decode(as_record(message_created_value(**{field: bad})), MESSAGES_EVENTS)
    assert caught.value.reason.startswith(f"invalid_envelope: {field}")


def test_a_decoded_envelope_is_the_one_validating_its_fields_would_make() -> None:
    # decode validates the raw envelope and its data apart, then builds the Envelope from them: it must equal the
    # envelope that validating the record's fields makes, its time in UTC whatever offset the record carried.
    value = message_created_value(occurred_at="2025-01-02T05:04:05.123456+02:00", correlation_id="c-7")

    decoded = decode(as_record(value), MESSAGES_EVENTS)

    validated = Envelope.model_validate({**value, "data": decoded.data})
    assert decoded == validated
    assert decoded.occurred_at == datetime(2025, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
    assert decoded.occurred_at.utcoffset() == timedelta(0)
    assert decoded.model_dump() == validated.model_dump()
    assert decoded.model_fields_set == validated.model_fields_set


@pytest.mark.parametrize("read_first", ["value", "headers"])
def test_a_record_encoded_when_read_is_the_record_encode_makes(read_first: str) -> None:
    payload = example(MessageCreated)
    spec = topic_for(payload)
    envelope = Envelope.wrap(payload, source="messages", key=spec.key_of(payload), correlation_id="c-9")
    trace = (("traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),)

    later = encode_later(envelope, topic=spec.name, trace=trace)
    now = encode(envelope, topic=spec.name, trace=trace)

    assert (later.topic, later.key) == (now.topic, now.key)
    getattr(later, read_first)
    assert (later.value, later.headers) == (now.value, now.headers)
    assert later == now
    assert now == later
    assert hash(later) == hash(now)
    assert later.header("correlation_id") == "c-9"
    assert decode(later, spec) == envelope


def test_a_record_encoded_when_read_has_no_other_attributes() -> None:
    payload = example(MessageCreated)
    spec = topic_for(payload)
    later = encode_later(Envelope.wrap(payload, source="messages", key="k"), topic=spec.name)

    with pytest.raises(AttributeError):
        later.size  # type: ignore[attr-defined]  # noqa: B018
