"""Reading a topic from a point in time, outside any consumer group: every process keeps its own view.

A consumer group shares its position among its members and resumes where the group left off. A view that each
process must rebuild for itself whenever it starts (the sessions that ended within the last token lifetime) needs
the opposite: no shared offsets, a start chosen by time, and a moment at which the process knows it has read
everything that was already in the topic.

- Kafka (``chat_runtime.bus.kafka_follow``): assign every partition, seek by timestamp (``offsets_for_times``),
  read up to the end offsets taken at the start, then keep reading.
- In-process: the log lives in memory and drops what every group has committed, so it cannot be read back; and
  the process that starts is the only producer, so anything older than the process happened in an earlier run.
  What an earlier run published is still in the producer's outbox (decisions/0005 keeps published rows for 7
  days), so the reader takes ``history`` from there and the live records from a group of its own.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Protocol

import structlog

from chat_contracts.envelope import Envelope, Record, decode
from chat_contracts.errors import ContractError
from chat_contracts.spec import TopicSpec
from chat_runtime.bus.inprocess import InProcessBus
from chat_runtime.bus.port import Bus, Handler

log = structlog.get_logger("chat.bus.follow")

History = Callable[[TopicSpec, datetime], Awaitable[Sequence[Record]]]
"""The records of a topic written at or after a time, from wherever they are kept durably."""


class TopicFollower(Protocol):
    """Reads one topic from a point in time, without a consumer group."""

    async def follow(
        self, spec: TopicSpec, *, since: datetime, handler: Handler, caught_up: Callable[[], None]
    ) -> None:
        """Hand ``handler`` every record of ``spec`` written since ``since``, call ``caught_up`` once every record
        that was in the topic when following began has been handed over, then keep handing over new records until
        cancelled. Records may come twice, and some older than ``since`` may come too; records that do not decode
        are logged and skipped (the topic's consumer groups dead-letter them)."""


def decoded(record: Record, spec: TopicSpec, *, where: str) -> Envelope | None:
    """The envelope in ``record``, or None (logged) when it does not decode."""
    try:
        return decode(record, spec)
    except ContractError as exc:
        log.warning("bus.follow_skipped", topic=spec.name, where=where, reason=exc.reason)
        return None


class InProcessFollower:
    """Follows a topic of the in-process bus: ``history`` for what came before, a group of its own for the rest.

    Without ``history`` the past is whatever the in-memory log still holds, which is only right for a process
    that keeps no state between runs (tests). One follower follows a topic once at a time: a follow that starts
    again after a failure rejoins the same group, so the log keeps no records for abandoned groups and what was
    written while it was away is still delivered.
    """

    def __init__(self, bus: InProcessBus, *, history: History | None = None) -> None:
        self._bus = bus
        self._history = history
        self._group = f"follow-{uuid.uuid4().hex}"

    async def follow(
        self, spec: TopicSpec, *, since: datetime, handler: Handler, caught_up: Callable[[], None]
    ) -> None:
        # Join first, at the log's end, then read the past: a record written in between is seen twice rather
        # than not at all.
        subscription = await self._bus.subscribe(spec, group=self._group, handler=handler, start="latest")
        try:
            past = list(self._bus.broker.records(spec.name))
            if self._history is not None:
                past.extend(await self._history(spec, since))
            for record in past:
                envelope = decoded(record, spec, where="history")
                if envelope is not None:
                    await handler(envelope)
            caught_up()
            await asyncio.Event().wait()  # the subscription delivers from here on, until cancelled
        finally:
            await subscription.stop()


def follower_for(bus: Bus, *, history: History | None = None) -> TopicFollower:
    """The follower for the topics ``bus`` carries; ``history`` is the in-process bus's past (see above)."""
    if isinstance(bus, InProcessBus):
        return InProcessFollower(bus, history=history)
    from chat_runtime.bus.kafka import KafkaBus
    from chat_runtime.bus.kafka_follow import KafkaFollower

    if isinstance(bus, KafkaBus):
        return KafkaFollower(bus.config)
    raise TypeError(f"no follower for {type(bus).__name__}")
