"""Traces against the real servers: across a Kafka record's headers, through the outbox on PostgreSQL (with the
async engine's statements as spans), and exported over OTLP/HTTP by the split deployment's processes."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy.ext.asyncio import AsyncEngine

from chat_auth.adapters.postgres import MIGRATIONS as AUTH_MIGRATIONS
from chat_contracts.envelope import Envelope
from chat_contracts.examples import example
from chat_contracts.topics import USERS_EVENTS
from chat_contracts.users import UserRegistered
from chat_localinfra.smtp import SmtpInbox
from chat_runtime import postgres, tracing
from chat_runtime.bus.inprocess import InProcessBroker, InProcessBus
from chat_runtime.outbox import OutboxRelay, enqueue
from chat_runtime.store_metrics import StoreMetrics
from chat_runtime.testing.bus_contract import make_spec
from chat_runtime.testing.traced_scenario import request_then_consume
from chat_runtime.testing.tracing import assert_one_trace, finished_spans, one_named, parent_of, recorded_spans

from .split import run_split
from .test_kafka_bus_contract import KafkaHarness


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    with recorded_spans() as exporter:
        yield exporter


async def test_a_request_its_kafka_record_and_the_consumer_s_store_operation_are_one_trace(
    spans: InMemorySpanExporter, kafka_bootstrap: str
) -> None:
    harness = KafkaHarness(kafka_bootstrap)
    spec = make_spec(partitions=2)
    try:
        await harness.create(spec)
        publisher, consumer = await harness.new_bus(), await harness.new_bus()
        await request_then_consume(publisher, consumer, spec, correlation_id="trace-kafka-1")
        assert_one_trace(await finished_spans(spans, at_least=4), spec, correlation_id="trace-kafka-1")
    finally:
        await harness.close()


@pytest.fixture
async def engine(pg_database: str) -> AsyncIterator[AsyncEngine]:
    postgres.upgrade(pg_database, AUTH_MIGRATIONS)
    engine = postgres.async_engine(pg_database, pool_size=2)
    postgres.observe_statements(engine, StoreMetrics())
    yield engine
    await engine.dispose()


async def test_an_outbox_row_is_relayed_and_consumed_in_the_trace_of_the_change_that_stored_it(
    spans: InMemorySpanExporter, engine: AsyncEngine
) -> None:
    factory = tracing.spans()
    assert factory is not None
    spec = dataclasses.replace(USERS_EVENTS, name=f"{USERS_EVENTS.name}.trace-{uuid.uuid4().hex[:8]}")
    broker = InProcessBroker()
    bus = InProcessBus(broker, topics={spec.name: spec})
    consumed: asyncio.Future[Envelope] = asyncio.get_running_loop().create_future()

    async def consume(envelope: Envelope) -> None:
        consumed.set_result(envelope)

    await bus.subscribe(spec, group="trace-outbox", handler=consume)
    event = example(UserRegistered, user_id=uuid.uuid4())
    envelope = Envelope.wrap(event, source="auth", key=spec.key_of(event), correlation_id="trace-outbox-1")
    with factory.tracer.start_as_current_span("register") as change:
        async with engine.begin() as connection:
            await enqueue(connection, envelope, topic=spec.name)
    relay = OutboxRelay(engine, bus, name="auth")
    try:
        assert await relay.relay_once() == 1
        assert (await asyncio.wait_for(consumed, 10)).id == envelope.id
    finally:
        await bus.stop()
        await broker.stop_all()
    finished = await finished_spans(spans, at_least=4)
    insert = one_named(finished, "insert postgres")  # the enqueue, timed by the engine's listener
    send = one_named(finished, f"send {spec.name}")
    process = one_named(finished, f"process {spec.name}")
    register = change.get_span_context()
    assert parent_of(insert) == register.span_id
    assert parent_of(send) == register.span_id
    assert parent_of(process) == send.context.span_id
    assert {span.context.trace_id for span in (insert, send, process)} == {register.trace_id}
    for span in (send, process):
        assert span.attributes is not None
        assert span.attributes["chat.correlation_id"] == "trace-outbox-1"


class _Collector:
    """A tiny OTLP/HTTP receiver: every POST to /v1/traces decoded as the protocol's ExportTraceServiceRequest."""

    def __init__(self) -> None:
        self.requests: list[ExportTraceServiceRequest] = []
        self.lock = threading.Lock()
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.path != "/v1/traces" or self.headers.get("Content-Type") != "application/x-protobuf":
                    self.send_response(404)
                    self.end_headers()
                    return
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                with collector.lock:
                    collector.requests.append(request)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.end_headers()

            def log_message(self, *_args: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def spans(self) -> list[tuple[str, str, bytes, bytes, dict[str, str]]]:
        """(service.name, span name, trace id, parent span id, string attributes) of every span received."""
        found = []
        with self.lock:
            requests = list(self.requests)
        for request in requests:
            for resource_spans in request.resource_spans:
                service = next(
                    a.value.string_value for a in resource_spans.resource.attributes if a.key == "service.name"
                )
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        attributes = {a.key: a.value.string_value for a in span.attributes}
                        found.append((service, span.name, span.trace_id, span.parent_span_id, attributes))
        return found


@pytest.fixture
def collector() -> Iterator[_Collector]:
    collector = _Collector()
    collector.thread.start()
    try:
        yield collector
    finally:
        collector.server.shutdown()
        collector.server.server_close()
        collector.thread.join(timeout=5)


async def test_the_split_services_export_one_trace_over_otlp_http_from_a_sign_up_to_its_consumers(
    collector: _Collector,
    tmp_path: Path,
    postgres_url: str,
    kafka_bootstrap: str,
    mongo_url: str,
    mongo_database_name: str,
    smtp_server: tuple[str, int, SmtpInbox],
) -> None:
    """Every service process exports to the collector (OTEL_EXPORTER_OTLP_ENDPOINT); a registration through the
    gateway is one trace: auth's request, its outbox row relayed to Kafka, and the consumers in other services."""
    otel = {"OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint, "OTEL_BSP_SCHEDULE_DELAY": "200"}
    async with run_split(
        tmp_path, postgres_url, kafka_bootstrap, mongo_url, mongo_database_name, smtp_server, extra_env=otel
    ) as split:
        await split.sign_up("ada")

        def consumed_trace() -> bytes | None:
            """A trace in which the gateway's request reached auth, auth published, and both rooms and messages
            processed the record (each process exports on its own schedule, so wait for all four)."""
            spans = collector.spans()
            for trace_id in {s[2] for s in spans if s[0] == "chat-auth" and s[1].startswith("send ")}:
                kinds = {(s[0], s[1].split(" ")[0]) for s in spans if s[2] == trace_id}
                if {("chat-gateway", "POST"), ("chat-rooms", "process"), ("chat-messages", "process")} <= kinds:
                    return trace_id
            return None

        async with asyncio.timeout(60):
            while (trace_id := consumed_trace()) is None:
                await asyncio.sleep(0.2)
    in_trace = [s for s in collector.spans() if s[2] == trace_id]
    roots = [s for s in in_trace if not s[3]]
    assert [(s[0], s[1].split(" ")[0]) for s in roots] == [("chat-gateway", "POST")], roots  # the client's request
    assert any(s[0] == "chat-auth" and s[1].startswith("POST /api/auth/") for s in in_trace)  # through the proxy
    correlation_ids = {s[4].get("chat.correlation_id") for s in in_trace}
    assert len(correlation_ids) == 1, in_trace
    assert correlation_ids != {""}
