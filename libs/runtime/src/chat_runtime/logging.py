"""structlog set-up and the correlation id carried through requests and records."""

from __future__ import annotations

import logging
import sys
import threading
from typing import Any, Literal

import structlog
from structlog.contextvars import bind_contextvars, get_contextvars, merge_contextvars

from chat_contracts.ids import random_hex

CORRELATION_KEY = "correlation_id"
CORRELATION_HEADER = "X-Correlation-ID"


def configure_logging(
    *, level: str = "info", fmt: Literal["auto", "json", "console"] = "auto", service: str | None = None
) -> None:
    """JSON lines when not on a terminal (split mode, CI), pretty output on a terminal."""
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer: Any = structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer()
    processors: list[Any] = [
        merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if service:
        processors.append(_add_service(service))
    if use_json:
        processors.append(structlog.processors.dict_tracebacks)
    processors.append(renderer)
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        logger_factory=_to_stderr,
        cache_logger_on_first_use=False,
    )


class _StderrLogger:
    """Writes each line to ``sys.stderr`` as it is when the line is written, not when logging was configured: a
    stream swapped since (a test's capture, closed after it) is never written to."""

    _lock = threading.Lock()

    def msg(self, message: str) -> None:
        with self._lock:
            print(message, file=sys.stderr, flush=True)

    debug = info = warning = warn = error = critical = exception = fatal = log = msg


def _to_stderr(*_args: Any) -> _StderrLogger:
    return _StderrLogger()


def _add_service(service: str) -> Any:
    def processor(_logger: Any, _name: str, event: dict[str, Any]) -> dict[str, Any]:
        event.setdefault("service", service)
        return event

    return processor


def new_correlation_id() -> str:
    """A fresh correlation id."""
    return random_hex()


def bind_correlation_id(value: str | None) -> str:
    """Bind ``value`` (or a fresh id) as the correlation id of the current task and return it."""
    correlation_id = value or new_correlation_id()
    bind_contextvars(**{CORRELATION_KEY: correlation_id})
    return correlation_id


def current_correlation_id() -> str | None:
    """The correlation id bound to the current task, if any."""
    value = get_contextvars().get(CORRELATION_KEY)
    return value if isinstance(value, str) else None
