"""The store contract for the store's own records: failure counts that throttle guesses, the ids of consumed events
(each handled once) and the outbox of events to publish; apart from the rooms and users the service is about.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from chat_contracts.topics import ROOMS_EVENTS
from chat_rooms.domain.model import Failures
from chat_rooms.service.ports import RoomsStore, Tx
from chat_rooms.testing.store_contract.builders import HOUR, T0, ReadsOutbox, a_room, an_event, ids_of, roll_back


class BookkeepingContract(ReadsOutbox):
    """How a ``RoomsStore`` throttles failures, remembers consumed events and keeps its outbox."""

    # throttling

    async def test_hits_count_up_within_a_window_and_start_over_in_the_next(self, store: RoomsStore) -> None:
        minute = timedelta(minutes=1)
        key = "room-password:203.0.113.7"
        async with store.transaction() as tx:
            assert await tx.hit(key, window=minute, now=T0) == 1
            assert await tx.hit(key, window=minute, now=T0 + timedelta(seconds=30)) == 2
        async with store.transaction() as tx:
            assert await tx.hit(key, window=minute, now=T0 + timedelta(seconds=59)) == 3
            assert await tx.hit("room-password:198.51.100.1", window=minute, now=T0 + timedelta(seconds=59)) == 1
            assert await tx.hit(key, window=minute, now=T0 + minute) == 1
        async with store.transaction() as tx:
            assert await tx.hit(key, window=minute, now=T0 + timedelta(seconds=61)) == 2

    async def test_failures_are_counted_until_cleared(self, store: RoomsStore) -> None:
        key = "room-password:alice"
        later = T0 + timedelta(seconds=10)
        async with store.transaction() as tx:
            assert await tx.failures(key) == Failures()
            assert await tx.record_failure(key, T0) == Failures(count=1, last_at=T0)
        async with store.transaction() as tx:
            assert await tx.record_failure(key, later) == Failures(count=2, last_at=later)
        async with store.transaction() as tx:
            assert await tx.failures(key) == Failures(count=2, last_at=later)
            assert await tx.failures("room-password:bob") == Failures()
            await tx.clear_failures(key)
        async with store.transaction() as tx:
            assert await tx.failures(key) == Failures()
            assert await tx.record_failure(key, later) == Failures(count=1, last_at=later)
            await tx.clear_failures("room-password:nobody")

    # consumed events

    async def test_an_event_is_marked_processed_only_once(self, store: RoomsStore) -> None:
        event, other = uuid.uuid4(), uuid.uuid4()
        async with store.transaction() as tx:
            assert await tx.mark_processed(event, at=T0) is True
            assert await tx.mark_processed(event, at=T0) is False
        async with store.transaction() as tx:
            assert await tx.mark_processed(event, at=T0 + HOUR) is False
            assert await tx.mark_processed(other, at=T0 + HOUR) is True

    # events

    async def test_events_emitted_in_a_committed_transaction_are_kept_in_order(self, store: RoomsStore) -> None:
        general, random = a_room("general"), a_room("random")
        first, second, third = an_event(general), an_event(random), an_event(general)
        async with store.transaction() as tx:
            await tx.add_room(general)
            await tx.emit(first, topic=ROOMS_EVENTS.name)
            await tx.emit(second, topic=ROOMS_EVENTS.name)
        async with store.transaction() as tx:
            await tx.emit(third, topic=ROOMS_EVENTS.name)
        emitted = await self.emitted(store)
        assert ids_of(emitted) == [first.id, second.id, third.id]
        assert [envelope.model_dump() for envelope in emitted] == [e.model_dump() for e in (first, second, third)]

    async def test_events_emitted_in_a_rolled_back_transaction_are_discarded(self, store: RoomsStore) -> None:
        general, random = a_room("general"), a_room("random")
        kept, discarded = an_event(general), an_event(random)
        async with store.transaction() as tx:
            await tx.emit(kept, topic=ROOMS_EVENTS.name)

        async def work(tx: Tx) -> None:
            await tx.add_room(random)
            await tx.emit(discarded, topic=ROOMS_EVENTS.name)

        await roll_back(store, work)
        assert ids_of(await self.emitted(store)) == [kept.id]
