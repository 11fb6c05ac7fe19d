"""The in-process bus places keys on the same partitions as Kafka's default partitioner."""

from __future__ import annotations

import pytest
from aiokafka.partitioner import murmur2 as aiokafka_murmur2

from chat_runtime.bus.partitioner import murmur2, partition_for


@pytest.mark.parametrize(
    "key", [b"", b"a", b"ab", b"abc", b"abcd", b"room-42", "ünïcode-ключ".encode(), bytes(range(256))]
)
def test_murmur2_matches_the_kafka_client_hash(key: bytes) -> None:
    assert murmur2(key) & 0x7FFFFFFF == aiokafka_murmur2(key) & 0x7FFFFFFF


def test_the_same_key_always_maps_to_the_same_partition() -> None:
    assert partition_for(b"room-1", 12) == partition_for(b"room-1", 12)
    spread = {partition_for(f"room-{i}".encode(), 12) for i in range(500)}
    assert spread == set(range(12))
