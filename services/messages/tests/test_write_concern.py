"""The write concern setting: its values, its default, and what ``auto`` picks from the server's ``hello``."""

from __future__ import annotations

from typing import Any

import pytest

from chat_messages.adapters import mongo
from chat_messages.settings import MessagesSettings
from chat_runtime.settings import SettingsError, load_settings

STANDALONE: dict[str, Any] = {"isWritablePrimary": True, "maxWireVersion": 21}
ONE_MEMBER_SET: dict[str, Any] = {"isWritablePrimary": True, "setName": "secantus", "hosts": ["127.0.0.1:27019"]}
THREE_MEMBER_SET: dict[str, Any] = {
    "isWritablePrimary": True,
    "setName": "rs0",
    "hosts": ["db1:27017", "db2:27017"],
    "passives": ["db3:27017"],
    "arbiters": [],
}
PRIMARY_AND_ARBITER: dict[str, Any] = {
    "isWritablePrimary": True,
    "setName": "rs0",
    "hosts": ["db1:27017"],
    "arbiters": ["arb:27017"],
}
MONGOS: dict[str, Any] = {"isWritablePrimary": True, "msg": "isdbgrid"}


def test_the_default_is_auto() -> None:
    assert load_settings(MessagesSettings).mongo_write_concern == "auto"


@pytest.mark.parametrize("value", ["journaled", "majority", "auto"])
def test_each_documented_value_is_accepted_from_the_environment(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("CHAT_MESSAGES_MONGO_WRITE_CONCERN", value)
    assert load_settings(MessagesSettings).mongo_write_concern == value


@pytest.mark.parametrize("value", ["w1", "1", "unacknowledged", "MAJORITY!"])
def test_an_unknown_write_concern_is_refused_naming_the_variable(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("CHAT_MESSAGES_MONGO_WRITE_CONCERN", value)
    with pytest.raises(SettingsError, match="CHAT_MESSAGES_MONGO_WRITE_CONCERN"):
        load_settings(MessagesSettings)


@pytest.mark.parametrize("hello", [STANDALONE, ONE_MEMBER_SET, PRIMARY_AND_ARBITER])
def test_auto_on_a_single_data_bearing_node_waits_for_its_journal(hello: dict[str, Any]) -> None:
    assert mongo.write_concern_for("auto", hello).document == {"w": 1, "j": True}


@pytest.mark.parametrize("hello", [THREE_MEMBER_SET, MONGOS])
def test_auto_on_a_replica_set_or_sharded_cluster_waits_for_a_majority(hello: dict[str, Any]) -> None:
    assert mongo.write_concern_for("auto", hello).document == {"w": "majority", "j": True}


@pytest.mark.parametrize("hello", [STANDALONE, THREE_MEMBER_SET])
def test_an_explicit_choice_wins_over_what_the_server_is(hello: dict[str, Any]) -> None:
    assert mongo.write_concern_for("journaled", hello).document == {"w": 1, "j": True}
    assert mongo.write_concern_for("majority", hello).document == {"w": "majority", "j": True}


async def test_the_client_waits_for_the_journal_never_retries_writes_and_drops_idle_connections() -> None:
    # The Mongo-wire server closes connections idle for 5 minutes; a write on one would fail, not be retried.
    client = mongo.client("mongodb://127.0.0.1:9/?directConnection=true")
    try:
        assert client.write_concern.document == {"w": 1, "j": True}
        assert client.options.retry_writes is False
        assert client.options.pool_options.max_idle_time_seconds == 60
    finally:
        await client.close()
