"""With tracing on, each Socket.IO client event is a span, the parent of the command it publishes."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from chat_contracts.envelope import HEADER_TRACEPARENT
from chat_contracts.topics import MESSAGES_COMMANDS
from chat_runtime.testing.tracing import finished_spans, one_named, parent_of, recorded_spans

from .harness import Cluster

ADA = uuid.uuid4()
ROOM = uuid.uuid4()


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    with recorded_spans() as exporter:
        yield exporter


async def test_a_client_event_is_a_span_and_its_command_is_published_under_it(
    spans: InMemorySpanExporter, cluster: Cluster
) -> None:
    gateway = await cluster.start("gw-a", ack_timeout_seconds=0.2)
    await cluster.join(ROOM, ADA)
    ada = await cluster.connect(gateway, ADA)
    send = {"room_id": str(ROOM), "client_msg_id": "c-1", "body": "nobody answers"}
    assert (await ada.call("message:send", send))["error"]["code"] == "timeout"
    finished = await finished_spans(spans, at_least=2)
    event = one_named(finished, "socketio message:send")
    command = one_named(finished, f"send {MESSAGES_COMMANDS.name}")
    assert parent_of(command) == event.context.span_id
    assert event.attributes is not None
    assert command.attributes is not None
    assert event.attributes["chat.correlation_id"] == command.attributes["chat.correlation_id"]
    [record] = [r for r in cluster.broker.records(MESSAGES_COMMANDS.name) if r.header("source") == "gateway"]
    assert record.header("correlation_id") == event.attributes["chat.correlation_id"]
    assert record.header(HEADER_TRACEPARENT) is not None
