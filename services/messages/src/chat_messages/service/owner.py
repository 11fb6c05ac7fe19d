"""What the owner of a room keeps in memory: the instance that consumes a room's partition of
chat.messages.commands is the only one that writes its messages (decisions/0011).

Per room it keeps the next seq, the room's state and the memberships it has looked up (both read from the
projection that ``service/projection.py`` writes), each sender's send budget, and the highest seq whose head
document is not yet written. Nothing here is the truth: the store is. The seq is a guess that the unique index on
``(room_id, seq)`` checks at every insert (a stale owner after a rebalance is refused and reloads); the room and
its memberships are dropped and read again whenever a room event says they changed (``stale``), and a command
that saw the room at a newer version than the one kept waits for the projection to reach it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import OrderedDict
from collections.abc import Collection
from dataclasses import dataclass, field

from chat_messages.domain.model import Member, RoomState
from chat_messages.service.ports import MessageStore

MAX_ROOMS = 20_000
"""Rooms kept in memory; the least recently used is forgotten first (and read again when it is next used)."""
MAX_MEMBERS_PER_ROOM = 5_000
"""Memberships kept per room; beyond it the room's are dropped and looked up again."""
PROJECTION_WAIT_SECONDS = 3.0
"""How long a command waits for the projection to reach the room version it was issued at."""
PROJECTION_POLL_SECONDS = 0.05
HEAD_FLUSH_SECONDS = 1.0
"""How long a room's head document may lag behind its stored messages (``MessageStore.last_seq`` walks the rest)."""
HEAD_STEP = 256
"""How many seqs it may lag: a room that moved this far since its head was written has it written at once."""


@dataclass
class Budget:
    """A sender's token bucket in one room."""

    tokens: float
    at: float


@dataclass
class RoomLedger:
    room_id: uuid.UUID
    state: RoomState | None
    """The projected room (None: the projection has never heard of it)."""
    next_seq: int
    members: dict[uuid.UUID, Member | None] = field(default_factory=dict)
    """Memberships looked up since the state was read: a member, or None for someone who is not one."""
    budgets: dict[uuid.UUID, Budget] = field(default_factory=dict)
    stale_at: int = 0
    """A room event of this version was seen: the state and memberships are older and must be read again."""
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    """Held while the room's sends are planned and written, so two batches never assign the same seqs."""
    head_written: int = 0
    """The seq this instance last wrote to the room's head document (or found stored when it loaded the room)."""

    @property
    def version(self) -> int:
        return self.state.version if self.state is not None else 0

    @property
    def last_seq(self) -> int:
        return self.next_seq - 1

    def unknown(self, users: Collection[uuid.UUID]) -> list[uuid.UUID]:
        return [user for user in dict.fromkeys(users) if user not in self.members]

    def member(self, user_id: uuid.UUID) -> Member | None:
        return self.members.get(user_id)

    def take(self, user_id: uuid.UUID, *, now: float, capacity: float, per_second: float) -> float:
        """Take one token from the sender's budget: 0.0 when taken, else the seconds until one is there."""
        budget = self.budgets.get(user_id)
        if budget is None:
            budget = self.budgets[user_id] = Budget(tokens=capacity, at=now)
        budget.tokens = min(capacity, budget.tokens + max(0.0, now - budget.at) * per_second)
        budget.at = max(budget.at, now)
        if budget.tokens >= 1:
            budget.tokens -= 1
            return 0.0
        return (1 - budget.tokens) / per_second


class RoomOwner:
    """The rooms this instance writes, by room id."""

    def __init__(self, store: MessageStore, *, max_rooms: int = MAX_ROOMS) -> None:
        self.store = store
        self._rooms: OrderedDict[uuid.UUID, RoomLedger] = OrderedDict()
        self._max_rooms = max_rooms
        self._heads: dict[uuid.UUID, int] = {}
        """Rooms whose head document is behind, and the seq it should have."""
        self._heads_due = asyncio.Event()
        """Set when a room's head is ``HEAD_STEP`` behind: written before ``HEAD_FLUSH_SECONDS`` are up."""
        self._projection = asyncio.Condition()
        self.stored_count = 0
        """Messages this instance stored (tests and metrics)."""

    def __len__(self) -> int:
        return len(self._rooms)

    async def ledger(self, room_id: uuid.UUID, *, seen_at: int | None = None) -> RoomLedger:
        """The room's ledger, with a state no older than the last room event seen and than ``seen_at`` (the room
        version at which the gateway saw the sender as a member), waiting up to ``PROJECTION_WAIT_SECONDS`` for
        the projection to get there."""
        ledger = self._rooms.get(room_id)
        if ledger is None:
            state = await self.store.room(room_id)
            next_seq = await self.store.last_seq(room_id) + 1
            ledger = self._rooms.get(room_id)  # another batch may have loaded it meanwhile
            if ledger is None:
                ledger = RoomLedger(room_id=room_id, state=state, next_seq=next_seq, head_written=next_seq - 1)
                self._remember(ledger)
        else:
            self._rooms.move_to_end(room_id)
        wanted = max(ledger.stale_at, seen_at or 0)
        if ledger.version < wanted:
            async with ledger.lock:  # never while a batch of the room is being planned and written
                if ledger.version < wanted:
                    await self._refresh(ledger, wanted)
        return ledger

    async def _refresh(self, ledger: RoomLedger, wanted: int) -> None:
        deadline = time.monotonic() + PROJECTION_WAIT_SECONDS
        while True:
            state = await self.store.room(ledger.room_id)
            version = state.version if state is not None else 0
            if version >= wanted or time.monotonic() >= deadline:
                break
            async with self._projection:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._projection.wait(), PROJECTION_POLL_SECONDS)
        # Even when the projection did not get there in time, what it has now is the best there is: waiting again
        # for every later command would stall the room.
        ledger.state = state
        ledger.members.clear()
        ledger.stale_at = 0

    async def load_members(self, ledger: RoomLedger, users: Collection[uuid.UUID]) -> None:
        """Look up the memberships of ``users`` the ledger does not know yet, in one read."""
        unknown = ledger.unknown(users)
        if not unknown:
            return
        if len(ledger.members) + len(unknown) > MAX_MEMBERS_PER_ROOM:
            ledger.members.clear()
        found = await self.store.members_of(ledger.room_id, unknown)
        for user in unknown:
            ledger.members[user] = found.get(user)

    def stale(self, room_id: uuid.UUID, version: int) -> None:
        """A room event of ``version`` happened: what is kept of the room is older, read it again when next used."""
        ledger = self._rooms.get(room_id)
        if ledger is not None and version > ledger.version:
            ledger.stale_at = max(ledger.stale_at, version)

    async def projected(self, room_id: uuid.UUID, version: int) -> None:
        """This instance's projection stored ``version`` of the room: wake commands waiting for it."""
        self.stale(room_id, version)
        async with self._projection:
            self._projection.notify_all()

    def forget(self, room_id: uuid.UUID) -> None:
        self._rooms.pop(room_id, None)
        self._heads.pop(room_id, None)

    async def reload_seq(self, ledger: RoomLedger) -> None:
        """Another instance stored a seq this one expected to use: read the room's last seq again."""
        ledger.next_seq = max(ledger.next_seq, await self.store.last_seq(ledger.room_id) + 1)

    def stored(self, ledger: RoomLedger, seq: int) -> None:
        ledger.next_seq = max(ledger.next_seq, seq + 1)
        self._heads[ledger.room_id] = max(seq, self._heads.get(ledger.room_id, 0))
        if seq - ledger.head_written >= HEAD_STEP:
            self._heads_due.set()
        self.stored_count += 1

    async def heads_due(self) -> None:
        """Returns when the head documents are to be written: ``HEAD_FLUSH_SECONDS`` after the last time, or as
        soon as a room moved ``HEAD_STEP`` seqs past its head. Each write costs the store a transaction per room,
        so they are rare; a reader walks the few seqs a head is behind (``MessageStore.last_seq``)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._heads_due.wait(), HEAD_FLUSH_SECONDS)
        self._heads_due.clear()

    async def flush_heads(self) -> None:
        """Write the head documents that are behind (one write for every room that moved)."""
        if self._heads:
            heads, self._heads = self._heads, {}
            try:
                await self.store.advance_heads(heads)
            except BaseException:
                for room_id, seq in heads.items():  # not written: keep them for the next flush
                    self._heads[room_id] = max(seq, self._heads.get(room_id, 0))
                raise
            for room_id, seq in heads.items():
                ledger = self._rooms.get(room_id)
                if ledger is not None:
                    ledger.head_written = max(ledger.head_written, seq)

    def _remember(self, ledger: RoomLedger) -> None:
        self._rooms[ledger.room_id] = ledger
        while len(self._rooms) > self._max_rooms:
            self._rooms.popitem(last=False)  # read again when next used; its pending head stays in _heads
