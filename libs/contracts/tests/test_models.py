"""The contracts themselves: strict, bounded, immutable, and their examples valid."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta, timezone
from types import ModuleType
from typing import Any, get_args

import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError

from chat_contracts import ephemeral, messages_commands, messages_events, rooms, users
from chat_contracts.base import Contract
from chat_contracts.examples import ALICE_ID, EXAMPLE_TIME, all_examples, example
from chat_contracts.messages_commands import AcknowledgeDelivery, MarkRead, ReactToMessage, SendMessage
from chat_contracts.messages_events import MessageCreated, MessageRejected, ReactionChanged
from chat_contracts.topics import MESSAGES_COMMANDS, all_payloads
from chat_contracts.users import UserRegistered, UserSessionsRevoked, UserUpdated

PAYLOADS = all_payloads()
MODULES: dict[ModuleType, Any] = {
    users: users.UserEvent,
    rooms: rooms.RoomEvent,
    messages_commands: messages_commands.MessageCommand,
    messages_events: messages_events.MessageEvent,
    ephemeral: ephemeral.EphemeralEvent,
}


def type_of(payload: type[Contract]) -> str:
    default = payload.model_fields["type"].default
    assert isinstance(default, str)
    return default


def unbounded(schema: Mapping[str, Any], root: Mapping[str, Any], path: str = "") -> Iterator[str]:
    """Paths of strings, arrays and mappings in a schema that have no upper size bound."""
    if "$ref" in schema:
        yield from unbounded(root["$defs"][schema["$ref"].rsplit("/", 1)[1]], root, path)
        return
    for member in schema.get("anyOf", []):
        yield from unbounded(member, root, path)
    kind = schema.get("type")
    if kind == "string" and not (
        "maxLength" in schema or "const" in schema or "enum" in schema or schema.get("format") in {"uuid", "date-time"}
    ):
        yield path
    if kind == "array":
        if "maxItems" not in schema:
            yield path
        yield from unbounded(schema.get("items", {}), root, f"{path}[]")
    if kind == "object":
        for name, prop in schema.get("properties", {}).items():
            yield from unbounded(prop, root, f"{path}.{name}".lstrip("."))
        values = [*schema.get("patternProperties", {}).values()]
        if isinstance(schema.get("additionalProperties"), Mapping):
            values.append(schema["additionalProperties"])
        if values:
            if "maxProperties" not in schema:
                yield path
            yield from unbounded(schema.get("propertyNames", {"type": "string"}), root, f"{path}{{keys}}")
            for value in values:
                yield from unbounded(value, root, f"{path}{{}}")


@pytest.mark.parametrize("payload_type", PAYLOADS, ids=lambda payload_type: payload_type.__name__)
def test_every_contract_rejects_unknown_fields(payload_type: type[Contract]) -> None:
    with pytest.raises(ValidationError, match=r"Extra inputs are not permitted"):
        payload_type.model_validate({**example(payload_type).model_dump(), "surprise": 1})


@pytest.mark.parametrize("payload_type", PAYLOADS, ids=lambda payload_type: payload_type.__name__)
def test_every_string_list_and_mapping_in_every_contract_is_bounded(payload_type: type[Contract]) -> None:
    schema = payload_type.model_json_schema()
    assert list(unbounded(schema, schema)) == []


@pytest.mark.parametrize("payload_type", PAYLOADS, ids=lambda payload_type: payload_type.__name__)
def test_every_contract_has_a_dotted_lower_case_type_discriminator(payload_type: type[Contract]) -> None:
    assert re.fullmatch(r"[a-z]+(\.[a-z_]+)+", type_of(payload_type))
    assert payload_type.model_validate(example(payload_type).model_dump()).type == type_of(payload_type)  # type: ignore[attr-defined]


@pytest.mark.parametrize("payload_type", PAYLOADS, ids=lambda payload_type: payload_type.__name__)
def test_every_contract_refuses_a_different_type_value(payload_type: type[Contract]) -> None:
    with pytest.raises(ValidationError):
        payload_type.model_validate({**example(payload_type).model_dump(), "type": "something.else"})


@pytest.mark.parametrize("payload", all_examples(), ids=lambda payload: type(payload).__name__)
def test_contracts_are_immutable(payload: Contract) -> None:
    with pytest.raises(ValidationError, match="frozen"):
        payload.type = "changed"  # type: ignore[attr-defined]


@pytest.mark.parametrize("module", MODULES, ids=lambda module: module.__name__.rsplit(".", 1)[1])
def test_each_topic_modules_union_parses_every_payload_of_that_module(module: ModuleType) -> None:
    adapter: TypeAdapter[Any] = TypeAdapter(MODULES[module])
    assert {type_of(payload) for payload in module.PAYLOADS} == {
        type_of(member) for member in get_args(get_args(MODULES[module])[0])
    }
    for payload_type in module.PAYLOADS:
        parsed = adapter.validate_json(example(payload_type).model_dump_json())
        assert parsed == example(payload_type)


def test_every_command_can_be_named_by_a_rejection() -> None:
    assert set(get_args(messages_commands.CommandType)) == set(MESSAGES_COMMANDS.payload_types)


@pytest.mark.parametrize(
    ("payload_type", "field", "value"),
    [
        (SendMessage, "client_msg_id", ""),
        (SendMessage, "client_msg_id", "x" * 65),
        (SendMessage, "client_msg_id", "has space"),
        (SendMessage, "request_id", "r/1"),
        (SendMessage, "body", "x" * 16001),
        (SendMessage, "attachment_ids", [uuid.uuid4() for _ in range(11)]),
        (SendMessage, "room_id", "general"),
        (UserRegistered, "username", ""),
        (UserRegistered, "username", "u" * 65),
        (UserRegistered, "display_name", "d" * 101),
        (UserUpdated, "avatar_url", "javascript:alert(1)"),
        (UserUpdated, "avatar_url", "https://cdn.example.com/" + "a" * 2048),
        (UserSessionsRevoked, "session_ids", []),
        (UserSessionsRevoked, "reason", "bored"),
        (ReactToMessage, "emoji", ""),
        (ReactToMessage, "emoji", "thumbs up"),
        (ReactToMessage, "emoji", "x" * 65),
        (ReactToMessage, "action", "toggle"),
        (ReactionChanged, "counts", {f":e{index}:": 1 for index in range(101)}),
        (ReactionChanged, "counts", {"👍": 0}),
        (MarkRead, "up_to_seq", -1),
        (AcknowledgeDelivery, "up_to_seq", -1),
        (MessageCreated, "seq", 0),
        (MessageCreated, "mentions", {"users": [{"user_id": ALICE_ID, "username": "a"}] * 51}),
        (MessageRejected, "code", "oops"),
        (MessageRejected, "message", "m" * 501),
        (MessageRejected, "retry_after", -1.0),
    ],
)
def test_out_of_bounds_values_are_rejected(payload_type: type[Contract], field: str, value: object) -> None:
    with pytest.raises(ValidationError) as caught:
        example(payload_type, **{field: value})
    assert caught.value.errors()[0]["loc"][0] == field


def test_a_body_up_to_the_wire_bound_is_accepted_even_above_the_product_limit() -> None:
    assert len(example(SendMessage, body="x" * 16000).body) == 16000


def test_a_send_without_attachments_reply_or_body_text_is_still_well_formed() -> None:
    command = SendMessage(room_id=uuid.uuid4(), sender_id=ALICE_ID, client_msg_id="c:1", body="", request_id="r.1")
    assert command.attachment_ids == ()
    assert command.reply_to is None


def test_ids_are_canonical_uuids_so_partition_keys_agree_however_they_were_spelled() -> None:
    room_id = uuid.uuid4()
    upper = example(SendMessage, room_id=str(room_id).upper())
    braces = example(SendMessage, room_id="{" + str(room_id) + "}")
    assert MESSAGES_COMMANDS.key_of(upper) == MESSAGES_COMMANDS.key_of(braces) == str(room_id)


def test_timestamps_are_normalized_to_utc() -> None:
    local = EXAMPLE_TIME.astimezone(timezone(timedelta(hours=2)))
    event = example(MessageCreated, created_at=local)
    assert event.created_at.utcoffset() == timedelta(0)
    assert event.created_at == EXAMPLE_TIME
    assert '"created_at":"2025-01-02T03:04:05Z"' in event.model_dump_json()


def test_naive_timestamps_are_rejected() -> None:
    with pytest.raises(ValidationError):
        example(MessageCreated, created_at=datetime(2025, 1, 1, 12, 0))  # noqa: DTZ001 - naive on purpose


def test_session_revocation_without_session_ids_means_every_session() -> None:
    event = UserSessionsRevoked(user_id=ALICE_ID, reason="logout_all", occurred_at=datetime.now(UTC))
    assert event.session_ids is None


def test_examples_are_deterministic_and_overrides_are_validated() -> None:
    assert example(MessageCreated) == example(MessageCreated)
    assert example(MessageCreated, seq=7).seq == 7
    assert example(MessageCreated, seq=7).room_id == example(MessageCreated).room_id


def test_asking_for_an_example_of_a_non_contract_fails_clearly() -> None:
    class Stranger(Contract):
        pass

    with pytest.raises(LookupError, match="Stranger"):
        example(Stranger)


def test_nested_parts_are_as_strict_as_contracts() -> None:
    part: type[BaseModel] = messages_events.MentionedUser
    with pytest.raises(ValidationError):
        part.model_validate({"user_id": str(ALICE_ID), "username": "alice", "extra": 1})
