"""What callers of the bus rely on, whichever adapter carries the records.

- ``publish`` returns once the record is durably accepted (Kafka: acks=all on an idempotent producer).
- Records with the same key keep their order for every consumer group.
- A member's partitions are handled independently: a record still in its handler holds up only its own partition.
- Every consumer group sees every record; within a group each record goes to one member.
- At least once: a record's offset is committed only after its handler returned (or after it was
  dead-lettered), so a crash or rebalance re-delivers it. Handlers must therefore be idempotent.
- A record that does not decode into its topic's contracts, or whose handler raises ``PoisonRecord`` or keeps
  failing for ``RetryPolicy.max_attempts``, is written to ``<topic>.dlq`` with the reason, and the consumer
  moves on. ``RetryableError`` (a dependency is down) is retried with capped backoff without limit, because
  a valid record must not be dead-lettered because of an outage.
- Batches: a subscription may also give a ``BatchHandler``. It then receives, in offset order, the records of one
  partition that are ready (up to the adapter's batch size), decoded; undecodable ones go to the dead-letter
  topic alone. When the batch handler raises, the same records are handed to ``handler`` one by one, with the
  retries and dead letters above, so a poison record is isolated and its neighbours are neither lost nor
  applied twice (handlers are idempotent). The offsets are committed once the whole batch is done.
- Paced batches: a batch subscription may also give a ``Pace``, its store's hint that a write now would wait
  anyway. Before taking fewer ready records than ``Pace.fill``, the consumer waits until that many are ready or
  the store would take a write (at most ``Pace.longest``, and not once a stop is requested), then takes every
  record ready: the records arriving meanwhile share the batch, and the write, instead of the next one.
- ``publish_all`` publishes several records and returns once every one is durable; records with the same key
  keep the order they were given in.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from chat_contracts.base import Contract
from chat_contracts.envelope import Envelope, Record
from chat_contracts.spec import TopicSpec
from chat_contracts.topics import DLQ_HEADER_OFFSET, DLQ_HEADER_PARTITION, DLQ_HEADER_REASON, DLQ_HEADER_TOPIC

Handler = Callable[[Envelope], Awaitable[None]]
BatchHandler = Callable[[Sequence[Envelope]], Awaitable[None]]
Start = Literal["earliest", "latest"]

DLQ_REASON = DLQ_HEADER_REASON
DLQ_SOURCE_TOPIC = DLQ_HEADER_TOPIC
DLQ_PARTITION = DLQ_HEADER_PARTITION
DLQ_OFFSET = DLQ_HEADER_OFFSET
DLQ_GROUP = "dlq.group"
DLQ_ATTEMPTS = "dlq.attempts"
DLQ_AT = "dlq.at"
MAX_LINGER = 0.05
"""The longest a paced consumer waits for its batch to fill (``Pace``), so a stop waits no longer for it either."""


class PoisonRecord(Exception):
    """Raised by a handler for a record that can never succeed; it goes straight to the dead-letter topic."""


class RetryableError(Exception):
    """Raised by a handler when a dependency is unavailable; the record is retried until it succeeds."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Backoff for failing handlers: exponential with full jitter, capped."""

    max_attempts: int = 5
    initial_backoff: float = 0.05
    max_backoff: float = 5.0

    def backoff(self, attempt: int) -> float:
        """Seconds to wait before attempt ``attempt + 1`` (attempt counts from 1)."""
        ceiling = min(self.max_backoff, self.initial_backoff * (2 ** (attempt - 1)))
        return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not security


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One record for ``publish_all``: the payload, its topic, and optionally its key and correlation id."""

    spec: TopicSpec
    data: Contract
    correlation_id: str | None = None
    key: str | None = None


@dataclass(frozen=True, slots=True)
class Pace:
    """A batch handler's hint that its store takes writes at a pace (the messages store's paced inserts).

    With a single busy partition the consumer is the store's only writer: a batch taken the moment the previous
    one was written holds only what arrived during that write, and then waits in the store for the rest of the
    store's interval while nothing can join it. A consumer given a pace waits before taking a small batch."""

    pause: Callable[[], float]
    """Seconds until the store would take the next write; 0 (or less) when it would take one now."""
    fill: int
    """Ready records that make a batch worth taking at once (the store's own batch)."""
    longest: float = MAX_LINGER
    """The longest wait, whatever ``pause`` says."""

    def linger(self, ready: int) -> float:
        """How long to wait for more before taking ``ready`` records: 0 when they fill a batch or the store would
        take a write now."""
        if ready >= self.fill:
            return 0.0
        return min(max(self.pause(), 0.0), self.longest)


class Subscription(Protocol):
    """One consumer-group member's subscription to a topic."""

    @property
    def group(self) -> str: ...

    @property
    def topic(self) -> str: ...

    async def stop(self) -> None:
        """Finish and commit in-flight work, then leave the group."""

    async def abort(self) -> None:
        """Leave without committing in-flight work, as a crash would (tests and chaos only)."""

    async def check_caught_up(self) -> None:
        """Return when this member holds its assignment (it is subscribed and the group has given it its
        partitions, possibly none) and has handled every record its partitions held when they were assigned to it;
        raise ``NotCaughtUp`` saying what is missing otherwise. A readiness check."""


class NotCaughtUp(Exception):
    """A subscription does not hold its assignment yet, or has not handled what was there when it got it."""


class Bus(Protocol):
    """The port every service talks to."""

    async def start(self) -> None: ...

    async def stop(self) -> None:
        """Drain subscriptions (finish and commit in-flight records), flush the producer."""

    async def publish(
        self,
        spec: TopicSpec,
        data: Contract,
        *,
        key: str | None = None,
        correlation_id: str | None = None,
        source: str,
    ) -> Envelope:
        """Wrap ``data`` in an envelope keyed by the topic's key field and publish it durably."""

    async def publish_all(self, messages: Sequence[Outgoing], *, source: str) -> list[Envelope]:
        """Publish every message (each wrapped as ``publish`` would) and return once all are durable."""

    async def publish_record(self, record: Record) -> None:
        """Publish an already-encoded record durably (outbox relays, dead letters)."""

    async def subscribe(
        self,
        spec: TopicSpec,
        *,
        group: str,
        handler: Handler,
        start: Start = "earliest",
        batch: BatchHandler | None = None,
        broadcast: bool = False,
        pace: Pace | None = None,
    ) -> Subscription:
        """Join ``group`` on ``spec``'s topic and start handing records to ``handler`` (or, when given, to
        ``batch`` a partition's ready records at a time, waiting for more as ``pace`` asks). A group with no
        committed offsets starts at the oldest retained record, or with ``start="latest"`` at the next new one
        (fan-out groups that only care about what happens from now on). ``broadcast``: this subscriber alone reads
        every partition and commits nothing (a gateway's fan-out; ``group`` then only names it)."""


async def run_with_retries(
    handler: Handler,
    envelope: Envelope,
    policy: RetryPolicy,
    *,
    on_retry: Callable[[int, BaseException], None],
    stopping: Callable[[], bool] = lambda: False,
) -> tuple[bool, str | None, int]:
    """Run ``handler`` until it succeeds or must be dead-lettered.

    Returns (succeeded, dead-letter reason, attempts). Stops retrying, returning (False, None, n), when
    ``stopping()`` becomes true so a shutting-down consumer leaves the record uncommitted for redelivery.
    """
    attempt = 0
    while True:
        attempt += 1
        try:
            await handler(envelope)
        except PoisonRecord as exc:
            return False, f"poison: {exc}", attempt
        except RetryableError as exc:
            on_retry(attempt, exc)
            if stopping():
                return False, None, attempt
            await asyncio.sleep(policy.backoff(min(attempt, 30)))
            continue
        except Exception as exc:
            if attempt >= policy.max_attempts:
                return False, f"handler_failed: {type(exc).__name__}: {exc}", attempt
            on_retry(attempt, exc)
            if stopping():
                return False, None, attempt
            await asyncio.sleep(policy.backoff(attempt))
            continue
        return True, None, attempt
