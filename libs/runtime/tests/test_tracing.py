"""Traces: off unless the OTEL_* variables ask, one trace from an HTTP request through the in-process bus to a store,
and the spans of the other places work starts (batches, the store listener, the outbox row's context)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry
from sqlalchemy import create_engine, text

from chat_contracts.envelope import HEADER_TRACEPARENT, Envelope, encode
from chat_contracts.topics import DLQ_PARTITIONS
from chat_runtime import tracing
from chat_runtime.bus.inprocess import InProcessBroker, InProcessBus
from chat_runtime.bus.port import Outgoing, RetryPolicy
from chat_runtime.http_metrics import HttpMetrics
from chat_runtime.middleware import CorrelationIdMiddleware
from chat_runtime.postgres import observe_statements
from chat_runtime.store_metrics import StoreMetrics
from chat_runtime.testing.bus_contract import SOURCE, Ping, make_spec
from chat_runtime.testing.traced_scenario import request_then_consume
from chat_runtime.testing.tracing import (
    assert_one_trace,
    finished_spans,
    one_named,
    parent_of,
    recorded_spans,
)

FAST_RETRY = RetryPolicy(max_attempts=3, initial_backoff=0.005, max_backoff=0.05)


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    with recorded_spans() as exporter:
        yield exporter


@pytest.fixture(params=[True, False], ids=["roundtrip", "published-envelope"])
async def broker(request: pytest.FixtureRequest) -> AsyncIterator[InProcessBroker]:
    broker = InProcessBroker(roundtrip=request.param)
    yield broker
    await broker.stop_all()


def ids_in(traceparent: str) -> tuple[int, int]:
    """The trace id and parent span id a ``traceparent`` header names (version-traceid-parentid-flags)."""
    _version, trace_id, span_id, _flags = traceparent.split("-")
    return int(trace_id, 16), int(span_id, 16)


def bus_on(broker: InProcessBroker) -> InProcessBus:
    return InProcessBus(broker, retry=FAST_RETRY)


@pytest.mark.parametrize(
    ("environ", "exporter"),
    [
        ({}, None),
        ({"OTEL_SERVICE_NAME": "chat-auth"}, None),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, "otlp"),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, "otlp"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_SDK_DISABLED": "true"}, None),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_SDK_DISABLED": "True"}, None),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_TRACES_EXPORTER": "none"}, None),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, "otlp"),
        ({"OTEL_TRACES_EXPORTER": "console"}, "console"),
    ],
)
def test_traces_are_exported_only_when_the_standard_variables_ask(
    environ: dict[str, str], exporter: str | None
) -> None:
    assert tracing.exporter_from(environ) == exporter


def test_an_exporter_this_runtime_does_not_ship_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="zipkin"):
        tracing.exporter_from({"OTEL_TRACES_EXPORTER": "zipkin"})


async def test_a_request_its_record_and_the_consumer_s_store_operation_are_one_trace_on_the_in_process_bus(
    spans: InMemorySpanExporter, broker: InProcessBroker
) -> None:
    spec = make_spec(partitions=2)
    broker.ensure_topic(spec.name, spec.partitions)
    broker.ensure_topic(spec.dlq, DLQ_PARTITIONS)
    await request_then_consume(bus_on(broker), bus_on(broker), spec, correlation_id="trace-inprocess-1")
    assert_one_trace(await finished_spans(spans, at_least=4), spec, correlation_id="trace-inprocess-1")


async def test_with_tracing_off_a_record_carries_no_trace_context(broker: InProcessBroker) -> None:
    assert tracing.spans() is None
    spec = make_spec(partitions=1)
    broker.ensure_topic(spec.name, spec.partitions)
    bus = bus_on(broker)
    await bus.publish(spec, Ping(key="a", n=1), source=SOURCE, correlation_id="untraced-1")
    await bus.publish_all([Outgoing(spec, Ping(key="a", n=2), correlation_id="untraced-2")], source=SOURCE)
    records = broker.records(spec.name)
    assert [record.header("correlation_id") for record in records] == ["untraced-1", "untraced-2"]
    for record in records:
        assert [name for name, _ in record.headers] == ["type", "version", "source", "id", "correlation_id"]


def test_with_tracing_off_the_sdk_and_the_span_code_are_never_imported() -> None:
    """No span, context or header object can exist when the SDK and ``chat_runtime.otel`` are not even loaded: a
    fresh process runs the traced paths (an HTTP request, a publish, a consume, a store operation) with tracing left
    off. (FastAPI itself imports the OpenTelemetry API for its own telemetry, which stays off without a global
    tracer provider.)"""
    script = textwrap.dedent(
        """
        import asyncio, sys
        from chat_runtime import tracing
        from chat_runtime.bus.inprocess import InProcessBroker, InProcessBus
        from chat_runtime.testing.bus_contract import make_spec
        from chat_runtime.testing.traced_scenario import request_then_consume

        async def scenario():
            broker = InProcessBroker()
            spec = make_spec(partitions=1)
            broker.ensure_topic(spec.name, spec.partitions)
            await request_then_consume(InProcessBus(broker), InProcessBus(broker), spec, correlation_id="off-1")
            await broker.stop_all()

        assert tracing.configure_tracing(service="test") is None
        asyncio.run(scenario())
        loaded = sorted(name for name in sys.modules if name.startswith(("opentelemetry.sdk", "chat_runtime.otel")))
        assert not loaded, loaded
        print("untraced")
        """
    )
    clean = {"PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=clean, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "untraced"


async def test_a_batch_handler_s_span_links_every_record_s_publisher(
    spans: InMemorySpanExporter, broker: InProcessBroker
) -> None:
    spec = make_spec(partitions=1)
    broker.ensure_topic(spec.name, spec.partitions)
    publisher, consumer = bus_on(broker), bus_on(broker)
    for n in range(3):
        await publisher.publish(spec, Ping(key="same", n=n), source=SOURCE, correlation_id=f"batch-{n}")
    got: list[int] = []
    done = asyncio.Event()

    async def one(envelope: Envelope) -> None:
        raise AssertionError("the batch handler takes these")

    async def many(envelopes: object) -> None:
        assert isinstance(envelopes, list)
        got.extend(envelope.data.n for envelope in envelopes)
        done.set()

    await consumer.subscribe(spec, group="batch", handler=one, batch=many)
    await asyncio.wait_for(done.wait(), 10)
    finished = await finished_spans(spans, at_least=4)
    sends = [span for span in finished if span.name == f"send {spec.name}"]
    batch = one_named(finished, f"process {spec.name}")
    assert got == [0, 1, 2]
    assert parent_of(batch) is None
    assert {link.context.span_id for link in batch.links} == {send.context.span_id for send in sends}
    assert batch.attributes is not None
    assert list(batch.attributes["chat.correlation_id"]) == ["batch-0", "batch-1", "batch-2"]  # type: ignore[arg-type]


async def test_publish_all_is_one_producer_span_every_record_continues(
    spans: InMemorySpanExporter, broker: InProcessBroker
) -> None:
    spec = make_spec(partitions=2)
    broker.ensure_topic(spec.name, spec.partitions)
    await bus_on(broker).publish_all(
        [Outgoing(spec, Ping(key=f"k{n}", n=n), correlation_id="many-1") for n in range(3)], source=SOURCE
    )
    send = one_named(await finished_spans(spans, at_least=1), f"send {spec.name}")
    assert send.attributes is not None
    assert send.attributes["messaging.batch.message_count"] == 3
    parents = {ids_in(record.header(HEADER_TRACEPARENT) or "") for record in broker.records(spec.name)}
    assert parents == {(send.context.trace_id, send.context.span_id)}


def test_store_operations_are_spans_only_inside_a_recorded_trace(spans: InMemorySpanExporter) -> None:
    engine = create_engine("sqlite://")
    observe_statements(engine, StoreMetrics())
    factory = tracing.spans()
    assert factory is not None
    with engine.begin() as connection:
        connection.execute(text("SELECT 1"))  # no trace around it: a background poll, not worth a root span
    with factory.tracer.start_as_current_span("work") as work, engine.begin() as connection:
        connection.execute(text("SELECT 2"))
    finished = spans.get_finished_spans()
    select = one_named(finished, "select postgres")
    assert parent_of(select) == work.get_span_context().span_id
    assert select.attributes is not None
    assert select.attributes["db.system.name"] == "postgresql"
    assert select.start_time is not None
    assert select.end_time is not None
    assert select.start_time <= select.end_time


def test_the_outbox_stores_the_trace_context_of_the_change(spans: InMemorySpanExporter) -> None:
    factory = tracing.spans()
    assert factory is not None
    assert tracing.trace_headers() == ()  # outside any span: nothing to continue
    with factory.tracer.start_as_current_span("change") as change:
        stored = dict(tracing.trace_headers())
    context = change.get_span_context()
    assert ids_in(stored[HEADER_TRACEPARENT].decode()) == (context.trace_id, context.span_id)


def test_a_relayed_record_is_published_under_the_span_that_stored_it(spans: InMemorySpanExporter) -> None:
    factory = tracing.spans()
    assert factory is not None
    spec = make_spec(partitions=1)
    with factory.tracer.start_as_current_span("change") as change:
        stored = encode(
            Envelope.wrap(Ping(key="a", n=1), source=SOURCE, key="a"), topic=spec.name, trace=tracing.trace_headers()
        )
    with factory.relaying(stored) as relayed:
        pass
    send = one_named(spans.get_finished_spans(), f"send {spec.name}")
    assert parent_of(send) == change.get_span_context().span_id
    assert ids_in(relayed.header(HEADER_TRACEPARENT) or "") == (send.context.trace_id, send.context.span_id)
    assert [name for name, _ in relayed.headers].count(HEADER_TRACEPARENT) == 1
    assert relayed.value == stored.value
    assert relayed.key == stored.key


async def test_a_request_no_route_matched_is_named_by_its_method_alone(spans: InMemorySpanExporter) -> None:
    metrics = HttpMetrics(CollectorRegistry(), ["demo"])
    app = CorrelationIdMiddleware(FastAPI(), route_of=metrics.route_of)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        assert (await client.get("/api/demo/no/such/route")).status_code == 404
        assert (await client.get("/healthz")).status_code == 404  # outside /api/: not traced
    [span] = spans.get_finished_spans()
    assert span.name == "GET"
    assert span.attributes is not None
    assert "http.route" not in span.attributes
    assert span.attributes["http.response.status_code"] == 404
