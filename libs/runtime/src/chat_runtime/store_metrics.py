"""Store latency by operation (``chat_store_operation_seconds{store, operation}``), shared by every store of a
process: the PostgreSQL engines of auth and rooms (``chat_runtime.postgres.observe_statements``) and the messages
service's MongoDB client (a command listener in ``chat_messages.adapters.mongo``). When tracing is on, each
operation inside a recorded trace is also a client span there."""

from __future__ import annotations

import weakref
from typing import Any

from prometheus_client import CollectorRegistry, Histogram

from chat_runtime import tracing

STORE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

_by_registry: weakref.WeakKeyDictionary[CollectorRegistry, StoreMetrics] = weakref.WeakKeyDictionary()


class StoreMetrics:
    """One histogram, with a child kept per (store, operation) so an observation costs no label lookup."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.seconds = Histogram(
            "chat_store_operation_seconds",
            "Time a store took to answer one operation (MongoDB: the command name; PostgreSQL: the statement's "
            "first keyword, such as select or insert), failed ones included.",
            ["store", "operation"],
            buckets=STORE_BUCKETS,
            registry=self.registry,
        )
        self._children: dict[tuple[str, str], Any] = {}

    @classmethod
    def on(cls, registry: CollectorRegistry) -> StoreMetrics:
        """The store metrics of ``registry``, created on first use so every store of the process shares them."""
        metrics = _by_registry.get(registry)
        if metrics is None:
            metrics = _by_registry[registry] = cls(registry)
        return metrics

    def observe(self, store: str, operation: str, seconds: float) -> None:
        child = self._children.get((store, operation))
        if child is None:
            child = self._children[(store, operation)] = self.seconds.labels(store, operation)
        child.observe(seconds)
        spans = tracing.spans()
        if spans is not None:
            spans.store_operation(store, operation, seconds)
