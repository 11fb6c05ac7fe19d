"""Prometheus metrics of a bus, registered on the registry the composition root hands in."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


class BusMetrics:
    """Counters for published, consumed, retried and dead-lettered records, and handler latency."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.published = Counter("chat_bus_published_total", "Records published.", ["topic"], registry=self.registry)
        self.consumed = Counter(
            "chat_bus_consumed_total",
            "Records a consumer finished with, by outcome (ok, dead_lettered).",
            ["topic", "group", "outcome"],
            registry=self.registry,
        )
        self.retries = Counter(
            "chat_bus_retries_total",
            "Handler attempts that failed and were retried.",
            ["topic", "group"],
            registry=self.registry,
        )
        self.dead_lettered = Counter(
            "chat_bus_dead_lettered_total",
            "Records written to a dead-letter topic, by reason kind.",
            ["topic", "group", "reason"],
            registry=self.registry,
        )
        self.handler_seconds = Histogram(
            "chat_bus_handler_seconds",
            "Time spent in a handler per record.",
            ["topic", "group"],
            registry=self.registry,
        )
