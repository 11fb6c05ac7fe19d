"""The store contract for retention: per-room policies, deleting old messages and scheduled purges; apart from the
rest, since it is the only area that removes messages.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from chat_messages.service.ports import MessageStore
from chat_messages.testing.store_contract.builders import T0, US, a_message, an_activity, ids, insert, seqs, versions


class RetentionContract:
    """How a ``MessageStore`` keeps retention policies and removes old messages."""

    async def test_a_retention_policy_is_set_listed_and_cleared(self, store: MessageStore) -> None:
        first, second = ids(2)
        assert await store.retention(first) is None
        await store.set_retention(first, 30)
        await store.set_retention(second, 7)
        await store.set_retention(second, 14)
        assert sorted(await store.retention_policies(), key=lambda p: p[1]) == [(second, 14), (first, 30)]
        await store.set_retention(first, None)
        assert await store.retention(first) is None
        assert await store.retention_policies() == [(second, 14)]

    async def test_sweeping_by_age_never_deletes_the_newest_message(self, store: MessageStore) -> None:
        room_id, other = ids(2)
        old = [a_message(room_id, seq, at=T0 + timedelta(minutes=seq)) for seq in (1, 2, 3)]
        await insert(store, *old, a_message(other, 1, at=T0))
        assert await store.delete_messages_before(room_id, T0 + timedelta(days=1)) == 2
        assert seqs(await store.history(room_id, limit=10, newest_first=False)) == [3]
        assert await store.last_seq(room_id) == 3
        assert seqs(await store.history(other, limit=10, newest_first=False)) == [1], "other rooms untouched"

    async def test_sweeping_by_age_deletes_the_rooms_older_activity_too(self, store: MessageStore) -> None:
        room_id, other = ids(2)
        cutoff = T0 + timedelta(days=1)
        await store.put_activity(an_activity(room_id, 2, 0, at=cutoff - US))
        await store.put_activity(an_activity(room_id, 3, 0, at=cutoff))
        await store.put_activity(an_activity(other, 2, 0, at=T0))
        assert await store.delete_messages_before(room_id, cutoff) == 0
        assert versions(await store.activity(room_id, limit=10)) == [3]
        assert versions(await store.activity(other, limit=10)) == [2], "other rooms untouched"

    async def test_a_purge_comes_due_at_its_time_and_is_forgotten_when_done(self, store: MessageStore) -> None:
        room_id = uuid.uuid4()
        await store.schedule_purge(room_id, T0 + timedelta(days=2))
        assert await store.due_purges(T0 + timedelta(days=1)) == []
        assert await store.due_purges(T0 + timedelta(days=2)) == [room_id]
        await store.purge_done(room_id)
        assert await store.due_purges(T0 + timedelta(days=3)) == []
