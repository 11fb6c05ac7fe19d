"""Prometheus metrics of a bus, registered on the registry the composition root hands in."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

LagReading = tuple[str, str, int, int]
"""(group, topic, partition, records behind the head) of one partition a consumer of this process reads."""

LagSource = Callable[[], Iterable[LagReading]]


class BusMetrics:
    """Counters for published, consumed, retried and dead-lettered records, handler latency, and consumer lag."""

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
        self._published: dict[str, Counter] = {}
        self._lag = _ConsumerLag()
        self.registry.register(self._lag)

    def published_to(self, topic: str) -> Counter:
        """``published`` for ``topic``, looked up once: ``labels`` checks its values and takes a lock on every
        call, and a command and its events are counted per message."""
        counter = self._published.get(topic)
        if counter is None:
            counter = self._published[topic] = self.published.labels(topic)
        return counter

    def watch_lag(self, source: LagSource) -> None:
        """Read ``source`` at every scrape for ``chat_bus_consumer_lag`` (a bus hands in its consumers' view)."""
        self._lag.sources.append(source)


class _ConsumerLag(Collector):
    """``chat_bus_consumer_lag``, computed when scraped from what each consumer knows, so a consumer that is stuck
    shows a lag that grows while records keep arriving. The gauge is the collector's own (on no registry): filled
    afresh at each scrape, so a partition no longer consumed here disappears."""

    def __init__(self) -> None:
        self.sources: list[LagSource] = []
        self._gauge = Gauge(
            "chat_bus_consumer_lag",
            "Records of a partition a consumer group of this process has yet to handle (the partition's head minus "
            "the next offset the group handles), per partition the process consumes.",
            ["group", "topic", "partition"],
            registry=None,
        )

    def describe(self) -> Iterable[Metric]:
        return self._gauge.describe()

    def collect(self) -> Iterable[Metric]:
        self._gauge.clear()
        for source in list(self.sources):
            for group, topic, partition, lag in source():
                self._gauge.labels(group, topic, str(partition)).set(lag)
        return self._gauge.collect()
