"""Following a Kafka topic from a point in time without a consumer group (see ``chat_runtime.bus.follow``).

The consumer has no group (``group_id=None``): aiokafka then assigns it every partition of the topic by itself
(and any partition added later), and nothing is shared with or committed for anyone else. Each partition is
sought to the first record written at or after ``since`` (``offsets_for_times``); the end offsets taken at that
moment mark "caught up". A process that starts again seeks by time again, which is what a view rebuilt by every
process needs.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime

import structlog

from chat_contracts.envelope import Record, headers_from
from chat_contracts.spec import TopicSpec
from chat_runtime.bus.follow import decoded
from chat_runtime.bus.kafka_setup import KafkaConfig, connection_options
from chat_runtime.bus.port import Handler
from chat_runtime.extras import missing_extra

try:
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.errors import UnknownTopicOrPartitionError
except ImportError as missing:
    raise missing_extra("kafka", __name__, missing) from missing

log = structlog.get_logger("chat.bus.follow")


class TopicMissing(RuntimeError):
    """The topic does not exist (yet) on the broker."""


class KafkaFollower:
    """Follows topics on the cluster ``config`` names, one group-less consumer per ``follow``."""

    def __init__(self, config: KafkaConfig) -> None:
        self._config = config

    async def follow(
        self, spec: TopicSpec, *, since: datetime, handler: Handler, caught_up: Callable[[], None]
    ) -> None:
        config = self._config
        topic = config.physical(spec.name)
        consumer = AIOKafkaConsumer(
            topic,
            **connection_options(config),
            client_id=f"{config.client_id}-follow-{uuid.uuid4().hex[:8]}",
            group_id=None,
            enable_auto_commit=False,
            # A sought offset that retention has already deleted means "from the oldest record left".
            auto_offset_reset="earliest",
            isolation_level="read_committed",
        )
        try:
            await consumer.start()  # assigns every partition, or raises when the topic does not exist
        except UnknownTopicOrPartitionError as exc:
            await consumer.stop()
            raise TopicMissing(f"topic {topic} does not exist") from exc
        try:
            assigned = sorted(consumer.assignment(), key=lambda tp: tp.partition)
            ends: dict[TopicPartition, int] = await consumer.end_offsets(assigned)
            found = await consumer.offsets_for_times({tp: int(since.timestamp() * 1000) for tp in assigned})
            # None: nothing was written since then, so there is no past to read in that partition.
            starts = {tp: found[tp].offset if found.get(tp) is not None else ends[tp] for tp in assigned}
            for tp, offset in starts.items():
                consumer.seek(tp, offset)
            behind = {tp for tp in assigned if starts[tp] < ends[tp]}
            log.info("bus.follow_started", topic=spec.name, past_records=sum(ends[tp] - starts[tp] for tp in assigned))
            if not behind:
                caught_up()
            while True:
                batches = await consumer.getmany(timeout_ms=config.poll_timeout_ms, max_records=config.max_batch)
                for records in batches.values():
                    for consumed in records:
                        record = Record(
                            topic=spec.name,
                            key=consumed.key or b"",
                            value=consumed.value or b"",
                            headers=headers_from(consumed.headers or ()),
                        )
                        envelope = decoded(record, spec, where=f"{consumed.partition}:{consumed.offset}")
                        if envelope is not None:
                            await handler(envelope)
                if behind:
                    behind = {tp for tp in behind if await consumer.position(tp) < ends[tp]}
                    if not behind:
                        caught_up()
        finally:
            await consumer.stop()
