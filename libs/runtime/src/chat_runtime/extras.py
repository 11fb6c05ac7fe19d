"""chat-runtime's extras: the drivers a family of its modules needs, installed only by the services that use them.

``postgres`` (SQLAlchemy, psycopg, Alembic): ``chat_runtime.postgres``, ``pg_store``, ``pg_throttle``, ``outbox``,
``alembic_env`` and ``testing.postgres``. ``kafka`` (aiokafka): ``chat_runtime.bus.kafka``, ``bus.kafka_setup``,
``bus.kafka_follow`` and ``bus.aiokafka_internals``. ``mongo`` (pymongo): lets ``chat_runtime.problems`` answer
an unreachable MongoDB with 503. ``tracing``
(OpenTelemetry's SDK and OTLP/HTTP exporter): ``chat_runtime.otel``, imported only once tracing is turned on.
Such a module imported without its extra raises ``MissingExtra`` at once, naming what to install, instead of an
ImportError from deep inside a driver's import chain.
"""

from __future__ import annotations

from typing import Literal

Extra = Literal["postgres", "kafka", "mongo", "tracing"]


class MissingExtra(ImportError):
    """A chat-runtime module was imported without the extra that installs its dependencies."""


def missing_extra(extra: Extra, module: str, cause: ImportError) -> MissingExtra:
    """The error a module raises when importing ``extra``'s packages failed with ``cause``."""
    return MissingExtra(
        f"{module} needs chat-runtime's {extra!r} extra ({cause.name or 'a dependency'} is not installed): "
        f"depend on chat-runtime[{extra}] (pip install 'chat-runtime[{extra}]')",
        name=cause.name,
    )
