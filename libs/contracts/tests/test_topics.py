"""The topic registry: one place for names, keys, sizing, retention and who talks to whom."""

from __future__ import annotations

import pytest

from chat_contracts import ephemeral, messages_commands, messages_events, rooms, social, users
from chat_contracts.base import Contract
from chat_contracts.examples import all_examples, example
from chat_contracts.messages_events import MessageCreated
from chat_contracts.topics import (
    EPHEMERAL,
    MESSAGES_COMMANDS,
    MESSAGES_EVENTS,
    ROOMS_EVENTS,
    SERVICES,
    SOCIAL_EVENTS,
    TOPICS,
    USERS_EVENTS,
    TopicSpec,
    all_payloads,
    topic_for,
)
from chat_contracts.users import UserRegistered

HOUR_MS = 60 * 60 * 1000


def test_the_registry_holds_the_six_topics_with_their_keys_and_owners() -> None:
    table = {name: (spec.key_field, sorted(spec.producers), sorted(spec.consumers)) for name, spec in TOPICS.items()}
    assert table == {
        "chat.users.events": ("user_id", ["auth"], ["gateway", "messages", "rooms"]),
        "chat.rooms.events": ("room_id", ["rooms"], ["gateway", "messages"]),
        "chat.social.events": ("user_id", ["rooms"], ["gateway"]),
        "chat.messages.commands": ("room_id", ["gateway"], ["messages"]),
        "chat.messages.events": ("room_id", ["messages"], ["gateway"]),
        "chat.ephemeral": ("room_id", ["gateway"], ["gateway"]),
    }
    assert list(TOPICS.values()) == [
        USERS_EVENTS,
        ROOMS_EVENTS,
        SOCIAL_EVENTS,
        MESSAGES_COMMANDS,
        MESSAGES_EVENTS,
        EPHEMERAL,
    ]


def test_each_topic_carries_exactly_the_payloads_of_its_module() -> None:
    assert USERS_EVENTS.payloads == users.PAYLOADS
    assert ROOMS_EVENTS.payloads == rooms.PAYLOADS
    assert MESSAGES_COMMANDS.payloads == messages_commands.PAYLOADS
    assert MESSAGES_EVENTS.payloads == messages_events.PAYLOADS
    assert EPHEMERAL.payloads == ephemeral.PAYLOADS
    assert SOCIAL_EVENTS.payloads == social.PAYLOADS


def test_no_type_name_is_used_on_two_topics() -> None:
    names = [name for spec in TOPICS.values() for name in spec.payload_types]
    assert len(names) == len(set(names)) == len(all_payloads())


@pytest.mark.parametrize("spec", TOPICS.values(), ids=lambda spec: spec.name)
def test_every_payload_on_a_topic_has_the_topics_key_field(spec: TopicSpec) -> None:
    for payload_type in spec.payloads:
        if payload_type is not users.SigningKeyWithdrawn:
            assert spec.key_field in payload_type.model_fields


def test_a_withdrawn_signing_key_is_keyed_by_its_kid_as_it_is_about_no_account() -> None:
    withdrawn = example(users.SigningKeyWithdrawn)
    assert USERS_EVENTS.key_field_of(users.SigningKeyWithdrawn) == "kid"
    assert USERS_EVENTS.key_of(withdrawn) == withdrawn.kid
    assert USERS_EVENTS.key_field_of(users.UserDeleted) == "user_id"


def test_messages_topics_share_a_partition_count_so_a_room_maps_to_the_same_partition_number() -> None:
    assert MESSAGES_COMMANDS.partitions == MESSAGES_EVENTS.partitions == 12
    assert {USERS_EVENTS.partitions, ROOMS_EVENTS.partitions, EPHEMERAL.partitions} == {6}


def test_projection_sources_are_kept_forever_and_ephemeral_data_for_an_hour() -> None:
    assert USERS_EVENTS.retention_ms is None
    assert ROOMS_EVENTS.retention_ms is None
    assert EPHEMERAL.retention_ms == HOUR_MS
    assert MESSAGES_COMMANDS.retention_ms == MESSAGES_EVENTS.retention_ms == 7 * 24 * HOUR_MS
    assert {spec.cleanup_policy for spec in TOPICS.values()} == {"delete"}


def test_producers_and_consumers_are_known_services() -> None:
    for spec in TOPICS.values():
        assert spec.producers <= SERVICES
        assert spec.consumers <= SERVICES


def test_dead_letter_topics_are_named_after_their_topic() -> None:
    assert MESSAGES_EVENTS.dlq == "chat.messages.events.dlq"
    assert {spec.dlq for spec in TOPICS.values()}.isdisjoint(TOPICS)


@pytest.mark.parametrize("payload", all_examples(), ids=lambda payload: type(payload).__name__)
def test_topic_for_finds_a_payloads_topic_by_class_instance_or_type_name(payload: Contract) -> None:
    payload_type = type(payload)
    type_name = payload_type.model_fields["type"].default
    assert isinstance(type_name, str)
    spec = topic_for(payload_type)
    assert spec.payload_types[type_name] is payload_type
    assert topic_for(payload) is spec
    assert topic_for(type_name) is spec


def test_topic_for_refuses_what_no_topic_carries() -> None:
    class Lookalike(Contract):
        type: str = "message.created"
        room_id: str = "r"

    class Untyped(Contract):
        pass

    with pytest.raises(LookupError):
        topic_for("message.exploded")
    with pytest.raises(LookupError):
        topic_for(Lookalike)
    with pytest.raises(LookupError):
        topic_for(Untyped)


def test_the_key_of_an_event_is_its_topics_key_field() -> None:
    assert MESSAGES_EVENTS.key_of(example(MessageCreated)) == str(example(MessageCreated).room_id)
    assert USERS_EVENTS.key_of(example(UserRegistered)) == str(example(UserRegistered).user_id)
