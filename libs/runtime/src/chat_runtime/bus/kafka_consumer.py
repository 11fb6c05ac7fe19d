"""Kafka consumers of the bus (aiokafka): one AIOKafkaConsumer per subscription, auto-commit off.

A group member reads each partition it holds in a lane of its own: the lane takes what its partition has ready
(all of it at once to a batch handler), handles it in order and queues its offset for a commit, while the other
lanes go on; one commit at a time carries every lane's offsets, at most one per ``commit_interval_ms``. A
rebalance and a stop wait for each lane's batch in flight to finish and commit its offsets at once before
partitions move, so a clean hand-over re-delivers nothing. A broadcast subscription (every instance reads
everything: the gateways' fan-out) assigns itself every partition instead of joining a group, so instances never
rebalance each other, handles each poll's partitions concurrently and commits nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Sequence
from typing import Any

import structlog

from chat_contracts.envelope import Record, headers_from
from chat_contracts.spec import TopicSpec
from chat_runtime.bus.aiokafka_internals import stop_leaving_groups, wait_for_topic_metadata
from chat_runtime.bus.kafka_setup import KafkaConfig, consumer_options
from chat_runtime.bus.port import NotCaughtUp, Start
from chat_runtime.bus.processing import Delivery, RecordProcessor
from chat_runtime.extras import missing_extra
from chat_runtime.together import together

try:
    from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
    from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
except ImportError as missing:
    raise missing_extra("kafka", __name__, missing) from missing

log = structlog.get_logger("chat.bus.kafka")

Batches = dict[TopicPartition, list[Any]]
"""What one poll took: each partition's consumed records, in offset order."""
LANE_RETRY_SECONDS = 1.0
"""How long a lane waits before it reads a batch again whose handling failed outside its handlers."""


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, subscription: KafkaSubscription) -> None:
        self._subscription = subscription

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        self._subscription.assignment = None
        if revoked and not self._subscription.aborted:
            await self._subscription.hand_over()
            log.info("bus.partitions_revoked", partitions=sorted(tp.partition for tp in revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self._subscription.assigned(frozenset(assigned))
        log.info("bus.partitions_assigned", partitions=sorted(tp.partition for tp in assigned))


class _Lane:
    """One held partition's reader: its task, and the lock it holds while it handles a batch (a rebalance waits
    for it)."""

    __slots__ = ("lock", "task")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.task: asyncio.Task[None] | None = None


class KafkaSubscription:
    """One consumer-group member (or broadcast reader): a consumer, the member's own task, and a lane per held
    partition (a broadcast reader's task reads and handles every partition itself)."""

    def __init__(
        self,
        *,
        config: KafkaConfig,
        spec: TopicSpec,
        group: str,
        processor: RecordProcessor,
        start: Start = "earliest",
        broadcast: bool = False,
    ) -> None:
        self._config = config
        self._spec = spec
        self._group = group
        self._processor = processor
        self._start = start
        self.broadcast = broadcast
        """Read every partition by assignment, commit nothing (a fan-out reader of one instance)."""
        self._consumer = AIOKafkaConsumer(
            **consumer_options(config, topic=spec.name, group=group, start=start, broadcast=broadcast)
        )
        if broadcast and processor.pace is not None:
            raise ValueError(f"{group} on {spec.name}: a broadcast reader takes what each poll gives; it has no pace")
        self.aborted = False
        self.assignment: frozenset[TopicPartition] | None = None
        """The partitions this member holds; None until the group gives it some (or none), and during a
        rebalance."""
        self.first_assignment = asyncio.Event()
        """Set once the group has given this member its first assignment."""
        self._heads: dict[TopicPartition, int] = {}
        """Each held partition's end offset, read once after it was assigned: the head to catch up to."""
        self._handled: dict[TopicPartition, int] = {}
        """The next offset to handle of each partition: its position when assigned, then past what was handled."""
        self._ends: dict[TopicPartition, int] = {}
        """Each partition's end offset as last read for the lag metric."""
        self._reading_ends: asyncio.Task[None] | None = None
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._lanes: dict[TopicPartition, _Lane] = {}
        """A group member's lane of each partition it holds (or held, until the lane notices it moved)."""
        self._assignment_changed = asyncio.Event()
        self._to_commit: dict[TopicPartition, int] = {}
        """Offsets handled by the lanes and not yet in a commit."""
        self._commit_lock = asyncio.Lock()
        self._committing: asyncio.Task[None] | None = None
        self._last_commit = -math.inf
        """When the latest commit started (event loop time)."""

    @property
    def group(self) -> str:
        return self._group

    @property
    def topic(self) -> str:
        return self._spec.name

    async def start(self) -> None:
        topic = self._config.physical(self._spec.name)
        if self.broadcast:
            await self._consumer.start()
            await self._consumer.topics()  # fetches the cluster's metadata, this topic's partitions included
            partitions = self._consumer.partitions_for_topic(topic) or set(range(self._spec.partitions))
            assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
            self._consumer.assign(assigned)
            if self._start == "latest":
                await self._consumer.seek_to_end(*assigned)
            else:
                await self._consumer.seek_to_beginning(*assigned)
            # The positions are resolved now, so nothing published after start() returns is missed.
            for tp in assigned:
                await self._consumer.position(tp)
            self.assignment = frozenset(assigned)
        else:
            # Subscribed after start(), which then returns without waiting for the group to assign partitions:
            # a service's consumers that share a group (the messages service's three) all join at once, in one
            # rebalance, instead of one after another with a rebalance each (noticed by the others only at their
            # next heartbeat). Readiness waits for the assignment (check_caught_up); a group that starts at the
            # latest record waits here, so what is published after subscribe() returns reaches it.
            await self._consumer.start()
            await self._wait_for_partitions(topic)
            self._consumer.subscribe([topic], listener=_Listener(self))
            if self._start == "latest":
                await self.first_assignment.wait()
        self._task = asyncio.create_task(self._run(), name=f"kafka:{self._group}:{self._spec.name}")

    async def _wait_for_partitions(self, topic: str) -> None:
        """Until this client's metadata has the topic's partitions, as ``start()`` waits for a topic subscribed
        before it. A group's leader assigns from its own metadata: one that did not yet know a just-created topic
        gave every member nothing and noticed the topic only at its next metadata refresh, 5 minutes later."""
        await wait_for_topic_metadata(self._consumer, topic)

    async def check_caught_up(self) -> None:
        where = f"{self._group} on {self._spec.name}"
        if self._stopping or self._task is None:
            raise NotCaughtUp(f"{where}: not subscribed")
        assignment = self.assignment
        if assignment is None:
            raise NotCaughtUp(f"{where}: waiting for the group to assign partitions")
        if any(tp not in self._heads for tp in assignment):
            raise NotCaughtUp(f"{where}: reading the head of its partitions")
        behind = {
            tp.partition: self._heads[tp] - self._handled.get(tp, 0)
            for tp in assignment
            if self._handled.get(tp, -1) < self._heads[tp]
        }
        if behind:
            raise NotCaughtUp(f"{where}: records to handle by partition {dict(sorted(behind.items()))}")

    def lag(self) -> dict[int, int]:
        """Records behind the head per held partition: the highest end offset the consumer knows of minus the next
        offset to handle. The high watermark of its last fetch goes stale while a handler is stuck (the consumer
        stops fetching a partition whose fetched records wait), so each call also asks the broker for the end
        offsets the next call reports: a stuck consumer's lag keeps growing, one call behind. Nothing once it
        stops."""
        if self._stopping:
            return {}
        self._refresh_ends()
        found: dict[int, int] = {}
        held = self._consumer.assignment()
        for tp in self.assignment or ():
            handled = self._handled.get(tp)
            if handled is None or tp not in held:
                continue
            head = max(self._consumer.highwater(tp) or 0, self._heads.get(tp, 0), self._ends.get(tp, 0))
            found[tp.partition] = max(0, head - handled)
        return found

    def _refresh_ends(self) -> None:
        if self._stopping or (self._reading_ends is not None and not self._reading_ends.done()):
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # read outside the event loop: the ends known so far serve
        self._reading_ends = loop.create_task(self._read_ends(), name=f"kafka-lag:{self._group}:{self._spec.name}")

    async def _read_ends(self) -> None:
        held = list(self.assignment or ())
        if not held:
            return
        try:
            self._ends.update(await self._consumer.end_offsets(held))
        except KafkaError as exc:  # a metric's input: the lag reported stays what was known
            log.debug("bus.lag_unknown", group=self._group, topic=self._spec.name, error=str(exc))

    async def _learn_heads(self, new: Sequence[TopicPartition]) -> None:
        """The head and the starting position of each newly held partition: read before its lane takes a record
        (a group member) or between polls (a broadcast reader), so the position is where handling stands."""
        if not new:
            return
        try:
            for tp in new:
                self._handled.setdefault(tp, await self._consumer.position(tp))
            heads = await self._consumer.end_offsets(list(new))
        except IllegalStateError:
            return  # revoked meanwhile: the next assignment is learnt on the next round
        self._heads.update({tp: heads[tp] for tp in new})

    def assigned(self, assignment: frozenset[TopicPartition]) -> None:
        """The group gave this member ``assignment``: forget the partitions it no longer holds, and open a lane for
        each new one (the lane of a partition held before goes on)."""
        self.assignment = assignment
        self.first_assignment.set()
        for tp in [tp for tp in {*self._heads, *self._handled} if tp not in assignment]:
            self._heads.pop(tp, None)
            self._handled.pop(tp, None)
        self._open_lanes(assignment)
        self._assignment_changed.set()

    def _open_lanes(self, assignment: frozenset[TopicPartition]) -> None:
        """A lane for each held partition that has none."""
        if self._stopping:
            return
        for tp in assignment:
            if tp not in self._lanes:
                lane = self._lanes[tp] = _Lane()
                lane.task = asyncio.create_task(
                    self._run_lane(tp, lane), name=f"kafka:{self._group}:{self._spec.name}[{tp.partition}]"
                )

    async def hand_over(self) -> None:
        """Before partitions move: wait for each lane's batch in flight, then commit what the lanes handled. A lane
        takes no new batch meanwhile (the assignment it read under is gone)."""
        self._assignment_changed.set()
        for lane in list(self._lanes.values()):
            async with lane.lock:
                pass
        await self._commit_pending()

    async def _run(self) -> None:
        if self.broadcast:
            await self._read_all()
        else:
            await self._keep_polling()

    async def _read_all(self) -> None:
        """A broadcast reader: every partition, each poll's partitions handled concurrently, nothing committed."""
        while not self._stopping:
            held = self.assignment or frozenset()
            await self._learn_heads([tp for tp in held if tp not in self._heads])
            batches = await self._consumer.getmany(
                timeout_ms=self._config.poll_timeout_ms, max_records=self._config.max_batch
            )
            await together([self._handle(tp, records) for tp, records in batches.items()])

    async def _keep_polling(self) -> None:
        """A group member's own task, while its lanes read its partitions. A member that holds none polls here, so
        that the group does not take it for a stuck one (``max_poll_interval_ms``); what such a poll takes from a
        partition assigned meanwhile is given back to that partition's lane. On a stop, waits for the lanes to
        finish their batches, then commits what they handled."""
        try:
            while not self._stopping:
                if self.assignment:
                    self._assignment_changed.clear()
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(self._config.poll_timeout_ms / 1000):
                            await self._assignment_changed.wait()
                    continue
                self._give_back(await self._consumer.getmany(timeout_ms=self._config.poll_timeout_ms))
            await asyncio.gather(*(lane.task for lane in list(self._lanes.values()) if lane.task is not None))
            await self._commit_pending()
            if self._committing is not None:  # waiting for its turn, with nothing left to commit
                self._committing.cancel()
        except asyncio.CancelledError:
            await self._drop_lanes()
            raise

    async def _drop_lanes(self) -> None:
        """Cancel the lanes and the commit in flight, committing nothing more (an abort)."""
        tasks = [lane.task for lane in self._lanes.values() if lane.task is not None]
        if self._committing is not None:
            tasks.append(self._committing)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._lanes.clear()
        self._to_commit.clear()

    async def _run_lane(self, tp: TopicPartition, lane: _Lane) -> None:
        """Read, handle and queue the commit of one partition's records, in order, until it moves or a stop."""
        try:
            while not self._stopping:
                held = self.assignment
                if held is None:  # a rebalance: the next assignment says whether this lane goes on
                    self._assignment_changed.clear()
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(self._config.poll_timeout_ms / 1000):
                            await self._assignment_changed.wait()
                    continue
                if tp not in held:
                    return
                if await self._read_batch(tp, lane, held):
                    continue
                # This failure is the bus's own (handlers' are retried or dead-lettered): a dead letter that could
                # not be written, say. The partition is read again from where its handling stands.
                await asyncio.sleep(LANE_RETRY_SECONDS)
        finally:
            if self._lanes.get(tp) is lane:
                del self._lanes[tp]

    async def _read_batch(self, tp: TopicPartition, lane: _Lane, held: frozenset[TopicPartition]) -> bool:
        """Take the partition's ready records (after the pace's wait) and handle them; False when that failed."""
        if tp not in self._heads:
            await self._learn_heads([tp])
        taken = await self._consumer.getmany(
            tp, timeout_ms=self._config.poll_timeout_ms, max_records=self._config.max_batch
        )
        records = taken.get(tp)
        if records and self._processor.pace is not None:
            records = await self._linger(tp, records, held)
        if not records:
            return True
        async with lane.lock:
            if self.assignment is not held:
                self._give_back({tp: records})
                return True
            try:
                _, offset = await self._handle(tp, records)
            except Exception:
                log.exception("bus.lane_failed", group=self._group, topic=self._spec.name, partition=tp.partition)
                if tp in self._handled and tp in self._consumer.assignment():
                    self._consumer.seek(tp, self._handled[tp])
                return False
            if offset is not None:
                self._commit_soon(tp, offset)
        return True

    async def _linger(self, tp: TopicPartition, records: list[Any], held: frozenset[TopicPartition]) -> list[Any]:
        """``records`` and those of the partition that arrive while the processor's pace asks to wait: until they
        fill a batch, the store would take a write, or a stop is requested (seen within a poll timeout).

        Outside the lane's lock: a rebalance blocks ``getmany`` until it is over, and its revocation waits for that
        lock. A rebalance during the wait gives back what was taken instead, unhandled and uncommitted: whoever
        holds the partition next (this member, perhaps) reads it again, as after a hand-over of a finished batch."""
        pace = self._processor.pace
        wait = self._processor.linger(len(records))
        if wait <= 0 or pace is None:
            return records
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while len(records) < min(pace.fill, self._config.max_batch) and not self._stopping and self.assignment is held:
            left = deadline - loop.time()
            if left <= 0:
                break
            more = await self._consumer.getmany(
                tp,
                timeout_ms=math.ceil(min(left * 1000, self._config.poll_timeout_ms)),
                max_records=self._config.max_batch - len(records),
            )
            records = [*records, *more.get(tp, ())]
        if self.assignment is held:
            return records
        self._give_back({tp: records})
        return []

    def _commit_soon(self, tp: TopicPartition, offset: int) -> None:
        """Queue a lane's handled offset; one commit at a time takes every queued offset, at most one per commit
        interval."""
        self._to_commit[tp] = offset
        if self._committing is None or self._committing.done():
            self._committing = asyncio.create_task(
                self._commit_in_turn(), name=f"kafka-commit:{self._group}:{self._spec.name}"
            )

    async def _commit_in_turn(self) -> None:
        """Commit the queued offsets once the commit interval since the previous commit is over, until none are
        queued; a failed commit leaves them to the next lane's turn."""
        loop = asyncio.get_running_loop()
        while self._to_commit:
            wait = self._last_commit + self._config.commit_interval_ms / 1000 - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            async with self._commit_lock:
                if not await self._commit_queued():
                    return

    async def _commit_pending(self) -> None:
        """Commit the queued offsets now (a rebalance, a stop), after the commit in flight (if any) is done."""
        async with self._commit_lock:
            while self._to_commit:
                if not await self._commit_queued():
                    return

    async def _commit_queued(self) -> bool:
        """One commit of every queued offset (the caller holds the commit lock); False when the broker could not
        take it and those of partitions still held are queued again."""
        if not self._to_commit:
            return True
        offsets, self._to_commit = self._to_commit, {}
        self._last_commit = asyncio.get_running_loop().time()
        try:
            await self._consumer.commit(offsets)
        except CommitFailedError as exc:
            # The group moved on; the new owner re-processes from the last commit (at-least-once).
            log.warning("bus.commit_failed", error=str(exc))
        except KafkaError as exc:
            # Those of partitions still held are kept for the next commit (a later offset of a partition replaces
            # its own); until then a crash re-delivers these records, which handlers take as the duplicates they
            # are.
            log.warning("bus.commit_failed", error=f"{type(exc).__name__}: {exc}")
            held = self._consumer.assignment()
            for tp, offset in offsets.items():
                if tp in held:
                    self._to_commit.setdefault(tp, offset)
            return False
        return True

    def _give_back(self, batches: Batches) -> None:
        """Move the position of each partition still held back to the first record taken, so the next read of it
        takes them again (a partition that moved is read by its new owner from the last commit)."""
        held = self._consumer.assignment()
        for tp, records in batches.items():
            if tp in held:
                self._consumer.seek(tp, records[0].offset)

    async def _handle(self, tp: TopicPartition, records: list[Any]) -> tuple[TopicPartition, int | None]:
        deliveries = [
            Delivery(
                Record(
                    topic=consumed.topic.removeprefix(self._config.topic_prefix),
                    key=consumed.key or b"",
                    value=consumed.value or b"",
                    headers=headers_from(consumed.headers or ()),
                ),
                consumed.offset,
            )
            for consumed in records
        ]
        done = await self._processor.process_many(deliveries, partition=tp.partition, stopping=lambda: self._stopping)
        if done < len(deliveries):
            self._consumer.seek(tp, deliveries[done].offset)
        if not done:
            return tp, None
        self._handled[tp] = deliveries[done - 1].offset + 1
        return tp, self._handled[tp]

    async def stop(self) -> None:
        """Finish and commit the batch in flight, then leave the group (a static member too: its partitions move
        at once instead of after its session times out)."""
        await self.finish()
        await stop_leaving_groups([self._consumer])

    async def finish(self) -> None:
        """Stop reading once the batches in flight are handled and committed; the consumer is still a member."""
        self._stopping = True
        if self._task is not None:
            try:
                await self._task
            finally:
                self._task = None
        await self._stop_reading_ends()

    @property
    def consumer(self) -> AIOKafkaConsumer:
        return self._consumer

    async def abort(self) -> None:
        """Drop the batch in flight uncommitted and leave as a crash would: a dynamic member leaves (aiokafka), a
        static one stays a member until its session times out or a process with its name takes its place."""
        self.aborted = True
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._stop_reading_ends()
        await self._consumer.stop()

    async def _stop_reading_ends(self) -> None:
        if self._reading_ends is not None:
            self._reading_ends.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reading_ends
            self._reading_ends = None
