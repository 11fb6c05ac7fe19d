"""Structured logs: JSON lines with the correlation id off a terminal."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import structlog

from chat_runtime.logging import bind_correlation_id, configure_logging, current_correlation_id


@pytest.fixture(autouse=True)
def _restore_structlog() -> Iterator[None]:
    yield
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


def test_json_logs_carry_event_name_fields_service_and_correlation_id(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging(fmt="json", service="demo")
    structlog.contextvars.clear_contextvars()
    bind_correlation_id("corr-1")
    structlog.get_logger().info("message.persisted", room_id="r1", seq=7)
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert line["event"] == "message.persisted"
    assert line["room_id"] == "r1"
    assert line["seq"] == 7
    assert line["service"] == "demo"
    assert line["correlation_id"] == "corr-1"
    assert line["level"] == "info"
    assert line["timestamp"].endswith("Z")
    structlog.contextvars.clear_contextvars()


def test_binding_without_a_value_creates_a_fresh_correlation_id() -> None:
    structlog.contextvars.clear_contextvars()
    created = bind_correlation_id(None)
    assert current_correlation_id() == created
    assert len(created) == 32
    structlog.contextvars.clear_contextvars()
