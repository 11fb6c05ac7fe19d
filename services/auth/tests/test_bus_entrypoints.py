"""The auth service consumes no topic: the registry names it as no topic's consumer, and it subscribes nothing."""

from __future__ import annotations

from chat_auth.entrypoints.bus import bus_handlers
from chat_contracts.topics import TOPICS


def test_auth_subscribes_to_exactly_the_topics_the_registry_says_it_consumes() -> None:
    consumed = {spec.name for spec in TOPICS.values() if "auth" in spec.consumers}
    assert {handler.spec.name for handler in bus_handlers()} == consumed == set()
