"""The in-process bus for the all-in-one mode.

It keeps the semantics callers rely on from Kafka: a partitioned log per topic (same key → same partition as
Kafka's default partitioner), consumer groups with committed offsets and rebalancing, at-least-once delivery
with redelivery of uncommitted records after a member leaves, and batches of a partition's ready records for
batch handlers (each partition's worker waits for a fuller batch when its subscription's ``Pace`` asks).
Records every subscribed group has committed are dropped from memory.

Every record is encoded as on Kafka when it is published (so a payload that cannot be serialized fails here
too, and dead letters and inspection see the same bytes). Consumers get the published envelope itself, which is
immutable, instead of decoding those bytes again: nothing crosses a process boundary here, and decoding was
the larger half of a hop's cost (``roundtrip=False``, what ``chat up`` composes). The default, ``roundtrip=True``,
decodes every record from its bytes as Kafka consumers do; the contract suites and the unit-test harnesses run
that way, so a contract that does not survive its own serialization still fails a test (decisions/0011).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import structlog

from chat_contracts.base import Contract
from chat_contracts.envelope import Envelope, Record, encode_later
from chat_contracts.spec import DLQ_SUFFIX, TopicSpec
from chat_contracts.topics import DLQ_PARTITIONS, TOPICS
from chat_runtime import tracing
from chat_runtime.bus.metrics import BusMetrics, LagReading
from chat_runtime.bus.partitioner import partition_for
from chat_runtime.bus.port import BatchHandler, Handler, NotCaughtUp, Outgoing, Pace, RetryPolicy, Start
from chat_runtime.bus.processing import Delivery, RecordProcessor
from chat_runtime.logging import current_correlation_id

log = structlog.get_logger("chat.bus.inprocess")

DEFAULT_PARTITIONS_FOR_UNKNOWN = 1
MAX_UNCONSUMED_PER_PARTITION = 200_000
MAX_BATCH = 500
_BROADCASTS = itertools.count(1)
"""Records a batch handler gets at most at once."""


class _Partition:
    def __init__(self) -> None:
        self.base = 0
        self.records: list[Record] = []
        self.envelopes: list[Envelope | None] = []
        """The published envelope of each record (None for records published as bytes)."""
        self.changed = asyncio.Condition()

    @property
    def end(self) -> int:
        return self.base + len(self.records)

    def read(self, offset: int) -> Record:
        return self.records[offset - self.base]

    def deliveries(self, offset: int, limit: int, *, decoded: bool) -> list[Delivery]:
        start = offset - self.base
        stop = min(len(self.records), start + limit)
        if decoded:
            return [Delivery(self.records[i], self.base + i, self.envelopes[i]) for i in range(start, stop)]
        return [Delivery(self.records[i], self.base + i) for i in range(start, stop)]

    def trim_below(self, offset: int) -> None:
        drop = min(max(0, offset - self.base), len(self.records))
        if drop:
            del self.records[:drop]
            del self.envelopes[:drop]
            self.base += drop


@dataclass
class _Member:
    member_id: int
    processor: RecordProcessor


@dataclass
class _StopFlag:
    requested: bool = False


@dataclass
class _Worker:
    partition: int
    member_id: int
    task: asyncio.Task[None]
    flag: _StopFlag
    head: int
    """The partition's end when it was assigned to the member."""


@dataclass
class _Group:
    name: str
    topic: str
    committed: list[int]
    members: dict[int, _Member] = field(default_factory=dict)
    workers: dict[int, _Worker] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class InProcessBroker:
    """The shared log of one process; every InProcessBus of the process talks to the same broker."""

    def __init__(
        self, *, max_unconsumed_per_partition: int = MAX_UNCONSUMED_PER_PARTITION, roundtrip: bool = True
    ) -> None:
        self._topics: dict[str, list[_Partition]] = {}
        self._groups: dict[tuple[str, str], _Group] = {}
        self._groups_of: dict[str, list[_Group]] = {}
        """Each topic's groups (``_trim`` reads them at every append and every handled batch)."""
        self._member_ids = itertools.count(1)
        self._max_unconsumed = max_unconsumed_per_partition
        self.roundtrip = roundtrip
        """Decode every record from its bytes, as a Kafka consumer does (tests), instead of handing over the
        published envelope."""

    def ensure_topic(self, name: str, partitions: int) -> list[_Partition]:
        """Create the topic with ``partitions`` partitions unless it exists."""
        if name not in self._topics:
            self._topics[name] = [_Partition() for _ in range(partitions)]
        return self._topics[name]

    async def append(
        self,
        record: Record,
        *,
        partitions: int = DEFAULT_PARTITIONS_FOR_UNKNOWN,
        envelope: Envelope | None = None,
    ) -> tuple[int, int]:
        """Append a record (with the envelope it encodes, when the publisher has it); returns (partition, offset)."""
        placed = await self.append_all([(record, envelope)], partitions=partitions)
        return placed[0]

    async def append_all(
        self, items: list[tuple[Record, Envelope | None]], *, partitions: int = DEFAULT_PARTITIONS_FOR_UNKNOWN
    ) -> list[tuple[int, int]]:
        """Append records in order (all of one topic's partition count); waking each partition's readers once."""
        placed: list[tuple[int, int]] = []
        touched: dict[tuple[str, int], _Partition] = {}
        for record, envelope in items:
            parts = self.ensure_topic(record.topic, partitions)
            index = partition_for(record.key, len(parts)) if record.key else 0
            part = parts[index]
            part.records.append(record)
            part.envelopes.append(envelope)
            placed.append((index, part.end - 1))
            touched[(record.topic, index)] = part
        for (topic, index), part in touched.items():
            async with part.changed:
                part.changed.notify_all()
            self._trim(topic, index)
        return placed

    def records(self, topic: str) -> list[Record]:
        """Every retained record of ``topic`` in partition then offset order (inspection and tests)."""
        return [r for part in self._topics.get(topic, []) for r in part.records]

    def committed(self, group: str, topic: str) -> list[int]:
        """Committed offsets of ``group`` on ``topic`` by partition."""
        found = self._groups.get((group, topic))
        return list(found.committed) if found else []

    def end_offsets(self, topic: str) -> list[int]:
        """The next offset of each partition of ``topic``."""
        return [part.end for part in self._topics.get(topic, [])]

    def _trim(self, topic: str, index: int) -> None:
        part = self._topics[topic][index]
        groups = self._groups_of.get(topic)
        if groups:
            part.trim_below(min(g.committed[index] for g in groups))
        elif len(part.records) > self._max_unconsumed:
            part.trim_below(part.end - self._max_unconsumed)

    async def join(self, spec: TopicSpec, group: str, processor: RecordProcessor, start: Start = "earliest") -> int:
        parts = self.ensure_topic(spec.name, spec.partitions)
        state = self._groups.get((group, spec.name))
        if state is None:
            offsets = [part.end if start == "latest" else part.base for part in parts]
            state = _Group(name=group, topic=spec.name, committed=offsets)
            self._groups[(group, spec.name)] = state
            self._groups_of.setdefault(spec.name, []).append(state)
        member_id = next(self._member_ids)
        async with state.lock:
            state.members[member_id] = _Member(member_id, processor)
            await self._rebalance(state)
        return member_id

    async def leave(self, group: str, topic: str, member_id: int, *, crash: bool) -> None:
        state = self._groups[(group, topic)]
        async with state.lock:
            if member_id not in state.members:
                return
            if crash:
                for worker in [w for w in state.workers.values() if w.member_id == member_id]:
                    worker.task.cancel()
                    await asyncio.gather(worker.task, return_exceptions=True)
                    del state.workers[worker.partition]
            del state.members[member_id]
            await self._rebalance(state)

    async def _rebalance(self, state: _Group) -> None:
        """Round-robin assignment; a moved partition finishes its record before the next owner starts."""
        parts = self._topics[state.topic]
        member_ids = sorted(state.members)
        wanted = {p: member_ids[p % len(member_ids)] for p in range(len(parts))} if member_ids else {}
        for index, worker in list(state.workers.items()):
            if wanted.get(index) != worker.member_id:
                await self._stop_worker(parts[index], worker)
                del state.workers[index]
        for index, member_id in wanted.items():
            if index not in state.workers:
                flag = _StopFlag()
                task = asyncio.create_task(
                    self._work(state, index, state.members[member_id].processor, flag),
                    name=f"inprocess:{state.name}:{state.topic}[{index}]",
                )
                state.workers[index] = _Worker(index, member_id, task, flag, head=parts[index].end)
        log.debug("bus.rebalanced", group=state.name, topic=state.topic, assignment=wanted)

    async def _stop_worker(self, part: _Partition, worker: _Worker) -> None:
        worker.flag.requested = True
        async with part.changed:
            part.changed.notify_all()
        await asyncio.gather(worker.task, return_exceptions=True)

    async def _work(self, state: _Group, index: int, processor: RecordProcessor, flag: _StopFlag) -> None:
        part = self._topics[state.topic][index]
        position = max(state.committed[index], part.base)
        while not flag.requested:
            if position >= part.end:

                def readable(at: int = position) -> bool:
                    return flag.requested or at < part.end

                async with part.changed:
                    await part.changed.wait_for(readable)
                continue
            if not await _linger(part, position, processor, flag):
                break
            limit = MAX_BATCH if processor.batch is not None else 1
            deliveries = part.deliveries(position, limit, decoded=not self.roundtrip)
            done = await processor.process_many(deliveries, partition=index, stopping=lambda: flag.requested)
            position += done
            state.committed[index] = position
            self._trim(state.topic, index)
            if done < len(deliveries):
                break

    def behind(self, group: str, topic: str, member_id: int) -> dict[int, int] | None:
        """How many records of each partition assigned to the member it has yet to handle to reach the head it saw
        at assignment (only those behind); None when it is not a member."""
        state = self._groups.get((group, topic))
        if state is None or member_id not in state.members:
            return None
        return {
            index: worker.head - state.committed[index]
            for index, worker in state.workers.items()
            if worker.member_id == member_id and state.committed[index] < worker.head
        }

    def lag(self, group: str, topic: str, member_id: int) -> dict[int, int]:
        """Records of each partition assigned to the member that its group has yet to handle (the partition's end
        now minus the group's committed offset); empty when it holds none."""
        state = self._groups.get((group, topic))
        if state is None:
            return {}
        parts = self._topics[topic]
        return {
            index: parts[index].end - state.committed[index]
            for index, worker in state.workers.items()
            if worker.member_id == member_id
        }

    async def stop_all(self) -> None:
        """Stop every worker gracefully (tests and shutdown)."""
        for state in self._groups.values():
            async with state.lock:
                for index, worker in list(state.workers.items()):
                    await self._stop_worker(self._topics[state.topic][index], worker)
                    del state.workers[index]
                state.members.clear()


async def _linger(part: _Partition, position: int, processor: RecordProcessor, flag: _StopFlag) -> bool:
    """Wait as the processor's pace asks before taking the partition's ready records: until they fill a batch,
    the store would take a write, or a stop is requested. False when a stop was requested."""
    wait = processor.linger(part.end - position)
    if wait <= 0 or processor.pace is None:
        return True
    fill = processor.pace.fill

    def filled() -> bool:
        return flag.requested or part.end - position >= fill

    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(wait), part.changed:
            await part.changed.wait_for(filled)
    return not flag.requested


class InProcessSubscription:
    """A group member on the in-process broker."""

    def __init__(
        self, broker: InProcessBroker, spec: TopicSpec, group: str, member_id: int, *, named: str | None = None
    ) -> None:
        self._broker = broker
        self._spec = spec
        self._group = group
        self._member_id = member_id
        self._closed = False
        self.named = named or group
        """The group name the subscriber gave (a broadcast subscriber's group on the broker is its own)."""

    @property
    def group(self) -> str:
        return self._group

    @property
    def topic(self) -> str:
        return self._spec.name

    async def stop(self) -> None:
        if not self._closed:
            self._closed = True
            await self._broker.leave(self._group, self._spec.name, self._member_id, crash=False)

    async def abort(self) -> None:
        if not self._closed:
            self._closed = True
            await self._broker.leave(self._group, self._spec.name, self._member_id, crash=True)

    def lag(self) -> dict[int, int]:
        """Records behind the head, per partition this member holds."""
        return {} if self._closed else self._broker.lag(self._group, self._spec.name, self._member_id)

    async def check_caught_up(self) -> None:
        behind = None if self._closed else self._broker.behind(self._group, self._spec.name, self._member_id)
        if behind is None:
            raise NotCaughtUp(f"{self._group} is not subscribed to {self._spec.name}")
        if behind:
            raise NotCaughtUp(f"{self._group} on {self._spec.name}: records to handle by partition {behind}")


class InProcessBus:
    """Bus adapter over an InProcessBroker."""

    def __init__(
        self,
        broker: InProcessBroker,
        *,
        metrics: BusMetrics | None = None,
        retry: RetryPolicy | None = None,
        topics: Mapping[str, TopicSpec] = TOPICS,
    ) -> None:
        self.broker = broker
        self.topics = topics
        self.metrics = metrics or BusMetrics()
        self.retry = retry or RetryPolicy()
        self._subscriptions: list[InProcessSubscription] = []
        self.metrics.watch_lag(self._lag)

    def _lag(self) -> Iterator[LagReading]:
        for subscription in list(self._subscriptions):
            for partition, lag in subscription.lag().items():
                yield subscription.named, subscription.topic, partition, lag

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        for subscription in reversed(self._subscriptions):
            await subscription.stop()
        self._subscriptions.clear()

    async def publish(
        self,
        spec: TopicSpec,
        data: Contract,
        *,
        key: str | None = None,
        correlation_id: str | None = None,
        source: str,
    ) -> Envelope:
        envelope = Envelope.wrap(
            data,
            source=source,
            key=key or spec.key_of(data),
            correlation_id=correlation_id or current_correlation_id(),
        )
        spans = tracing.spans()
        if spans is None:
            await self.broker.append(
                encode_later(envelope, topic=spec.name), partitions=spec.partitions, envelope=envelope
            )
        else:
            with spans.publishing([spec.name], [envelope.correlation_id]) as trace:
                record = encode_later(envelope, topic=spec.name, trace=trace)
                await self.broker.append(record, partitions=spec.partitions, envelope=envelope)
        self.metrics.published_to(spec.name).inc()
        return envelope

    async def publish_all(self, messages: Sequence[Outgoing], *, source: str) -> list[Envelope]:
        envelopes = [
            Envelope.wrap(
                message.data,
                source=source,
                key=message.key or message.spec.key_of(message.data),
                correlation_id=message.correlation_id or current_correlation_id(),
            )
            for message in messages
        ]
        spans = tracing.spans()
        if spans is None:
            await self._append_all(messages, envelopes, trace=())
        else:
            topics = [message.spec.name for message in messages]
            with spans.publishing(topics, [envelope.correlation_id for envelope in envelopes]) as trace:
                await self._append_all(messages, envelopes, trace=trace)
        return envelopes

    async def _append_all(
        self, messages: Sequence[Outgoing], envelopes: Sequence[Envelope], *, trace: tuple[tuple[str, bytes], ...]
    ) -> None:
        by_topic: dict[str, tuple[TopicSpec, list[tuple[Record, Envelope | None]]]] = {}
        for message, envelope in zip(messages, envelopes, strict=True):
            entry = by_topic.setdefault(message.spec.name, (message.spec, []))
            entry[1].append((encode_later(envelope, topic=message.spec.name, trace=trace), envelope))
        for spec, items in by_topic.values():
            await self.broker.append_all(items, partitions=spec.partitions)
            self.metrics.published_to(spec.name).inc(len(items))

    async def publish_record(self, record: Record) -> None:
        """Append an already-encoded record (outbox relays, dead letters)."""
        await self.broker.append(record, partitions=self._partitions_of(record.topic))

    def _partitions_of(self, topic: str) -> int:
        spec = self.topics.get(topic)
        if spec is not None:
            return spec.partitions
        return DLQ_PARTITIONS if topic.endswith(DLQ_SUFFIX) else DEFAULT_PARTITIONS_FOR_UNKNOWN

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
    ) -> InProcessSubscription:
        processor = RecordProcessor(
            spec=spec,
            group=group,
            handler=handler,
            batch=batch,
            pace=pace,
            policy=self.retry,
            metrics=self.metrics,
            dead_letter=self.publish_record,
        )
        # A broadcast subscriber is alone in a group of its own, so it reads every partition; its committed offsets
        # only let the log drop what every reader has seen.
        joined = f"{group}#broadcast-{next(_BROADCASTS)}" if broadcast else group
        member_id = await self.broker.join(spec, joined, processor, start)
        subscription = InProcessSubscription(self.broker, spec, joined, member_id, named=group)
        self._subscriptions.append(subscription)
        return subscription
