"""A batch subscription's pace: how long a partition waits for a fuller batch, and who may ask for it."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from chat_contracts.envelope import Envelope, Record
from chat_runtime.bus.metrics import BusMetrics
from chat_runtime.bus.port import MAX_LINGER, Pace, RetryPolicy
from chat_runtime.bus.processing import RecordProcessor
from chat_runtime.testing.bus_harness import make_spec


async def handler(envelope: Envelope) -> None:
    return None


async def batch(envelopes: Sequence[Envelope]) -> None:
    return None


async def dead_letter(record: Record) -> None:
    return None


def processor(*, with_batch: bool, pace: Pace | None) -> RecordProcessor:
    return RecordProcessor(
        spec=make_spec(),
        group="g",
        handler=handler,
        batch=batch if with_batch else None,
        pace=pace,
        policy=RetryPolicy(),
        metrics=BusMetrics(),
        dead_letter=dead_letter,
    )


def test_a_pace_waits_as_long_as_the_store_asks_while_the_batch_is_short() -> None:
    assert Pace(lambda: 0.01, fill=6).linger(5) == 0.01


def test_a_pace_does_not_ask_the_store_once_the_batch_is_full() -> None:
    def asked() -> float:
        raise AssertionError("a full batch needs no pause")

    assert Pace(asked, fill=6).linger(6) == 0.0


def test_a_store_that_would_write_now_or_is_late_makes_no_wait() -> None:
    assert Pace(lambda: 0.0, fill=6).linger(1) == 0.0
    assert Pace(lambda: -0.2, fill=6).linger(1) == 0.0


def test_a_pace_never_waits_longer_than_its_bound() -> None:
    assert Pace(lambda: 3600.0, fill=6).linger(1) == MAX_LINGER
    assert Pace(lambda: 3600.0, fill=6, longest=0.002).linger(1) == 0.002


def test_a_processor_without_a_pace_never_lingers() -> None:
    assert processor(with_batch=True, pace=None).linger(1) == 0.0


def test_a_processor_lingers_as_its_pace_says() -> None:
    assert processor(with_batch=True, pace=Pace(lambda: 0.01, fill=6)).linger(1) == 0.01


def test_a_pace_without_a_batch_handler_is_refused() -> None:
    with pytest.raises(ValueError, match="batch handler"):
        processor(with_batch=False, pace=Pace(lambda: 0.01, fill=6))
