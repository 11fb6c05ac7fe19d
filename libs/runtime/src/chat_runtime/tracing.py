"""OpenTelemetry traces: off unless the standard ``OTEL_*`` variables ask for an exporter.

The spans are started where the work already has one place: an HTTP request (``CorrelationIdMiddleware``), a bus
publish (both adapters, and the outbox relay) and a record's handling (``RecordProcessor``), a store operation
(``StoreMetrics``). Each of those asks ``spans()`` once; ``None`` means tracing is off, and it then does nothing
else: no span, context or header object is made, and the OpenTelemetry packages (the ``tracing`` extra) are not
even imported. The trace context crosses the bus in the records' ``traceparent`` and ``tracestate`` headers, next
to ``correlation_id``, and every span carries the correlation id as ``chat.correlation_id``, so a trace and the
log lines of the same work find each other.

The switch is process-wide, like the logging configuration: the spans are started in shared layers (the bus, the
store listeners) that every module of an all-in-one process uses, and the composition root (``chat``'s command
line) sets it once from the environment, as ``configure_logging`` does.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chat_runtime.otel import Spans

EXPORTERS = ("otlp", "console")
"""The ``OTEL_TRACES_EXPORTER`` values this runtime can honour (besides ``none``)."""

_spans: Spans | None = None


def spans() -> Spans | None:
    """The process's span factory when tracing is on, else None (then skip every tracing step)."""
    return _spans


def use_spans(factory: Spans | None) -> Spans | None:
    """Make ``factory`` the process's span factory (None turns tracing off); returns the previous one."""
    global _spans  # the process-wide switch this module is
    previous, _spans = _spans, factory
    return previous


def exporter_from(environ: Mapping[str, str]) -> str | None:
    """The span exporter the standard variables ask for, or None when traces are off.

    Off unless an OTLP endpoint is given (``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``…_TRACES_ENDPOINT``) or
    ``OTEL_TRACES_EXPORTER`` names an exporter; ``OTEL_SDK_DISABLED=true`` or ``OTEL_TRACES_EXPORTER=none`` turn
    them off whatever else is set. Raises ValueError for an exporter this runtime does not ship.
    """
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    named = [part.strip().lower() for part in environ.get("OTEL_TRACES_EXPORTER", "").split(",") if part.strip()]
    if "none" in named:
        return None
    unknown = [name for name in named if name not in EXPORTERS]
    if unknown:
        raise ValueError(f"OTEL_TRACES_EXPORTER={unknown[0]!r} is not available here; use one of {EXPORTERS} or none")
    if named:
        return named[0]
    endpoint = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    return "otlp" if endpoint else None


def configure_tracing(*, service: str) -> Spans | None:
    """Turn tracing on as the process's ``OTEL_*`` variables say (off when they ask for nothing) and return the span
    factory. ``OTEL_SERVICE_NAME`` defaults to ``chat-<service>``; the endpoint, headers, timeout, compression,
    resource attributes and sampler are read by the OpenTelemetry SDK itself, from its own variables."""
    exporter = exporter_from(os.environ)
    if exporter is None:
        use_spans(None)
        return None
    from chat_runtime.otel import Spans, provider_for  # the `tracing` extra, imported only when it is used

    provider = provider_for(service_name=os.environ.get("OTEL_SERVICE_NAME") or f"chat-{service}", exporter=exporter)
    factory = Spans(provider)
    use_spans(factory)
    return factory


def shutdown_tracing() -> None:
    """Export what is buffered and turn tracing off (the end of a process, or of a test)."""
    factory = use_spans(None)
    if factory is not None:
        factory.shutdown()


def trace_headers() -> tuple[tuple[str, bytes], ...]:
    """The current span's context as record headers, to store with a record published later (the outbox); empty
    when tracing is off."""
    factory = _spans
    return () if factory is None else factory.current_headers()
