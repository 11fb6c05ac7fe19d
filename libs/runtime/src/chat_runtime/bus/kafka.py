"""The Kafka bus adapter (aiokafka).

Producer: idempotent, acks=all, so a publish that returned is on every in-sync replica and a retried send is
not written twice; records wait up to ``linger_ms`` to share a request with others, and ``publish_all`` hands
a whole batch to the producer before waiting for any of it. Consumers: ``chat_runtime.bus.kafka_consumer`` (a
lane per held partition for a group member, one loop for a broadcast reader).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence

import structlog

from chat_contracts.base import Contract
from chat_contracts.envelope import Envelope, Record, encode
from chat_contracts.spec import TopicSpec
from chat_runtime import tracing
from chat_runtime.bus.aiokafka_internals import stop_leaving_groups
from chat_runtime.bus.kafka_consumer import KafkaSubscription
from chat_runtime.bus.kafka_peers import ConsumerLink, GroupLink, PeerListener, PeerWatch
from chat_runtime.bus.kafka_setup import KafkaConfig, producer_options
from chat_runtime.bus.metrics import BusMetrics, LagReading
from chat_runtime.bus.port import BatchHandler, Handler, Outgoing, Pace, RetryPolicy, Start
from chat_runtime.bus.processing import RecordProcessor
from chat_runtime.extras import missing_extra
from chat_runtime.logging import current_correlation_id

try:
    from aiokafka import AIOKafkaProducer
except ImportError as missing:
    raise missing_extra("kafka", __name__, missing) from missing

log = structlog.get_logger("chat.bus.kafka")


class KafkaBus:
    """Bus adapter over Apache Kafka."""

    def __init__(
        self, config: KafkaConfig, *, metrics: BusMetrics | None = None, retry: RetryPolicy | None = None
    ) -> None:
        self.config = config
        self.metrics = metrics or BusMetrics()
        self.retry = retry or RetryPolicy()
        self._producer: AIOKafkaProducer | None = None
        self._subscriptions: list[KafkaSubscription] = []
        self.metrics.watch_lag(self._lag)
        self._listener = PeerListener(config.peer_address) if config.peer_address is not None else None
        self._watch = (
            PeerWatch(
                own_address=config.peer_address,
                eviction=config.peer_eviction_ms / 1000,
                interval=config.peer_probe_interval_ms / 1000,
                groups=self._group_links,
            )
            if config.peer_address is not None and config.watches_peers
            else None
        )

    def _group_links(self) -> dict[str, GroupLink]:
        """One consumer of each group this process is a member of, for the peer watch."""
        links: dict[str, GroupLink] = {}
        for subscription in self._subscriptions:
            if not subscription.broadcast and subscription.group not in links:
                links[subscription.group] = ConsumerLink(
                    subscription.consumer, timeout=self.config.peer_probe_interval_ms / 1000
                )
        return links

    def _lag(self) -> Iterator[LagReading]:
        for subscription in list(self._subscriptions):
            for partition, lag in subscription.lag().items():
                yield subscription.group, subscription.topic, partition, lag

    async def start(self) -> None:
        if self._listener is not None:
            await self._listener.start()  # before any consumer joins a group and tells it the address
        if self._producer is None:
            producer = AIOKafkaProducer(**producer_options(self.config))
            await producer.start()
            self._producer = producer

    async def stop(self) -> None:
        # Every consumer finishes and commits before any leaves: a process's consumers of one group then leave in
        # one request, and the group rebalances once instead of once per consumer with the others taking part.
        if self._watch is not None:
            await self._watch.stop()
        subscriptions = list(reversed(self._subscriptions))
        for subscription in subscriptions:
            await subscription.finish()
        await stop_leaving_groups([subscription.consumer for subscription in subscriptions])
        self._subscriptions.clear()
        if self._producer is not None:
            producer, self._producer = self._producer, None
            await producer.stop()
        if self._listener is not None:
            await self._listener.stop()

    async def abort(self) -> None:
        """Leave every group without committing what is in flight and close, as a crash would (chaos tests)."""
        if self._watch is not None:
            await self._watch.stop()
        for subscription in reversed(self._subscriptions):
            await subscription.abort()
        self._subscriptions.clear()
        await self.stop()

    def _require_producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            raise RuntimeError("KafkaBus.start() must be awaited before publishing")
        return self._producer

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
            await self.publish_record(encode(envelope, topic=spec.name))
        else:
            with spans.publishing([spec.name], [envelope.correlation_id]) as trace:
                await self.publish_record(encode(envelope, topic=spec.name, trace=trace))
        self.metrics.published_to(spec.name).inc()
        return envelope

    async def publish_all(self, messages: Sequence[Outgoing], *, source: str) -> list[Envelope]:
        producer = self._require_producer()
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
            await self._send_all(producer, messages, envelopes, trace=())
        else:
            topics = [message.spec.name for message in messages]
            with spans.publishing(topics, [envelope.correlation_id for envelope in envelopes]) as trace:
                await self._send_all(producer, messages, envelopes, trace=trace)
        for message in messages:
            self.metrics.published_to(message.spec.name).inc()
        return envelopes

    async def _send_all(
        self,
        producer: AIOKafkaProducer,
        messages: Sequence[Outgoing],
        envelopes: Sequence[Envelope],
        *,
        trace: tuple[tuple[str, bytes], ...],
    ) -> None:
        pending = []
        for message, envelope in zip(messages, envelopes, strict=True):
            record = encode(envelope, topic=message.spec.name, trace=trace)
            # Queued in order (same key, same partition, same batch order); acknowledged together below.
            pending.append(
                await producer.send(
                    self.config.physical(record.topic),
                    value=record.value,
                    key=record.key or None,
                    headers=list(record.headers),
                )
            )
        await asyncio.gather(*pending)

    async def publish_record(self, record: Record) -> None:
        """Send an already-encoded record and wait for acks=all."""
        await self._require_producer().send_and_wait(
            self.config.physical(record.topic), value=record.value, key=record.key or None, headers=list(record.headers)
        )

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
    ) -> KafkaSubscription:
        await self.start()
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
        subscription = KafkaSubscription(
            config=self.config, spec=spec, group=group, processor=processor, start=start, broadcast=broadcast
        )
        await subscription.start()
        self._subscriptions.append(subscription)
        if self._watch is not None and not broadcast:
            self._watch.start()
        return subscription
