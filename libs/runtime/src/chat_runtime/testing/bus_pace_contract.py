"""Paced batches, for every bus adapter (mixed into ``BusContract`` runs): a batch subscription given a ``Pace``
waits, before taking a small batch, for more records or for its store to be ready, and never holds up a stop.

The pace callables here steer the waits so that nothing depends on timing: a pause of an hour (with ``longest``
an hour too) ends only when the batch fills or the subscription stops, and a test that waited it out would fail
on its own timeout instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from chat_contracts.envelope import Envelope
from chat_runtime.bus.port import Outgoing, Pace
from chat_runtime.testing.bus_harness import SOURCE, BusHarness, Collector, Ping, make_spec, settle

HOUR = 3600.0
FILL = 6


class Batches:
    """What a batch handler was given, call by call, and every record handled (in batches or one by one)."""

    def __init__(self) -> None:
        self.calls: list[list[int]] = []
        self.got = Collector()

    async def batch(self, envelopes: Sequence[Envelope]) -> None:
        self.calls.append([e.data.n for e in envelopes if isinstance(e.data, Ping)])
        for envelope in envelopes:
            await self.got.add(envelope)


class BusPaceContract:
    """A batch subscription's ``Pace`` (see chat_runtime.bus.port)."""

    quiet_period: float = 1.0

    async def test_records_arriving_while_a_paced_partition_waits_join_its_batch(self, harness: BusHarness) -> None:
        spec = make_spec(partitions=1)
        await harness.create(spec)
        bus = await harness.new_bus()
        seen = Batches()
        publishing: list[asyncio.Task[list[Envelope]]] = []

        def pause() -> float:
            # Asked before the first record is taken: the store is busy for an hour, and meanwhile five more come.
            if not publishing:
                more = [Outgoing(spec, Ping(key="k", n=n)) for n in range(1, FILL)]
                publishing.append(asyncio.create_task(bus.publish_all(more, source=SOURCE)))
            return HOUR

        await bus.subscribe(
            spec, group="g-paced", handler=seen.got.add, batch=seen.batch, pace=Pace(pause, fill=FILL, longest=HOUR)
        )
        await bus.publish(spec, Ping(key="k", n=0), source=SOURCE)
        await seen.got.wait_for(lambda: len(seen.got.seen) >= FILL)
        await settle(self.quiet_period)
        assert seen.calls == [list(range(FILL))], "the records that came during the wait were not in one batch"
        assert publishing[0].done()

    async def test_a_partition_takes_a_lone_record_at_once_without_a_pace_or_when_its_store_is_ready(
        self, harness: BusHarness
    ) -> None:
        spec = make_spec(partitions=1)
        await harness.create(spec)
        bus = await harness.new_bus()
        unpaced, ready = Collector(), Collector()
        await bus.subscribe(spec, group="g-unpaced", handler=unpaced.add, batch=Batches().batch)
        await bus.subscribe(
            spec,
            group="g-ready",
            handler=ready.add,
            batch=Batches().batch,
            pace=Pace(lambda: 0.0, fill=FILL, longest=HOUR),
        )
        await bus.publish(spec, Ping(key="k", n=0), source=SOURCE)
        await unpaced.wait_for(lambda: len(unpaced.seen) >= 1)
        await ready.wait_for(lambda: len(ready.seen) >= 1)
        assert unpaced.numbers() == ready.numbers() == [0]

    async def test_a_paced_partition_takes_a_full_batch_without_waiting(self, harness: BusHarness) -> None:
        spec = make_spec(partitions=1)
        await harness.create(spec)
        bus = await harness.new_bus()
        seen = Batches()
        release, holding = asyncio.Event(), asyncio.Event()
        pauses = iter([0.0])  # the store takes the first record at once, and then is busy for an hour

        async def single(envelope: Envelope) -> None:
            if isinstance(envelope.data, Ping) and envelope.data.n == 0:
                holding.set()
                await release.wait()  # the rest queue up behind the first record: more than a batch
            await seen.got.add(envelope)

        pace = Pace(lambda: next(pauses, HOUR), fill=FILL, longest=HOUR)
        await bus.subscribe(spec, group="g-paced-full", handler=single, batch=seen.batch, pace=pace)
        await bus.publish(spec, Ping(key="k", n=0), source=SOURCE)
        await asyncio.wait_for(holding.wait(), 30)
        await bus.publish_all([Outgoing(spec, Ping(key="k", n=n)) for n in range(1, 2 * FILL)], source=SOURCE)
        release.set()
        await seen.got.wait_for(lambda: len(seen.got.seen) >= 2 * FILL)
        assert seen.got.numbers() == list(range(2 * FILL))

    async def test_a_stop_ends_a_paced_wait_and_the_group_loses_nothing(self, harness: BusHarness) -> None:
        spec = make_spec(partitions=1)
        await harness.create(spec)
        bus = await harness.new_bus()
        got = Collector()
        lingering = asyncio.Event()

        def pause() -> float:
            lingering.set()
            return HOUR

        pace = Pace(pause, fill=FILL, longest=HOUR)
        subscription = await bus.subscribe(
            spec, group="g-paced-stop", handler=got.add, batch=Batches().batch, pace=pace
        )
        await bus.publish(spec, Ping(key="k", n=0), source=SOURCE)
        await asyncio.wait_for(lingering.wait(), 30)
        await asyncio.wait_for(subscription.stop(), 30)
        # The stopped member handled the record it had taken, or left it for the next: either way it is handled once.
        other = await harness.new_bus()
        await other.subscribe(spec, group="g-paced-stop", handler=got.add)
        await got.wait_for(lambda: len(got.seen) >= 1)
        await settle(self.quiet_period)
        assert got.numbers() == [0]
