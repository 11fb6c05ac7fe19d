"""Every contract of every topic survives the trip through a real Kafka broker and a consumer group."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from chat_contracts.envelope import Envelope
from chat_contracts.examples import example
from chat_contracts.spec import TopicSpec
from chat_contracts.topics import TOPICS
from chat_runtime.bus.kafka import KafkaBus
from chat_runtime.bus.kafka_setup import KafkaConfig, ensure_topics


@pytest.mark.parametrize("topic", sorted(TOPICS))
async def test_every_contract_on_a_topic_round_trips_through_kafka(kafka_bootstrap: str, topic: str) -> None:
    # Same spec (partitions, key field, payload types) under a fresh name, so runs never see each other.
    spec: TopicSpec = dataclasses.replace(TOPICS[topic], name=f"{topic}.it-{uuid.uuid4().hex[:8]}")
    config = KafkaConfig(bootstrap=kafka_bootstrap, client_id="contracts-it", heartbeat_interval_ms=500)
    await ensure_topics(config, [spec])
    bus = KafkaBus(config)
    received: list[Envelope] = []
    all_in = asyncio.Event()
    payloads = [example(payload_type) for payload_type in spec.payloads]

    async def handler(envelope: Envelope) -> None:
        received.append(envelope)
        if len(received) >= len(payloads):
            all_in.set()

    try:
        await bus.subscribe(spec, group="contracts-it", handler=handler)
        sent = [await bus.publish(spec, payload, source="it", correlation_id="it-corr") for payload in payloads]
        await asyncio.wait_for(all_in.wait(), 60)
    finally:
        await bus.stop()
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
        await admin.start()
        try:
            await admin.delete_topics([spec.name, spec.dlq])
        finally:
            await admin.close()
    assert sorted(received, key=lambda e: str(e.id)) == sorted(sent, key=lambda e: str(e.id))
    assert {type(e.data) for e in received} == set(spec.payloads)
    assert all(e.key == spec.key_of(e.data) for e in received)
