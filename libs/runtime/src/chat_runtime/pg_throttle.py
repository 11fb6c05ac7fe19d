"""Throttling counters and timestamp columns in PostgreSQL, shared by the services that own a PostgreSQL
database (auth, rooms). Each service's migration creates the two tables; ``throttle_tables`` describes them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final

from chat_runtime.extras import missing_extra

try:
    from sqlalchemy import (
        CheckConstraint,
        Column,
        ColumnElement,
        DateTime,
        Dialect,
        Index,
        Integer,
        MetaData,
        PrimaryKeyConstraint,
        String,
        Table,
        TypeDecorator,
        delete,
        select,
        tuple_,
    )
    from sqlalchemy.dialects.postgresql import insert as upsert
    from sqlalchemy.ext.asyncio import AsyncConnection
except ImportError as missing:
    raise missing_extra("postgres", __name__, missing) from missing

KEEP_FOR: Final = timedelta(days=1)
"""Throttle windows (and other housekeeping rows) are deleted this long after they stop mattering."""
PRUNE_BATCH: Final = 100
"""At most this many stale rows are deleted per call, so housekeeping never makes one request slow."""
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """``timestamptz`` that refuses naive datetimes and reads back in UTC whatever the session time zone."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: the store only takes timezone-aware times")
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.astimezone(UTC)


def throttle_tables(metadata: MetaData) -> tuple[Table, Table]:
    """``throttle_hits`` (fixed-window counters) and ``throttle_failures`` (consecutive failures) on ``metadata``."""
    hits = Table(
        "throttle_hits",
        metadata,
        Column("key", String(300), nullable=False),
        Column("window_start", UtcDateTime(), nullable=False),
        Column("count", Integer, nullable=False),
        PrimaryKeyConstraint("key", "window_start", name="throttle_hits_pkey"),
        CheckConstraint("count > 0", name="throttle_hits_count_check"),
        Index("throttle_hits_window_start", "window_start"),
    )
    failures = Table(
        "throttle_failures",
        metadata,
        Column("key", String(300), primary_key=True),
        Column("count", Integer, nullable=False),
        Column("last_at", UtcDateTime(), nullable=False),
        CheckConstraint("count > 0", name="throttle_failures_count_check"),
    )
    return hits, failures


async def prune(connection: AsyncConnection, table: Table, stale: ColumnElement[bool]) -> None:
    """Delete a batch of stale rows, skipping rows others hold: no request waits on housekeeping."""
    key = tuple_(*table.primary_key.columns)
    batch = select(*table.primary_key.columns).where(stale).limit(PRUNE_BATCH).with_for_update(skip_locked=True)
    await connection.execute(delete(table).where(key.in_(batch)))


def window_start(now: datetime, window: timedelta) -> datetime:
    """Start of the fixed window containing ``now``; windows are aligned on the Unix epoch."""
    return now - (now - _EPOCH) % window


async def hit(connection: AsyncConnection, hits: Table, key: str, *, window: timedelta, now: datetime) -> int:
    """Count one event under ``key`` in the window containing ``now``; the count so far (one atomic upsert)."""
    if not timedelta(0) < window <= KEEP_FOR:
        # Longer windows would be pruned while still counting.
        raise ValueError(f"throttle window must be positive and at most {KEEP_FOR}, not {window}")
    await prune(connection, hits, hits.c.window_start < now - KEEP_FOR)
    statement = (
        upsert(hits)
        .values(key=key, window_start=window_start(now, window), count=1)
        .on_conflict_do_update(
            index_elements=[hits.c.key, hits.c.window_start],
            set_={"count": hits.c.count + 1},
        )
        .returning(hits.c.count)
    )
    return int((await connection.execute(statement)).scalar_one())


async def failures(connection: AsyncConnection, table: Table, key: str) -> tuple[int, datetime | None]:
    """(consecutive failures, when the last one was) under ``key``."""
    row = (await connection.execute(select(table.c.count, table.c.last_at).where(table.c.key == key))).first()
    # Row.count is tuple.count, hence the mapping.
    return (0, None) if row is None else (int(row._mapping["count"]), row._mapping["last_at"])


async def record_failure(connection: AsyncConnection, table: Table, key: str, now: datetime) -> tuple[int, datetime]:
    statement = upsert(table).values(key=key, count=1, last_at=now)
    statement = statement.on_conflict_do_update(
        index_elements=[table.c.key], set_={"count": table.c.count + 1, "last_at": statement.excluded.last_at}
    )
    row = (await connection.execute(statement.returning(table.c.count, table.c.last_at))).one()
    return int(row._mapping["count"]), row._mapping["last_at"]


async def clear_failures(connection: AsyncConnection, table: Table, key: str) -> None:
    await connection.execute(delete(table).where(table.c.key == key))
