"""The relay: publishes committed outbox rows to the bus, one active relay per database.

The active relay holds a session-level PostgreSQL advisory lock on a dedicated connection and does all its
reading, marking and purging on that connection, so work stops as soon as the lock's session is gone. Other
instances retry the lock every ``poll_interval`` and take over when the holder stops or dies.

The active relay works when woken: ``wake()`` after a commit in this process, a PostgreSQL notification after a
commit in another. Polling every ``poll_interval`` (seconds, not a fraction of one) only catches a wake that was
lost (a process that died between its commit and its wake, a notification dropped with a connection), so an
idle relay costs next to nothing. Its statements are built once, in the constructor.

Rows are published per key in ``position`` order (records of different keys concurrently, up to
``max_in_flight``) and marked published only after ``Bus.publish_record`` returned, so a crash between the
two re-publishes: delivery is at least once and consumers dedupe on the envelope id. A failed publish is
retried with capped backoff from the first unpublished row of its key; nothing is skipped or reordered. When
tracing is on, each publish is a producer span continuing the trace the row's headers stored at enqueue.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge

from chat_contracts.envelope import Record
from chat_runtime import tracing
from chat_runtime.bus.port import Bus, RetryPolicy
from chat_runtime.extras import missing_extra
from chat_runtime.outbox.store import OUTBOX, decode_headers

try:
    import psycopg
    from sqlalchemy import Row, bindparam, delete, extract, func, select, text, update
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
except ImportError as missing:
    raise missing_extra("postgres", __name__, missing) from missing

log = structlog.get_logger("chat.outbox")

NOTIFY_CHANNEL: Final = "chat_outbox"
"""The channel a standby's ``wake()`` notifies so the active relay in another process reacts at once."""

LOCK_KEY: Final = int.from_bytes(hashlib.blake2b(b"chat_runtime.outbox", digest_size=8).digest(), signed=True)
"""Advisory lock key; advisory locks are per database, and each database has one outbox table."""

PURGE_CHUNK: Final = 5_000
DEFAULT_POLL_INTERVAL: Final = 5.0
"""Seconds between fallback polls (and a standby's lock attempts), when nothing wakes the relay sooner."""

# A relay host that vanishes without closing its socket keeps the lock until the server notices; these make
# the server notice within about 25 s instead of the operating system's default of hours.
_KEEPALIVES: Final = (
    text("SET tcp_keepalives_idle = 10"),
    text("SET tcp_keepalives_interval = 5"),
    text("SET tcp_keepalives_count = 3"),
)
_LISTEN: Final = text(f"LISTEN {NOTIFY_CHANNEL}")
_TRY_LOCK: Final = select(func.pg_try_advisory_lock(LOCK_KEY))
_NOTIFY: Final = select(func.pg_notify(NOTIFY_CHANNEL, bindparam("name")))
_MARK_PUBLISHED: Final = (
    update(OUTBOX).where(OUTBOX.c.position.in_(bindparam("positions", expanding=True))).values(published_at=func.now())
)

_metrics_by_registry: weakref.WeakKeyDictionary[CollectorRegistry, OutboxMetrics] = weakref.WeakKeyDictionary()


class OutboxMetrics:
    """Prometheus metrics of the outbox relays of one registry, labelled by relay name."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.relayed = Counter(
            "chat_outbox_relayed_total",
            "Outbox records published to the bus and marked published.",
            ["outbox", "topic"],
            registry=self.registry,
        )
        self.publish_failures = Counter(
            "chat_outbox_publish_failures_total",
            "Outbox records whose publish raised; they are retried.",
            ["outbox", "topic"],
            registry=self.registry,
        )
        self.lag = Gauge(
            "chat_outbox_lag_seconds",
            "Age of the oldest unpublished outbox row as the active relay last saw it (0 on standbys).",
            ["outbox"],
            registry=self.registry,
        )
        self.active = Gauge(
            "chat_outbox_relay_active",
            "1 while this instance holds the outbox lock and relays, 0 while it stands by.",
            ["outbox"],
            registry=self.registry,
        )
        self.purged = Counter(
            "chat_outbox_purged_total",
            "Published outbox rows deleted after the retention.",
            ["outbox"],
            registry=self.registry,
        )
        self.errors = Counter(
            "chat_outbox_relay_errors_total",
            "Relay rounds that failed on the database (or unexpectedly) and were retried.",
            ["outbox"],
            registry=self.registry,
        )

    @classmethod
    def on(cls, registry: CollectorRegistry) -> OutboxMetrics:
        """The metrics registered on ``registry``, created on first use so several relays can share it."""
        metrics = _metrics_by_registry.get(registry)
        if metrics is None:
            metrics = _metrics_by_registry[registry] = cls(registry)
        return metrics


async def notify_relay(engine: AsyncEngine, name: str) -> None:
    """Tell the active relay ``name``, in whichever process runs it, that rows were committed: for a process that
    writes the outbox without running a relay (an operator command), so the rows go out now, not at the next poll."""
    async with engine.connect() as connection:
        await connection.execute(_NOTIFY, {"name": name})
        await connection.commit()


@dataclass(frozen=True, slots=True)
class _Round:
    fetched: int
    published: int
    failed: bool


class OutboxRelay:
    """Publishes one database's outbox to the bus; run one per service instance, one is active at a time."""

    def __init__(
        self,
        engine: AsyncEngine,
        bus: Bus,
        *,
        name: str,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        batch_size: int = 200,
        retention: timedelta = timedelta(days=7),
        purge_interval: float = 300.0,
        max_in_flight: int = 32,
        retry: RetryPolicy | None = None,
        registry: CollectorRegistry | None = None,
        metrics: OutboxMetrics | None = None,
    ) -> None:
        if poll_interval <= 0 or purge_interval <= 0:
            raise ValueError("poll_interval and purge_interval must be positive")
        if batch_size < 1 or max_in_flight < 1:
            raise ValueError("batch_size and max_in_flight must be at least 1")
        if retention < timedelta(0):
            raise ValueError("retention must not be negative")
        self.name = name
        self.metrics = metrics or (OutboxMetrics.on(registry) if registry is not None else OutboxMetrics())
        self._engine = engine
        self._bus = bus
        self._poll_interval = poll_interval
        self._batch_size = batch_size
        self._retention = retention
        self._purge_interval = purge_interval
        self._max_in_flight = max_in_flight
        self._retry = retry or RetryPolicy(initial_backoff=0.1, max_backoff=5.0)
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._active = False
        self._notify_wanted = False
        self._notifier: asyncio.Task[None] | None = None
        self._rounds = 0
        age = extract("epoch", func.clock_timestamp() - OUTBOX.c.created_at)
        self._fetch = (
            select(
                OUTBOX.c.position,
                OUTBOX.c.event_id,
                OUTBOX.c.topic,
                OUTBOX.c.record_key,
                OUTBOX.c.record_value,
                OUTBOX.c.headers,
                age.label("age"),
            )
            .where(OUTBOX.c.published_at.is_(None))
            .order_by(OUTBOX.c.position)
            .limit(batch_size)
        )
        published_at = OUTBOX.c.published_at
        doomed = (
            select(OUTBOX.c.position)
            .where(published_at.is_not(None), published_at < func.now() - retention)
            .order_by(OUTBOX.c.position)
            .limit(PURGE_CHUNK)
            .scalar_subquery()
        )
        self._purge_chunk = delete(OUTBOX).where(OUTBOX.c.position.in_(doomed))

    @property
    def active(self) -> bool:
        """True while this instance holds the outbox lock."""
        return self._active

    @property
    def poll_interval(self) -> float:
        """Seconds between fallback polls (and a standby's lock attempts) when nothing wakes the relay."""
        return self._poll_interval

    @property
    def rounds(self) -> int:
        """Rounds this instance relayed as the active relay, each one read of the table."""
        return self._rounds

    async def start(self) -> None:
        """Start relaying in the background (as the active relay, or as a standby until the lock frees)."""
        if self._task is not None:
            return
        self._stop.clear()
        self._task = asyncio.create_task(self._run(), name=f"outbox-relay:{self.name}")
        log.info("outbox.relay_started", outbox=self.name)

    async def stop(self, *, grace: float = 30.0) -> None:
        """Finish the batch in flight, mark it, release the lock; cancel the batch after ``grace`` seconds."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stop.set()
        self._wake.set()
        try:
            await asyncio.wait_for(asyncio.shield(task), grace)
        except TimeoutError:
            log.warning("outbox.stop_timed_out", outbox=self.name, grace=grace)
            await _cancel(task)
        await self._stop_notifier()
        log.info("outbox.relay_stopped", outbox=self.name)

    async def abort(self) -> None:
        """Drop the batch in flight unmarked and close the lock's session, as a crash would (tests, chaos)."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stop.set()
        await _cancel(task)
        await self._stop_notifier()

    def wake(self) -> None:
        """Relay now rather than at the next poll; call after committing a transaction that enqueued.

        When another process holds the lock, this sends it a PostgreSQL notification instead.
        """
        if self._active:
            self._wake.set()
        elif self._task is not None and not self._stop.is_set():
            self._notify_wanted = True
            if self._notifier is None or self._notifier.done():
                self._notifier = asyncio.create_task(self._notify(), name=f"outbox-notify:{self.name}")

    async def relay_once(self) -> int:
        """Publish one batch if no relay holds the lock; returns how many records were published."""
        connection = await _autocommit(self._engine)
        try:
            if not await _try_lock(connection):
                return 0
            return (await self._relay_batch(connection)).published
        finally:
            await _discard(connection)  # ending the session releases the lock whatever happened

    async def purge(self) -> int:
        """Delete published rows older than the retention; returns how many were deleted."""
        connection = await _autocommit(self._engine)
        try:
            return await self._purge(connection)
        finally:
            await connection.close()

    async def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            connection: AsyncConnection | None = None
            rounds_before = self._rounds
            try:
                connection = await self._acquire()
                if connection is None:
                    return
                await self._serve(connection)
            except Exception as exc:
                # Nothing is skipped by going round again: the next round re-reads the unpublished rows.
                failures = 1 if self._rounds > rounds_before else failures + 1
                self.metrics.errors.labels(self.name).inc()
                log.warning(
                    "outbox.relay_error",
                    outbox=self.name,
                    was_active=connection is not None,
                    attempt=failures,
                    error=f"{type(exc).__name__}: {exc}",
                )
            finally:
                if self._active:
                    log.info("outbox.relay_inactive", outbox=self.name)
                self._active = False
                self.metrics.active.labels(self.name).set(0)
                self.metrics.lag.labels(self.name).set(0)
                if connection is not None:
                    await _discard(connection)
            if failures:
                await self._pause(self._retry.backoff(min(failures, 30)))

    async def _acquire(self) -> AsyncConnection | None:
        """A connection holding the outbox lock, once this instance gets it; None when stopping first."""
        standing_by = False
        while not self._stop.is_set():
            connection = await _autocommit(self._engine)
            try:
                locked = await _try_lock(connection)
                if locked:
                    for statement in (*_KEEPALIVES, _LISTEN):
                        await connection.execute(statement)
            except BaseException:
                await _discard(connection)
                raise
            if locked:
                return connection
            await connection.close()
            if not standing_by:
                standing_by = True
                log.info("outbox.relay_standby", outbox=self.name)
            await self._pause(self._poll_interval)
        return None

    async def _serve(self, connection: AsyncConnection) -> None:
        self._active = True
        self.metrics.active.labels(self.name).set(1)
        log.info("outbox.relay_active", outbox=self.name)
        listener = await _driver_connection(connection)
        next_purge = time.monotonic()
        failures = 0
        while not self._stop.is_set():
            if time.monotonic() >= next_purge:
                await self._purge(connection)
                next_purge = time.monotonic() + self._purge_interval
            self._wake.clear()
            done = await self._relay_batch(connection)
            if done.failed:
                failures += 1
                # Only stop cuts a backoff short: wake() must not hammer a broker that is down.
                await self._pause(self._retry.backoff(min(failures, 30)))
                continue
            failures = 0
            self._rounds += 1
            if done.fetched < self._batch_size:
                await self._idle(listener)

    async def _relay_batch(self, connection: AsyncConnection) -> _Round:
        rows = (await connection.execute(self._fetch)).all()
        lag = max(0.0, float(rows[0].age)) if rows else 0.0
        self.metrics.lag.labels(self.name).set(lag)
        if not rows:
            return _Round(fetched=0, published=0, failed=False)

        chains: dict[tuple[str, str], list[Row[Any]]] = {}
        for row in rows:
            chains.setdefault((row.topic, row.record_key), []).append(row)
        published: list[Row[Any]] = []
        failures: list[tuple[Row[Any], Exception]] = []
        slots = asyncio.Semaphore(self._max_in_flight)

        async def publish_in_order(chain: Sequence[Row[Any]]) -> None:
            async with slots:
                for row in chain:
                    try:
                        record = Record(
                            topic=row.topic,
                            key=row.record_key.encode("utf-8"),
                            value=row.record_value,
                            headers=decode_headers(row.headers),
                        )
                        spans = tracing.spans()
                        if spans is None:
                            await self._bus.publish_record(record)
                        else:
                            with spans.relaying(record) as traced:
                                await self._bus.publish_record(traced)
                    except Exception as exc:
                        # The rest of this key waits for the retry, so its order holds.
                        failures.append((row, exc))
                        self.metrics.publish_failures.labels(self.name, row.topic).inc()
                        return
                    published.append(row)

        await asyncio.gather(*(publish_in_order(chain) for chain in chains.values()))
        if published:
            positions = [row.position for row in published]
            await connection.execute(_MARK_PUBLISHED, {"positions": positions})
            for row in published:
                self.metrics.relayed.labels(self.name, row.topic).inc()
            log.info(
                "outbox.relayed",
                outbox=self.name,
                count=len(published),
                first_position=min(positions),
                last_position=max(positions),
                lag_seconds=round(lag, 3),
            )
        if failures:
            row, exc = min(failures, key=lambda failure: failure[0].position)
            log.warning(
                "outbox.publish_failed",
                outbox=self.name,
                failed_keys=len(failures),
                position=row.position,
                event_id=str(row.event_id),
                topic=row.topic,
                error=f"{type(exc).__name__}: {exc}",
            )
        return _Round(fetched=len(rows), published=len(published), failed=bool(failures))

    async def _purge(self, connection: AsyncConnection) -> int:
        deleted = 0
        while True:
            result = await connection.execute(self._purge_chunk)
            deleted += result.rowcount
            if result.rowcount < PURGE_CHUNK:
                break
        if deleted:
            self.metrics.purged.labels(self.name).inc(deleted)
            log.info("outbox.purged", outbox=self.name, count=deleted, retention=str(self._retention))
        return deleted

    async def _idle(self, listener: psycopg.AsyncConnection[Any]) -> None:
        """Wait for wake(), a notification, stop, or the poll interval, whichever comes first."""
        woken = asyncio.create_task(self._wake.wait())
        notified = asyncio.create_task(_next_notification(listener, self._poll_interval))
        try:
            await asyncio.wait({woken, notified}, timeout=self._poll_interval, return_when="FIRST_COMPLETED")
        finally:
            for task in (woken, notified):
                if not task.done():
                    await _cancel(task)
        error = None if notified.cancelled() else notified.exception()
        if error is not None:
            raise error  # the lock's session is gone

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)

    async def _notify(self) -> None:
        while self._notify_wanted:
            self._notify_wanted = False
            try:
                async with self._engine.connect() as connection:
                    await connection.execute(_NOTIFY, {"name": self.name})
                    await connection.commit()
            except Exception as exc:
                # A hint only: the active relay's poll picks the row up anyway.
                log.info("outbox.notify_failed", outbox=self.name, error=f"{type(exc).__name__}: {exc}")
                return

    async def _stop_notifier(self) -> None:
        notifier, self._notifier = self._notifier, None
        if notifier is not None and not notifier.done():
            await _cancel(notifier)


async def _autocommit(engine: AsyncEngine) -> AsyncConnection:
    # Autocommit: no transaction stays open while records are published (it would hold back vacuum).
    connection = await engine.connect()
    try:
        return await connection.execution_options(isolation_level="AUTOCOMMIT")
    except BaseException:
        await connection.close()
        raise


async def _try_lock(connection: AsyncConnection) -> bool:
    return bool((await connection.execute(_TRY_LOCK)).scalar_one())


async def _discard(connection: AsyncConnection) -> None:
    """Close the session for good: its lock and LISTEN go with it, and it never returns to the pool."""
    with contextlib.suppress(Exception):
        await connection.invalidate()
    with contextlib.suppress(Exception):
        await connection.close()


async def _driver_connection(connection: AsyncConnection) -> psycopg.AsyncConnection[Any]:
    raw = (await connection.get_raw_connection()).driver_connection
    if not isinstance(raw, psycopg.AsyncConnection):
        raise TypeError(f"the outbox relay needs the psycopg driver, not {type(raw).__name__}")
    return raw


async def _next_notification(listener: psycopg.AsyncConnection[Any], timeout: float) -> None:
    notifications = listener.notifies(timeout=timeout, stop_after=1)
    async with contextlib.aclosing(notifications):
        async for _ in notifications:
            pass


async def _cancel(task: asyncio.Task[Any]) -> None:
    task.cancel()
    # gather, unlike awaiting the task, still propagates a cancellation of the caller itself.
    await asyncio.gather(task, return_exceptions=True)
