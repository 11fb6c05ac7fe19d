"""The spans themselves, on the OpenTelemetry SDK (chat-runtime's ``tracing`` extra).

Only ``chat_runtime.tracing`` imports this module, and only once tracing is turned on; callers reach it through
``tracing.spans()``. Names and attributes follow OpenTelemetry's semantic conventions where they have one (HTTP
server, messaging, database client); ``chat.correlation_id`` is ours, on every span.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager

from starlette.types import ASGIApp, Message, Receive, Scope, Send
from structlog.contextvars import bound_contextvars

from chat_contracts.envelope import HEADER_CORRELATION_ID, HEADER_TRACEPARENT, HEADER_TRACESTATE, Record
from chat_runtime.extras import missing_extra
from chat_runtime.http_metrics import UNMATCHED
from chat_runtime.logging import CORRELATION_KEY, current_correlation_id, new_correlation_id

try:
    from opentelemetry import trace
    from opentelemetry.context import Context
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
    from opentelemetry.trace import Link, SpanKind, StatusCode
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
    from opentelemetry.util.types import AttributeValue
except ImportError as missing:
    raise missing_extra("tracing", __name__, missing) from missing

CORRELATION_ATTRIBUTE = "chat.correlation_id"
TRACE_HEADERS = (HEADER_TRACEPARENT, HEADER_TRACESTATE)
_ASGI_TRACE_HEADERS = tuple(name.encode() for name in TRACE_HEADERS)
STORE_SYSTEMS = {"postgres": "postgresql", "mongo": "mongodb", "mongodb": "mongodb"}
"""``StoreMetrics``' store label → the ``db.system.name`` of the semantic conventions."""

Headers = tuple[tuple[str, bytes], ...]
RouteOf = Callable[[Scope], str]


def provider_for(*, service_name: str, exporter: str) -> TracerProvider:
    """A tracer provider exporting in batches, off the event loop, to ``exporter`` (``otlp`` or ``console``).

    The OTLP exporter reads its endpoint, headers, timeout and compression from the ``OTEL_EXPORTER_OTLP_*``
    variables; the provider reads ``OTEL_TRACES_SAMPLER`` (default ``parentbased_always_on``) and
    ``OTEL_RESOURCE_ATTRIBUTES``."""
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service_name}))
    chosen: SpanExporter = OTLPSpanExporter() if exporter == "otlp" else ConsoleSpanExporter()
    provider.add_span_processor(BatchSpanProcessor(chosen))
    return provider


class Spans:
    """Starts the product's spans on one tracer provider; every method assumes tracing is on."""

    def __init__(self, provider: TracerProvider) -> None:
        self.provider = provider
        self.tracer = provider.get_tracer("chat_runtime")
        self.propagator = TraceContextTextMapPropagator()

    def shutdown(self) -> None:
        """Export the spans still buffered, then stop the exporter."""
        self.provider.shutdown()

    # --- the trace context in headers ------------------------------------------------------------------------------

    def current_headers(self) -> Headers:
        """The current span's context as ``traceparent``/``tracestate`` record headers (none outside a span)."""
        carrier: dict[str, str] = {}
        self.propagator.inject(carrier)
        return tuple((name, value.encode()) for name, value in carrier.items())

    def _context_of(self, headers: Iterable[tuple[str, bytes]]) -> Context | None:
        carrier = {name: value.decode("latin-1") for name, value in headers if name in TRACE_HEADERS}
        return self.propagator.extract(carrier) if carrier else None

    # --- HTTP ------------------------------------------------------------------------------------------------------

    async def serve_http(
        self, app: ASGIApp, scope: Scope, receive: Receive, send: Send, *, correlation_id: str, route_of: RouteOf | None
    ) -> None:
        """Run one HTTP request under a server span continuing the caller's ``traceparent``; named after the route
        template once routing chose one, with the response status."""
        method = scope.get("method", "")
        parent = self._context_of(
            (name.decode("latin-1"), value) for name, value in scope.get("headers", ()) if name in _ASGI_TRACE_HEADERS
        )
        status = 500

        async def noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        attributes: dict[str, AttributeValue] = {
            "http.request.method": method,
            "url.path": scope.get("path", ""),
            CORRELATION_ATTRIBUTE: correlation_id,
        }
        with self.tracer.start_as_current_span(
            method, context=parent, kind=SpanKind.SERVER, attributes=attributes
        ) as span:
            try:
                await app(scope, receive, noting_status)
            finally:
                route = route_of(scope) if route_of is not None else None
                if route and route != UNMATCHED:  # else the method alone names it: never the raw path
                    span.update_name(f"{method} {route}")
                    span.set_attribute("http.route", route)
                span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    span.set_status(StatusCode.ERROR)

    # --- the bus ---------------------------------------------------------------------------------------------------

    @contextmanager
    def publishing(self, topics: Sequence[str], correlation_ids: Sequence[str]) -> Iterator[Headers]:
        """A producer span around publishing records (one per correlation id) to ``topics``; yields the headers
        that make each record's consumer span its child."""
        destinations = list(dict.fromkeys(topics))
        attributes: dict[str, AttributeValue] = {
            "messaging.operation.type": "send",
            "messaging.destination.name": destinations[0] if len(destinations) == 1 else destinations,
            CORRELATION_ATTRIBUTE: _one_or_all(correlation_ids),
        }
        if len(correlation_ids) > 1:
            attributes["messaging.batch.message_count"] = len(correlation_ids)
        name = f"send {destinations[0]}" if len(destinations) == 1 else "send"
        with self.tracer.start_as_current_span(name, kind=SpanKind.PRODUCER, attributes=attributes):
            yield self.current_headers()

    @contextmanager
    def relaying(self, record: Record) -> Iterator[Record]:
        """A producer span for a record stored earlier (the outbox), child of the span that stored it; yields the
        record with its trace headers pointing at this span."""
        attributes: dict[str, AttributeValue] = {
            "messaging.operation.type": "send",
            "messaging.destination.name": record.topic,
            CORRELATION_ATTRIBUTE: record.header(HEADER_CORRELATION_ID) or "",
        }
        with self.tracer.start_as_current_span(
            f"send {record.topic}",
            context=self._context_of(record.headers),
            kind=SpanKind.PRODUCER,
            attributes=attributes,
        ):
            kept = tuple((name, value) for name, value in record.headers if name not in TRACE_HEADERS)
            yield Record(record.topic, record.key, record.value, kept + self.current_headers())

    @contextmanager
    def processing(self, record: Record, *, group: str, partition: int, offset: int) -> Iterator[None]:
        """A consumer span for handling one record, child of the span that published it."""
        attributes: dict[str, AttributeValue] = {
            "messaging.operation.type": "process",
            "messaging.destination.name": record.topic,
            "messaging.consumer.group.name": group,
            "messaging.destination.partition.id": str(partition),
            "messaging.kafka.offset": offset,
            CORRELATION_ATTRIBUTE: record.header(HEADER_CORRELATION_ID) or "",
        }
        with self.tracer.start_as_current_span(
            f"process {record.topic}",
            context=self._context_of(record.headers),
            kind=SpanKind.CONSUMER,
            attributes=attributes,
        ):
            yield

    @contextmanager
    def processing_batch(self, records: Sequence[Record], *, group: str, partition: int) -> Iterator[None]:
        """A consumer span for a batch handler's call: records from many traces, so a root span linking each
        record's publisher (the semantic conventions' batch receive) rather than a child of one of them."""
        links = []
        for record in records:
            context = self._context_of(record.headers)
            if context is not None:
                span_context = trace.get_current_span(context).get_span_context()
                if span_context.is_valid:
                    links.append(Link(span_context))
        topic = records[0].topic if records else ""
        attributes: dict[str, AttributeValue] = {
            "messaging.operation.type": "process",
            "messaging.destination.name": topic,
            "messaging.consumer.group.name": group,
            "messaging.destination.partition.id": str(partition),
            "messaging.batch.message_count": len(records),
            CORRELATION_ATTRIBUTE: _one_or_all([record.header(HEADER_CORRELATION_ID) or "" for record in records]),
        }
        with self.tracer.start_as_current_span(
            f"process {topic}",
            context=trace.set_span_in_context(trace.INVALID_SPAN),
            kind=SpanKind.CONSUMER,
            links=links,
            attributes=attributes,
        ):
            yield

    # --- stores ----------------------------------------------------------------------------------------------------

    def store_operation(self, store: str, operation: str, seconds: float) -> None:
        """A client span for a store operation that just ended after ``seconds``, under the current span. Nothing
        outside a recorded trace (background polls would otherwise each start one)."""
        if not trace.get_current_span().is_recording():
            return
        ended = time.time_ns()
        span = self.tracer.start_span(
            f"{operation} {store}",
            kind=SpanKind.CLIENT,
            start_time=ended - int(seconds * 1e9),
            attributes={
                "db.system.name": STORE_SYSTEMS.get(store, store),
                "db.operation.name": operation,
                CORRELATION_ATTRIBUTE: current_correlation_id() or "",
            },
        )
        span.end(end_time=ended)

    # --- Socket.IO -------------------------------------------------------------------------------------------------

    @contextmanager
    def socket_event(self, event: str) -> Iterator[None]:
        """A span for one client event on a socket (``message:send``…), the parent of the command it publishes;
        a correlation id is bound for it (a fresh one unless the task has one) so its logs, its span and its
        command's records share one."""
        correlation_id = current_correlation_id() or new_correlation_id()
        attributes: dict[str, AttributeValue] = {"socketio.event": event, CORRELATION_ATTRIBUTE: correlation_id}
        with (
            bound_contextvars(**{CORRELATION_KEY: correlation_id}),
            self.tracer.start_as_current_span(f"socketio {event}", kind=SpanKind.SERVER, attributes=attributes),
        ):
            yield


def _one_or_all(values: Sequence[str]) -> str | list[str]:
    distinct = list(dict.fromkeys(values))
    return distinct[0] if len(distinct) == 1 else distinct
