"""Traces in tests: spans recorded in memory, and what the scenario of ``traced_scenario`` must leave: one trace
from the HTTP request to the consumer's store operation, whichever bus adapter carried the record."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from chat_contracts.spec import TopicSpec
from chat_runtime import tracing
from chat_runtime.otel import Spans
from chat_runtime.testing.traced_scenario import ROUTE


@contextmanager
def recorded_spans() -> Iterator[InMemorySpanExporter]:
    """Tracing on for the block, every span kept in memory as it ends; the previous switch restored after."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    previous = tracing.use_spans(Spans(provider))
    try:
        yield exporter
    finally:
        tracing.use_spans(previous)
        provider.shutdown()


async def finished_spans(exporter: InMemorySpanExporter, *, at_least: int, timeout: float = 10) -> list[ReadableSpan]:
    """The spans ended so far, once there are ``at_least`` (a consumer span ends just after its handler returned)."""

    async def enough() -> list[ReadableSpan]:
        while len(exporter.get_finished_spans()) < at_least:  # noqa: ASYNC110 - the exporter notifies nobody
            await asyncio.sleep(0.01)
        return list(exporter.get_finished_spans())

    return await asyncio.wait_for(enough(), timeout)


def one_named(spans: Sequence[ReadableSpan], name: str) -> ReadableSpan:
    """The only span called ``name``; fails naming the spans there were."""
    found = [span for span in spans if span.name == name]
    assert len(found) == 1, f"{name!r} in {[span.name for span in spans]}"
    return found[0]


def parent_of(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def assert_one_trace(spans: Sequence[ReadableSpan], spec: TopicSpec, *, correlation_id: str) -> None:
    """Server span → producer span → (across the record's headers) consumer span → store span, one trace, each with
    the request's correlation id."""
    server = one_named(spans, f"POST {ROUTE}")
    send = one_named(spans, f"send {spec.name}")
    process = one_named(spans, f"process {spec.name}")
    store = one_named(spans, "insert mongo")
    chain = [server, send, process, store]
    assert {span.context.trace_id for span in chain} == {server.context.trace_id}
    assert parent_of(server) is None
    assert parent_of(send) == server.context.span_id
    assert parent_of(process) == send.context.span_id
    assert parent_of(store) == process.context.span_id
    assert [span.kind.name for span in chain] == ["SERVER", "PRODUCER", "CONSUMER", "CLIENT"]
    for span in chain:
        assert span.attributes is not None
        assert span.attributes["chat.correlation_id"] == correlation_id, span.name
    assert server.attributes is not None
    assert server.attributes["http.route"] == ROUTE
    assert server.attributes["http.response.status_code"] == 200
    assert store.attributes is not None
    assert store.attributes["db.system.name"] == "mongodb"
