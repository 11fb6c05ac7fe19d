"""The scenario a trace must follow: an HTTP request publishes a record, its consumer does a store operation.

Free of OpenTelemetry imports, so it also runs where tracing is off and the SDK must stay unloaded."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

import httpx
from fastapi import FastAPI

from chat_contracts.envelope import Envelope
from chat_contracts.spec import TopicSpec
from chat_runtime.bus.port import Bus
from chat_runtime.logging import CORRELATION_HEADER
from chat_runtime.middleware import CorrelationIdMiddleware
from chat_runtime.store_metrics import StoreMetrics
from chat_runtime.testing.bus_contract import SOURCE, Ping

ROUTE = "/api/demo/pings/{key}"


@dataclass(frozen=True)
class Handled:
    """What the scenario's consumer saw."""

    envelope: Envelope
    correlation_id: str


async def request_then_consume(publisher: Bus, consumer: Bus, spec: TopicSpec, *, correlation_id: str) -> Handled:
    """POST ``ROUTE`` with ``correlation_id``; its handler publishes a Ping on ``spec``; a consumer on ``consumer``
    records one store operation per record. Returns once the consumer has handled it."""
    handled: asyncio.Future[Envelope] = asyncio.get_running_loop().create_future()
    store = StoreMetrics()

    async def consume(envelope: Envelope) -> None:
        store.observe("mongo", "insert", 0.002)  # as the messages service's command listener does, timed after
        if not handled.done():
            handled.set_result(envelope)

    await consumer.subscribe(spec, group=f"trace-{uuid.uuid4().hex[:8]}", handler=consume)
    app = FastAPI()

    @app.post(ROUTE)
    async def ping(key: str) -> dict[str, str]:
        await publisher.publish(spec, Ping(key=key, n=1), source=SOURCE)
        return {"key": key}

    traced = CorrelationIdMiddleware(app, route_of=lambda scope: getattr(scope.get("route"), "path", "unmatched"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=traced), base_url="http://test") as client:
        answer = await client.post("/api/demo/pings/k1", headers={CORRELATION_HEADER: correlation_id})
    answer.raise_for_status()
    envelope = await asyncio.wait_for(handled, 30)
    return Handled(envelope=envelope, correlation_id=correlation_id)
