"""Turning one consumed record into handler calls, retries, dead letters, metrics and (when tracing is on) a
consumer span (both adapters)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog
from structlog.contextvars import bind_contextvars, reset_contextvars

from chat_contracts.envelope import Envelope, Record, decode
from chat_contracts.errors import ContractError
from chat_contracts.spec import TopicSpec
from chat_runtime import tracing
from chat_runtime.bus.metrics import BusMetrics
from chat_runtime.bus.port import (
    DLQ_AT,
    DLQ_ATTEMPTS,
    DLQ_GROUP,
    DLQ_OFFSET,
    DLQ_PARTITION,
    DLQ_REASON,
    DLQ_SOURCE_TOPIC,
    BatchHandler,
    Handler,
    Pace,
    RetryPolicy,
    run_with_retries,
)
from chat_runtime.logging import CORRELATION_KEY

log = structlog.get_logger("chat.bus")

MAX_REASON_LENGTH = 2000


def dead_letter_record(
    record: Record, spec: TopicSpec, *, reason: str, group: str, partition: int, offset: int, attempts: int
) -> Record:
    """The record as consumed (key, value and headers untouched) with the reason and origin added."""
    extra = (
        (DLQ_REASON, reason[:MAX_REASON_LENGTH].encode()),
        (DLQ_SOURCE_TOPIC, record.topic.encode()),
        (DLQ_PARTITION, str(partition).encode()),
        (DLQ_OFFSET, str(offset).encode()),
        (DLQ_GROUP, group.encode()),
        (DLQ_ATTEMPTS, str(attempts).encode()),
        (DLQ_AT, datetime.now(UTC).isoformat().encode()),
    )
    return Record(topic=spec.dlq, key=record.key, value=record.value, headers=record.headers + extra)


@dataclass(frozen=True, slots=True)
class Delivery:
    """A consumed record and its offset; ``envelope`` when the adapter already has it decoded (in-process)."""

    record: Record
    offset: int
    envelope: Envelope | None = None


class RecordProcessor:
    """Decode, dispatch with retries, dead-letter; says whether the record may be committed."""

    def __init__(
        self,
        *,
        spec: TopicSpec,
        group: str,
        handler: Handler,
        policy: RetryPolicy,
        metrics: BusMetrics,
        dead_letter: Callable[[Record], Awaitable[None]],
        batch: BatchHandler | None = None,
        pace: Pace | None = None,
    ) -> None:
        if pace is not None and batch is None:
            raise ValueError(f"{group} on {spec.name}: a pace is a batch handler's hint, and there is no batch handler")
        self.spec = spec
        self.group = group
        self.handler = handler
        self.batch = batch
        self.pace = pace
        self.policy = policy
        self.metrics = metrics
        self._dead_letter = dead_letter
        # Label lookups take a lock and a dict walk each: done once here, not for every record.
        self._handler_seconds = metrics.handler_seconds.labels(spec.name, group)
        self._consumed_ok = metrics.consumed.labels(spec.name, group, "ok")

    def linger(self, ready: int) -> float:
        """Seconds to wait for more records before taking ``ready`` of them (the pace's hint; 0 without one)."""
        return 0.0 if self.pace is None else self.pace.linger(ready)

    async def process_many(
        self, deliveries: Sequence[Delivery], *, partition: int, stopping: Callable[[], bool]
    ) -> int:
        """Handle consecutive records of one partition; returns how many of them, from the first, are done with
        (handled or dead-lettered), so their offsets may be committed.

        With a batch handler, every record that decodes goes to it at once (the undecodable ones to the
        dead-letter topic); if it raises, the same records go through ``process`` one by one."""
        if self.batch is None or len(deliveries) == 1:
            return await self._one_by_one(deliveries, partition=partition, stopping=stopping)
        decoded: list[tuple[Delivery, Envelope]] = []
        for delivery in deliveries:
            if delivery.envelope is not None:
                decoded.append((delivery, delivery.envelope))
                continue
            try:
                decoded.append((delivery, decode(delivery.record, self.spec)))
            except ContractError as exc:
                await self._send_to_dlq(
                    delivery.record, exc.reason, partition=partition, offset=delivery.offset, attempts=0
                )
        if not decoded:
            return len(deliveries)
        started = time.perf_counter()
        try:
            spans = tracing.spans()
            if spans is None:
                await self.batch([envelope for _, envelope in decoded])
            else:
                with spans.processing_batch([d.record for d, _ in decoded], group=self.group, partition=partition):
                    await self.batch([envelope for _, envelope in decoded])
        except Exception as exc:
            # One of them may be poison, or a dependency failed: every record again on its own, with retries and
            # dead letters. The handlers are idempotent, so what the batch already applied is not applied twice.
            log.warning("bus.batch_failed", records=len(decoded), error=f"{type(exc).__name__}: {exc}")
            self.metrics.retries.labels(self.spec.name, self.group).inc()
            singles = [Delivery(d.record, d.offset, envelope) for d, envelope in decoded]
            done = await self._one_by_one(singles, partition=partition, stopping=stopping)
            if done < len(singles):
                return deliveries.index(decoded[done][0])
            return len(deliveries)
        self._handler_seconds.observe(time.perf_counter() - started)
        self._consumed_ok.inc(len(decoded))
        return len(deliveries)

    async def _one_by_one(self, deliveries: Sequence[Delivery], *, partition: int, stopping: Callable[[], bool]) -> int:
        spans = tracing.spans()
        for done, delivery in enumerate(deliveries):
            if spans is None:
                handled = await self.process(
                    delivery.record,
                    partition=partition,
                    offset=delivery.offset,
                    stopping=stopping,
                    envelope=delivery.envelope,
                )
            else:
                with spans.processing(delivery.record, group=self.group, partition=partition, offset=delivery.offset):
                    handled = await self.process(
                        delivery.record,
                        partition=partition,
                        offset=delivery.offset,
                        stopping=stopping,
                        envelope=delivery.envelope,
                    )
            if not handled:
                return done
        return len(deliveries)

    async def process(
        self,
        record: Record,
        *,
        partition: int,
        offset: int,
        stopping: Callable[[], bool],
        envelope: Envelope | None = None,
    ) -> bool:
        """True when the record is done with (handled or dead-lettered) and its offset may be committed."""
        context = {
            "topic": record.topic,
            "partition": partition,
            "offset": offset,
            "group": self.group,
            # The envelope's own when it came decoded (the in-process bus): its record's headers may not be made yet.
            CORRELATION_KEY: (envelope.correlation_id if envelope is not None else record.header("correlation_id"))
            or "-",
        }
        # bind/reset rather than two nested context managers: this runs for every record
        bound = dict(bind_contextvars(**context))
        try:
            if envelope is None:
                try:
                    envelope = decode(record, self.spec)
                except ContractError as exc:
                    await self._send_to_dlq(record, exc.reason, partition=partition, offset=offset, attempts=0)
                    return True
            bound.update(bind_contextvars(event_type=envelope.type))
            started = time.perf_counter()
            ok, reason, attempts = await run_with_retries(
                self.handler, envelope, self.policy, on_retry=self._on_retry, stopping=stopping
            )
            self._handler_seconds.observe(time.perf_counter() - started)
            if ok:
                self._consumed_ok.inc()
                return True
            if reason is None:
                log.info("bus.record_left_for_redelivery", attempts=attempts)
                return False
            await self._send_to_dlq(record, reason, partition=partition, offset=offset, attempts=attempts)
            return True
        finally:
            reset_contextvars(**bound)

    def _on_retry(self, attempt: int, exc: BaseException) -> None:
        self.metrics.retries.labels(self.spec.name, self.group).inc()
        log.warning("bus.handler_retry", attempt=attempt, error=f"{type(exc).__name__}: {exc}")

    async def _send_to_dlq(self, record: Record, reason: str, *, partition: int, offset: int, attempts: int) -> None:
        dead = dead_letter_record(
            record,
            self.spec,
            reason=reason,
            group=self.group,
            partition=partition,
            offset=offset,
            attempts=attempts,
        )
        await self._dead_letter(dead)
        kind = reason.split(":", 1)[0]
        self.metrics.dead_lettered.labels(record.topic, self.group, kind).inc()
        self.metrics.consumed.labels(record.topic, self.group, "dead_lettered").inc()
        log.error("bus.dead_lettered", reason=reason, attempts=attempts, dlq=self.spec.dlq)
