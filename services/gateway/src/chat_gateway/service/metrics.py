"""The gateway's Prometheus metrics: sockets, client events and their acks, deliveries and slow consumers.

Registered on the process registry the composition root hands in. The message path calls at most a few of these
per event, and never one per socket: a fan-out adds the number of sockets it wrote once per call.
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from chat_gateway.service.protocol import Ack

UNKNOWN_EVENT = "unknown"
"""The ``event`` label of events no handler serves (unknown, undecodable or refused): client-chosen names would
make the label unbounded."""

ACK_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class GatewayMetrics:
    """The gateway's counters, gauge and histograms on ``registry`` (a private one when none is handed in)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.sockets_connected = Gauge(
            "chat_gateway_sockets_connected",
            "Authenticated sockets connected to this gateway instance.",
            registry=self.registry,
        )
        self.client_events = Counter(
            "chat_gateway_client_events_total",
            'Client events by name and the result code of their ack ("ok", or the error code; "timeout" is an '
            'ack the messages service did not answer in time). event="unknown" counts events no handler serves.',
            ["event", "code"],
            registry=self.registry,
        )
        self.ack_seconds = Histogram(
            "chat_gateway_ack_seconds",
            "Time from a client event's arrival at the gateway to its ack.",
            ["event"],
            buckets=ACK_BUCKETS,
            registry=self.registry,
        )
        self.deliveries = Counter(
            "chat_gateway_deliveries_total",
            "Events written to sockets by the room fan-out (one per socket written).",
            registry=self.registry,
        )
        self.slow_consumers = Counter(
            "chat_gateway_slow_consumers_total",
            "Sockets ended with slow_consumer: their unsent backlog passed the hard limit.",
            registry=self.registry,
        )
        self._answered: dict[tuple[str, str], Any] = {}
        self._timed: dict[str, Any] = {}

    def acked(self, event: str, ack: Ack, started: float) -> None:
        """Count ``event`` by its ack's code and observe the time since ``started`` (``time.perf_counter()``)."""
        elapsed = time.perf_counter() - started
        code = "ok" if ack.get("ok") else str(ack.get("error", {}).get("code", "unknown"))
        counted = self._answered.get((event, code))
        if counted is None:
            counted = self._answered[(event, code)] = self.client_events.labels(event, code)
        counted.inc()
        timed = self._timed.get(event)
        if timed is None:
            timed = self._timed[event] = self.ack_seconds.labels(event)
        timed.observe(elapsed)
