"""The AsyncAPI document is generated from the registry and stays in step with it."""

from __future__ import annotations

from pathlib import Path

from chat_contracts.asyncapi import document, main
from chat_contracts.topics import TOPICS

COMMITTED = Path(__file__).parents[3] / "docs" / "asyncapi" / "kafka.json"


def test_every_topic_is_a_channel_with_every_type_it_carries() -> None:
    doc = document()
    assert set(doc["channels"]) == set(TOPICS)
    for spec in TOPICS.values():
        names = {
            doc["components"]["messages"][ref["$ref"].rsplit("/", 1)[1]]["name"]
            for ref in doc["channels"][spec.name]["messages"].values()
        }
        assert names == set(spec.payload_types)


def test_producers_send_and_consumers_receive_on_their_topics() -> None:
    operations = document()["operations"]
    assert operations["gateway.send.chat.messages.commands"]["action"] == "send"
    assert operations["messages.receive.chat.messages.commands"]["action"] == "receive"


def test_the_committed_document_matches_the_registry() -> None:
    assert main(["--out", str(COMMITTED), "--check"]) == 0
