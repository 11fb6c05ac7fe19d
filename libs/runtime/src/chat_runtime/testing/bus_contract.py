"""One suite, every bus adapter (the in-process bus in unit tests, Kafka in integration tests).

A test module subclasses ``BusContract`` and provides a ``harness`` fixture returning a ``BusHarness``.
The records, the harness and the waits the suite uses are in bus_harness.py.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence

from chat_contracts.envelope import Envelope, Record
from chat_runtime.bus.partitioner import partition_for
from chat_runtime.bus.port import (
    DLQ_ATTEMPTS,
    DLQ_GROUP,
    DLQ_REASON,
    DLQ_SOURCE_TOPIC,
    Outgoing,
    PoisonRecord,
    RetryableError,
)
from chat_runtime.logging import bind_correlation_id, current_correlation_id
from chat_runtime.testing.bus_harness import (
    SOURCE,
    BusHarness,
    Collector,
    Ping,
    Pong,
    caught_up,
    consumer_lag,
    make_spec,
    publish_many,
    published_count,
    settle,
    until_caught_up,
    until_lag,
)


class BusContract:
    """The behaviour every bus adapter guarantees (see chat_runtime.bus.port)."""

    quiet_period: float = 1.0

    async def test_every_consumer_group_receives_every_published_record(self, harness: BusHarness) -> None:
        spec = make_spec()
        await harness.create(spec)
        bus = await harness.new_bus()
        first, second = Collector(), Collector()
        await bus.subscribe(spec, group="g-first", handler=first.add)
        await bus.subscribe(spec, group="g-second", handler=second.add)
        await publish_many(bus, spec, 100)
        await first.wait_for(lambda: len(first.seen) >= 100)
        await second.wait_for(lambda: len(second.seen) >= 100)
        assert sorted(first.numbers()) == list(range(100))
        assert sorted(second.numbers()) == list(range(100))

    async def test_records_with_the_same_key_arrive_in_publish_order(self, harness: BusHarness) -> None:
        spec = make_spec()
        await harness.create(spec)
        bus = await harness.new_bus()
        got = Collector()
        await bus.subscribe(spec, group="g-order", handler=got.add)
        await publish_many(bus, spec, 300, keys=7)
        await got.wait_for(lambda: len(got.seen) >= 300)
        by_key: dict[str, list[int]] = defaultdict(list)
        for envelope in got.seen:
            assert isinstance(envelope.data, Ping)
            by_key[envelope.key].append(envelope.data.n)
        assert len(by_key) == 7
        for numbers in by_key.values():
            assert numbers == sorted(numbers)

    async def test_handlers_receive_the_envelope_with_its_metadata_and_correlation_id(
        self, harness: BusHarness
    ) -> None:
        spec = make_spec()
        await harness.create(spec)
        bus = await harness.new_bus()
        got = Collector()
        inner_correlation: list[str | None] = []

        async def handler(envelope: Envelope) -> None:
            inner_correlation.append(current_correlation_id())
            await got.add(envelope)

        await bus.subscribe(spec, group="g-meta", handler=handler)
        bind_correlation_id("corr-123")
        sent = await bus.publish(spec, Pong(key="room-1", note="hi"), source=SOURCE)
        await got.wait_for(lambda: len(got.seen) == 1)
        received = got.seen[0]
        assert received == sent
        assert received.correlation_id == "corr-123"
        assert received.type == "test.pong"
        assert received.key == "room-1"
        assert received.source == SOURCE
        assert received.occurred_at.tzinfo is not None
        assert inner_correlation == ["corr-123"]

    async def test_two_members_of_a_group_share_the_work_and_a_killed_member_loses_nothing(
        self, harness: BusHarness
    ) -> None:
        spec = make_spec(partitions=6)
        await harness.create(spec)
        producer = await harness.new_bus()
        bus_a, bus_b = await harness.new_bus(), await harness.new_bus()
        handled_by: dict[str, Collector] = {"a": Collector(), "b": Collector()}
        done = Collector()

        def handler_for(name: str) -> Callable[[Envelope], Awaitable[None]]:
            async def handler(envelope: Envelope) -> None:
                await asyncio.sleep(0.001)
                await handled_by[name].add(envelope)
                await done.add(envelope)

            return handler

        sub_a = await bus_a.subscribe(spec, group="g-shared", handler=handler_for("a"))
        await bus_b.subscribe(spec, group="g-shared", handler=handler_for("b"))
        await publish_many(producer, spec, 1000, keys=50)
        await done.wait_for(lambda: len(done.seen) >= 300)
        await sub_a.abort()
        await done.wait_for(lambda: len(set(done.numbers())) >= 1000, timeout=60)
        assert set(done.numbers()) == set(range(1000))
        assert handled_by["a"].seen, "member a never got a partition"
        assert handled_by["b"].seen, "member b never got a partition"

    async def test_a_restarted_consumer_resumes_after_its_last_commit_without_redelivery(
        self, harness: BusHarness
    ) -> None:
        spec = make_spec()
        await harness.create(spec)
        producer = await harness.new_bus()
        first = Collector()
        consumer = await harness.new_bus()
        subscription = await consumer.subscribe(spec, group="g-restart", handler=first.add)
        await publish_many(producer, spec, 200)
        await first.wait_for(lambda: len(first.seen) >= 200)
        await subscription.stop()
        await publish_many(producer, spec, 50, start=200)
        second = Collector()
        restarted = await harness.new_bus()
        await restarted.subscribe(spec, group="g-restart", handler=second.add)
        await second.wait_for(lambda: len(second.seen) >= 50)
        await settle(self.quiet_period)
        assert sorted(second.numbers()) == list(range(200, 250))

    async def test_a_graceful_stop_finishes_and_commits_the_record_in_flight(self, harness: BusHarness) -> None:
        spec = make_spec(partitions=1)
        await harness.create(spec)
        bus = await harness.new_bus()
        started = asyncio.Event()
        finished: list[int] = []

        async def slow(envelope: Envelope) -> None:
            started.set()
            await asyncio.sleep(0.5)
            assert isinstance(envelope.data, Ping)
            finished.append(envelope.data.n)

        subscription = await bus.subscribe(spec, group="g-graceful", handler=slow)
        await bus.publish(spec, Ping(key="k", n=1), source=SOURCE)
        await asyncio.wait_for(started.wait(), 30)
        await subscription.stop()
        assert finished == [1]
        again = Collector()
        other = await harness.new_bus()
        await other.subscribe(spec, group="g-graceful", handler=again.add)
        await bus.publish(spec, Ping(key="k", n=2), source=SOURCE)
        await again.wait_for(lambda: len(again.seen) >= 1)
        await settle(self.quiet_period)
        assert again.numbers() == [2]

    async def test_a_record_still_in_its_handler_holds_up_only_its_own_partition(self, harness: BusHarness) -> None:
        spec = make_spec(partitions=2)
        await harness.create(spec)
        bus = await harness.new_bus()
        keys = {partition_for(f"k{n}".encode(), 2): f"k{n}" for n in range(20)}
        got = Collector()
        holding, release = asyncio.Event(), asyncio.Event()

        async def batch(envelopes: Sequence[Envelope]) -> None:
            for envelope in envelopes:
                await handler(envelope)

        async def handler(envelope: Envelope) -> None:
            if envelope.key == keys[0]:
                holding.set()
                await release.wait()
            await got.add(envelope)

        await bus.subscribe(spec, group="g-lanes", handler=handler, batch=batch)
        await bus.publish(spec, Ping(key=keys[0], n=0), source=SOURCE)
        await asyncio.wait_for(holding.wait(), 30)
        await bus.publish_all([Outgoing(spec, Ping(key=keys[1], n=n)) for n in (1, 2)], source=SOURCE)
        await got.wait_for(lambda: len(got.seen) >= 2)
        assert got.numbers() == [1, 2], "the other partition waited for a record that was not its own"
        release.set()
        await got.wait_for(lambda: len(got.seen) >= 3)
        await settle(self.quiet_period)
        assert sorted(got.numbers()) == [0, 1, 2]

    async def _dead_letter_case(self, harness: BusHarness, bad: Record, expected_reason: str) -> None:
        spec = make_spec(partitions=1)
        await harness.create(spec)
        bus = await harness.new_bus()
        got = Collector()
        await bus.subscribe(spec, group="g-dlq", handler=got.add)
        await harness.inject(spec, Record(topic=spec.name, key=bad.key, value=bad.value, headers=bad.headers))
        await bus.publish(spec, Ping(key="k", n=7), source=SOURCE)
        await got.wait_for(lambda: len(got.seen) >= 1)
        assert got.numbers() == [7], "the consumer must carry on past a bad record"
        dead = await harness.read_raw(spec.dlq, count=1, timeout=30)
        assert dead[0].value == bad.value
        reason = dead[0].header(DLQ_REASON)
        assert reason is not None
        assert reason.startswith(expected_reason), reason
        assert dead[0].header(DLQ_SOURCE_TOPIC) == spec.name
        assert dead[0].header(DLQ_GROUP) == "g-dlq"

    async def test_a_record_that_is_not_json_goes_to_the_dead_letter_topic_with_its_reason(
        self, harness: BusHarness
    ) -> None:
        await self._dead_letter_case(harness, Record(topic="", key=b"k", value=b"\xff{not json"), "invalid_json")

    async def test_a_record_of_an_unknown_type_goes_to_the_dead_letter_topic(self, harness: BusHarness) -> None:
        value = _envelope_json(type_="test.unknown", data={"key": "k"})
        await self._dead_letter_case(harness, Record(topic="", key=b"k", value=value), "unknown_type")

    async def test_a_record_with_data_that_breaks_its_schema_goes_to_the_dead_letter_topic(
        self, harness: BusHarness
    ) -> None:
        value = _envelope_json(type_="test.ping", data={"key": "k", "n": "not-a-number", "extra": 1})
        await self._dead_letter_case(harness, Record(topic="", key=b"k", value=value), "invalid_data")

    async def test_a_handler_that_keeps_failing_dead_letters_the_record_and_the_consumer_continues(
        self, harness: BusHarness
    ) -> None:
        spec = make_spec(partitions=1)
        await harness.create(spec)
        bus = await harness.new_bus()
        got = Collector()
        attempts: list[int] = []

        async def handler(envelope: Envelope) -> None:
            assert isinstance(envelope.data, Ping)
            if envelope.data.n == 1:
                attempts.append(1)
                raise ValueError("boom")
            await got.add(envelope)

        await bus.subscribe(spec, group="g-fail", handler=handler)
        await publish_many(bus, spec, 3, keys=1)
        await got.wait_for(lambda: len(got.seen) >= 2)
        assert got.numbers() == [0, 2]
        dead = await harness.read_raw(spec.dlq, count=1, timeout=30)
        reason = dead[0].header(DLQ_REASON) or ""
        assert reason.startswith("handler_failed: ValueError: boom")
        assert dead[0].header(DLQ_ATTEMPTS) == str(len(attempts))
        assert len(attempts) >= 2

    async def test_a_poison_record_is_dead_lettered_without_retries(self, harness: BusHarness) -> None:
        spec = make_spec(partitions=1)
        await harness.create(spec)
        bus = await harness.new_bus()
        calls: list[int] = []

        async def handler(envelope: Envelope) -> None:
            calls.append(1)
            raise PoisonRecord("room does not exist")

        await bus.subscribe(spec, group="g-poison", handler=handler)
        await bus.publish(spec, Ping(key="k", n=1), source=SOURCE)
        dead = await harness.read_raw(spec.dlq, count=1, timeout=30)
        assert (dead[0].header(DLQ_REASON) or "").startswith("poison: room does not exist")
        assert calls == [1]

    async def test_a_retryable_error_is_retried_until_the_handler_succeeds(self, harness: BusHarness) -> None:
        spec = make_spec(partitions=1)
        await harness.create(spec)
        bus = await harness.new_bus()
        got = Collector()
        failures = {"left": 8}

        async def handler(envelope: Envelope) -> None:
            if failures["left"] > 0:
                failures["left"] -= 1
                raise RetryableError("store unavailable")
            await got.add(envelope)

        await bus.subscribe(spec, group="g-retry", handler=handler)
        await bus.publish(spec, Ping(key="k", n=1), source=SOURCE)
        await got.wait_for(lambda: len(got.seen) >= 1, timeout=60)
        assert got.numbers() == [1]
        assert failures["left"] == 0

    async def test_a_batch_handler_gets_one_partitions_records_in_order_each_once(self, harness: BusHarness) -> None:
        spec = make_spec(partitions=4)
        await harness.create(spec)
        bus = await harness.new_bus()
        batches: list[list[Envelope]] = []
        got = Collector()

        async def batch(envelopes: Sequence[Envelope]) -> None:
            batches.append(list(envelopes))
            for envelope in envelopes:
                await got.add(envelope)

        await bus.subscribe(spec, group="g-batch", handler=got.add, batch=batch)
        await bus.publish_all([Outgoing(spec, Ping(key=f"k{n % 9}", n=n)) for n in range(400)], source=SOURCE)
        await got.wait_for(lambda: len(got.seen) >= 400)
        await settle(self.quiet_period)
        assert sorted(got.numbers()) == list(range(400))
        assert any(len(b) > 1 for b in batches), "records that were ready together came one at a time"
        for envelopes in batches:
            assert len({partition_for(e.key.encode(), spec.partitions) for e in envelopes}) == 1
            numbers = [e.data.n for e in envelopes if isinstance(e.data, Ping)]
            by_key: dict[str, list[int]] = defaultdict(list)
            for envelope, n in zip(envelopes, numbers, strict=True):
                by_key[envelope.key].append(n)
            assert all(found == sorted(found) for found in by_key.values())

    async def test_a_failing_batch_is_handled_one_by_one_and_only_the_poison_record_is_dead_lettered(
        self, harness: BusHarness
    ) -> None:
        spec = make_spec(partitions=1)
        await harness.create(spec)
        bus = await harness.new_bus()
        got = Collector()
        release, holding = asyncio.Event(), asyncio.Event()

        async def single(envelope: Envelope) -> None:
            assert isinstance(envelope.data, Ping)
            if envelope.data.n == 13:
                raise PoisonRecord("thirteen")
            if envelope.data.n == 0 and not release.is_set():
                holding.set()
                await release.wait()  # the rest queue up behind the first record and come as one batch
            await got.add(envelope)

        async def batch(envelopes: Sequence[Envelope]) -> None:
            for envelope in envelopes:
                if isinstance(envelope.data, Ping) and envelope.data.n == 13:
                    raise ValueError("a batch with the poison record in it")
                await got.add(envelope)

        await bus.subscribe(spec, group="g-batch-poison", handler=single, batch=batch)
        await bus.publish(spec, Ping(key="k", n=0), source=SOURCE)
        await asyncio.wait_for(holding.wait(), 30)
        await bus.publish_all([Outgoing(spec, Ping(key="k", n=n)) for n in range(1, 30)], source=SOURCE)
        await settle(self.quiet_period)
        release.set()
        await got.wait_for(lambda: set(got.numbers()) >= set(range(30)) - {13})
        dead = await harness.read_raw(spec.dlq, count=1, timeout=30)
        assert (dead[0].header(DLQ_REASON) or "").startswith("poison: thirteen")
        await settle(self.quiet_period)
        assert 13 not in got.numbers()
        assert sorted(set(got.numbers())) == [n for n in range(30) if n != 13]

    async def test_publish_all_returns_once_every_record_is_published_in_order_per_key(
        self, harness: BusHarness
    ) -> None:
        spec = make_spec(partitions=3)
        await harness.create(spec)
        bus = await harness.new_bus()
        got = Collector()
        await bus.subscribe(spec, group="g-publish-all", handler=got.add)
        bind_correlation_id("corr-all")
        sent = await bus.publish_all(
            [Outgoing(spec, Ping(key=f"k{n % 4}", n=n), correlation_id=f"c{n}" if n % 2 else None) for n in range(60)],
            source=SOURCE,
        )
        assert [e.data.n for e in sent if isinstance(e.data, Ping)] == list(range(60))
        await got.wait_for(lambda: len(got.seen) >= 60)
        by_key: dict[str, list[int]] = defaultdict(list)
        for envelope in got.seen:
            assert isinstance(envelope.data, Ping)
            by_key[envelope.key].append(envelope.data.n)
            expected = f"c{envelope.data.n}" if envelope.data.n % 2 else "corr-all"
            assert envelope.correlation_id == expected
        assert all(found == sorted(found) for found in by_key.values())
        assert sorted(got.numbers()) == list(range(60))

    async def test_published_records_are_counted_per_topic(self, harness: BusHarness) -> None:
        first, second = make_spec(), make_spec(partitions=2)
        await harness.create(first)
        await harness.create(second)
        bus = await harness.new_bus()
        await publish_many(bus, first, 3)
        await bus.publish_all(
            [
                Outgoing(second, Ping(key="k", n=1)),
                Outgoing(first, Ping(key="k", n=2)),
                Outgoing(second, Ping(key="j", n=3)),
            ],
            source=SOURCE,
        )
        await bus.publish(second, Ping(key="k", n=4), source=SOURCE)
        assert (published_count(bus, first.name), published_count(bus, second.name)) == (4, 3)

    async def test_broadcast_subscribers_of_one_name_each_read_every_record(self, harness: BusHarness) -> None:
        spec = make_spec(partitions=3)
        await harness.create(spec)
        producer = await harness.new_bus()
        first, second = Collector(), Collector()
        bus_a, bus_b = await harness.new_bus(), await harness.new_bus()
        await publish_many(producer, spec, 5)  # before the subscribers: not for them (they start at latest)
        await bus_a.subscribe(spec, group="g-fanout", handler=first.add, start="latest", broadcast=True)
        await bus_b.subscribe(spec, group="g-fanout", handler=second.add, start="latest", broadcast=True)
        await publish_many(producer, spec, 90, start=5)
        await first.wait_for(lambda: len(first.seen) >= 90)
        await second.wait_for(lambda: len(second.seen) >= 90)
        await settle(self.quiet_period)
        assert sorted(first.numbers()) == list(range(5, 95))
        assert sorted(second.numbers()) == list(range(5, 95))


def _envelope_json(*, type_: str, data: dict[str, object]) -> bytes:
    return json.dumps(
        {
            "id": str(uuid.uuid4()),
            "type": type_,
            "version": 1,
            "source": SOURCE,
            "occurred_at": "2026-01-01T00:00:00Z",
            "key": "k",
            "correlation_id": "c",
            "data": data,
        }
    ).encode()


class BusStartContract:
    """Where a new group starts (mixed into BusContract runs)."""

    async def test_a_new_group_starting_at_latest_sees_only_what_comes_after_it(self, harness: BusHarness) -> None:
        spec = make_spec(partitions=2)
        await harness.create(spec)
        bus = await harness.new_bus()
        await publish_many(bus, spec, 10, keys=2)
        early, late = Collector(), Collector()
        await bus.subscribe(spec, group="g-early", handler=early.add)
        await bus.subscribe(spec, group="g-late", handler=late.add, start="latest")
        await early.wait_for(lambda: len(early.seen) >= 10)
        await settle(0.5)  # let the latest group finish joining before the next records
        await publish_many(bus, spec, 5, keys=2, start=10)
        await late.wait_for(lambda: len(late.seen) >= 5)
        await settle(0.5)
        assert sorted(late.numbers()) == list(range(10, 15))


class BusReadinessContract:
    """When a subscription says it has caught up (mixed into BusContract runs): a readiness check of its own."""

    async def test_a_subscriber_catches_up_once_it_has_handled_what_was_there_when_it_joined(
        self, harness: BusHarness
    ) -> None:
        spec = make_spec(partitions=3)
        await harness.create(spec)
        bus = await harness.new_bus()
        await publish_many(bus, spec, 30, keys=6)
        release = asyncio.Event()
        handled = {"member": Collector(), "broadcast": Collector()}

        def held_until_released(name: str) -> Callable[[Envelope], Awaitable[None]]:
            async def handler(envelope: Envelope) -> None:
                await release.wait()
                await handled[name].add(envelope)

            return handler

        member = await bus.subscribe(spec, group="g-ready", handler=held_until_released("member"))
        broadcast = await bus.subscribe(
            spec, group="g-ready-fanout", handler=held_until_released("broadcast"), broadcast=True
        )
        await settle(1.0)  # long enough to join and start reading: still not caught up, nothing is handled
        assert not await caught_up(member)
        assert not await caught_up(broadcast)
        release.set()
        await until_caught_up(member)
        await until_caught_up(broadcast)
        assert sorted(handled["member"].numbers()) == list(range(30))
        assert sorted(handled["broadcast"].numbers()) == list(range(30))
        await publish_many(bus, spec, 5, keys=6, start=30)
        await handled["member"].wait_for(lambda: len(handled["member"].seen) >= 35)
        assert await caught_up(member), "records published after joining are not a head to wait for"
        await member.stop()
        assert not await caught_up(member), "a stopped subscription holds nothing"

    async def test_records_a_held_handler_has_not_handled_show_as_consumer_lag_until_it_is_released(
        self, harness: BusHarness
    ) -> None:
        spec = make_spec(partitions=2)
        await harness.create(spec)
        bus = await harness.new_bus()
        release = asyncio.Event()
        handled = Collector()

        async def held(envelope: Envelope) -> None:
            await release.wait()
            await handled.add(envelope)

        subscription = await bus.subscribe(spec, group="g-lag", handler=held)
        await until_caught_up(subscription)
        await until_lag(bus, "g-lag", spec.name, 0)
        await publish_many(bus, spec, 4, keys=2)
        await until_lag(bus, "g-lag", spec.name, 4)
        await publish_many(bus, spec, 3, keys=2, start=4)
        await until_lag(bus, "g-lag", spec.name, 7)  # still stuck: the lag grows with what arrives
        release.set()
        await handled.wait_for(lambda: len(handled.seen) == 7)
        await until_lag(bus, "g-lag", spec.name, 0)
        await subscription.stop()
        assert consumer_lag(bus, "g-lag", spec.name) is None, "a stopped subscription reports nothing"

    async def test_a_subscriber_starting_at_latest_is_caught_up_without_reading_the_past(
        self, harness: BusHarness
    ) -> None:
        spec = make_spec(partitions=2)
        await harness.create(spec)
        bus = await harness.new_bus()
        await publish_many(bus, spec, 10, keys=2)
        late, fanout = Collector(), Collector()
        subscriptions = [
            await bus.subscribe(spec, group="g-ready-late", handler=late.add, start="latest"),
            await bus.subscribe(spec, group="g-ready-late-fanout", handler=fanout.add, start="latest", broadcast=True),
        ]
        for subscription in subscriptions:
            await until_caught_up(subscription)
        assert late.seen == []
        assert fanout.seen == []
