"""MongoDB commands observed as store latency: one observation per command, by command name, failed ones too."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from pymongo import monitoring

from chat_messages.adapters import mongo
from chat_messages.bootstrap import bootstrap
from chat_messages.settings import MessagesSettings
from chat_runtime.bus.inprocess import InProcessBroker, InProcessBus
from chat_runtime.settings import load_settings
from chat_runtime.store_metrics import StoreMetrics

ADDRESS = ("127.0.0.1", 27017)


def test_succeeded_and_failed_commands_are_observed_by_name_and_duration() -> None:
    registry = CollectorRegistry()
    timer = mongo.CommandTimer(StoreMetrics.on(registry))
    timer.succeeded(monitoring.CommandSucceededEvent(timedelta(milliseconds=3), {"ok": 1}, "insert", 1, ADDRESS, 1))
    timer.succeeded(monitoring.CommandSucceededEvent(timedelta(milliseconds=1), {"ok": 1}, "find", 2, ADDRESS, 2))
    timer.failed(monitoring.CommandFailedEvent(timedelta(milliseconds=5), {"ok": 0}, "insert", 3, ADDRESS, 3))

    def sample(suffix: str, operation: str) -> float | None:
        labels = {"store": "mongo", "operation": operation}
        return registry.get_sample_value(f"chat_store_operation_seconds{suffix}", labels)

    assert sample("_count", "insert") == 2
    assert sample("_sum", "insert") == pytest.approx(0.008)
    assert sample("_count", "find") == 1


def test_the_client_the_module_makes_reports_to_the_registry(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    settings = load_settings(MessagesSettings, data_dir=tmp_path)
    module = bootstrap(settings, bus=InProcessBus(InProcessBroker()), registry=registry)
    assert module.mongo is not None
    listeners = module.mongo.options.event_listeners
    assert len([listener for listener in listeners if isinstance(listener, mongo.CommandTimer)]) == 1
