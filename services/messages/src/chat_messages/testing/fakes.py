"""In-memory stand-ins for unit tests: a message store with the same promises as MongoDB's, a clock, and a
publisher that records what the service announced."""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from chat_contracts.base import Contract
from chat_contracts.envelope import Envelope
from chat_contracts.spec import TopicSpec
from chat_messages.domain.activity import Activity
from chat_messages.domain.model import Change, Edit, MarkerKind, Markers, Member, Message, RoomState
from chat_messages.service.ports import InsertOutcome, InsertResult, require_derived_ids
from chat_runtime.bus.port import Outgoing

APPLIED_KEPT = 64


@dataclass
class _Stored:
    message: Message
    applied: list[str] = field(default_factory=list)


class FakeMessageStore:
    def __init__(self) -> None:
        self.rooms: dict[uuid.UUID, RoomState] = {}
        self.members_: dict[tuple[uuid.UUID, uuid.UUID], Member] = {}
        self.users: dict[uuid.UUID, str] = {}
        self.messages: dict[uuid.UUID, _Stored] = {}
        self.markers_: dict[tuple[uuid.UUID, uuid.UUID], Markers] = {}
        self.heads: dict[uuid.UUID, int] = {}
        self.writes = 0
        """Insert and head writes made (tests count what a batch costs)."""
        self.retention_days: dict[uuid.UUID, int] = {}
        self.purges: dict[uuid.UUID, datetime] = {}
        self.activity_: dict[tuple[uuid.UUID, int], Activity] = {}
        self._lock = asyncio.Lock()

    async def room(self, room_id: uuid.UUID) -> RoomState | None:
        return self.rooms.get(room_id)

    async def apply_room(self, state: RoomState) -> bool:
        current = self.rooms.get(state.room_id)
        if current is not None and current.version >= state.version:
            return False
        self.rooms[state.room_id] = state
        return True

    async def member(self, room_id: uuid.UUID, user_id: uuid.UUID) -> Member | None:
        return self.members_.get((room_id, user_id))

    async def put_member(self, member: Member) -> None:
        self.members_[(member.room_id, member.user_id)] = member

    async def remove_member(self, room_id: uuid.UUID, user_id: uuid.UUID) -> None:
        self.members_.pop((room_id, user_id), None)

    async def memberships(self, user_id: uuid.UUID) -> Sequence[Member]:
        return [m for m in self.members_.values() if m.user_id == user_id]

    async def members(self, room_id: uuid.UUID) -> Sequence[Member]:
        return [m for m in self.members_.values() if m.room_id == room_id]

    async def members_of(self, room_id: uuid.UUID, user_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, Member]:
        return {u: m for u in user_ids if (m := self.members_.get((room_id, u))) is not None}

    async def drop_room(self, room_id: uuid.UUID) -> None:
        self.messages = {k: v for k, v in self.messages.items() if v.message.room_id != room_id}
        self.members_ = {k: v for k, v in self.members_.items() if k[0] != room_id}
        self.markers_ = {k: v for k, v in self.markers_.items() if k[0] != room_id}
        self.activity_ = {k: v for k, v in self.activity_.items() if k[0] != room_id}

    async def put_activity(self, activity: Activity) -> None:
        self.activity_.setdefault((activity.room_id, activity.room_version), activity)

    async def activity(
        self,
        room_id: uuid.UUID,
        *,
        from_seq: int = 0,
        after_seq: int | None = None,
        before_seq: int | None = None,
        after_version: int = 0,
        limit: int,
    ) -> Sequence[Activity]:
        found = [
            a
            for (room, version), a in sorted(self.activity_.items(), key=lambda item: item[0][1])
            if room == room_id
            and version > after_version
            and a.after_seq >= from_seq
            and (after_seq is None or a.after_seq > after_seq)
            and (before_seq is None or a.after_seq < before_seq)
        ]
        return found[:limit]

    async def put_user(self, user_id: uuid.UUID, username: str) -> None:
        key = username.casefold()
        for other, name in list(self.users.items()):
            if other != user_id and name.casefold() == key:
                del self.users[other]
        self.users[user_id] = username

    async def users_by_username(self, usernames: Sequence[str]) -> dict[str, uuid.UUID]:
        wanted = {name.casefold() for name in usernames}
        return {name.casefold(): user_id for user_id, name in self.users.items() if name.casefold() in wanted}

    async def forget_user(self, user_id: uuid.UUID) -> None:
        self.users.pop(user_id, None)

    def _room_messages(self, room_id: uuid.UUID) -> list[Message]:
        return sorted((s.message for s in self.messages.values() if s.message.room_id == room_id), key=lambda m: m.seq)

    async def last_seq(self, room_id: uuid.UUID) -> int:
        return max((m.seq for m in self._room_messages(room_id)), default=0)

    async def insert_message(self, message: Message) -> InsertResult:
        outcome = await self.insert_messages([message])
        return "inserted" if outcome.inserted == 1 else (outcome.refused or "duplicate_seq")

    async def insert_messages(self, messages: Sequence[Message]) -> InsertOutcome:
        require_derived_ids(messages)
        async with self._lock:
            self.writes += 1
            for inserted, message in enumerate(messages):
                same_room = [s.message for s in self.messages.values() if s.message.room_id == message.room_id]
                if any(m.client_msg_id == message.client_msg_id for m in same_room):
                    return InsertOutcome(inserted=inserted, refused="duplicate_client_msg_id")
                if any(m.seq == message.seq for m in same_room):
                    return InsertOutcome(inserted=inserted, refused="duplicate_seq")
                self.messages[message.id] = _Stored(message)
            return InsertOutcome(inserted=len(messages))

    async def advance_heads(self, heads: Mapping[uuid.UUID, int]) -> None:
        self.writes += 1
        for room_id, seq in heads.items():
            self.heads[room_id] = max(seq, self.heads.get(room_id, 0))

    async def message(self, room_id: uuid.UUID, message_id: uuid.UUID) -> Message | None:
        stored = self.messages.get(message_id)
        return stored.message if stored is not None and stored.message.room_id == room_id else None

    async def message_by_client_msg_id(self, room_id: uuid.UUID, client_msg_id: str) -> Message | None:
        return next(
            (
                s.message
                for s in self.messages.values()
                if s.message.room_id == room_id and s.message.client_msg_id == client_msg_id
            ),
            None,
        )

    async def apply_change(
        self, room_id: uuid.UUID, message_id: uuid.UUID, change: Change
    ) -> tuple[Message, bool] | None:
        async with self._lock:
            stored = self.messages.get(message_id)
            if stored is None or stored.message.room_id != room_id:
                return None
            if change.request_id in stored.applied:
                return stored.message, False
            if change.delete_by is None and stored.message.deleted:
                return stored.message, False
            message = stored.message
            if change.edit_body is not None:
                message = replace(
                    message,
                    body=change.edit_body,
                    tokens=change.edit_tokens,
                    edited_at=change.at,
                    edits=(*message.edits, _edit(message.body, message.edited_at or message.created_at)),
                )
            elif change.delete_by is not None:
                message = replace(
                    message,
                    body="",
                    tokens=(),
                    mentions=(),
                    mentions_room=False,
                    reactions={},
                    edits=(),
                    attachment_ids=(),
                    deleted_at=change.at,
                    deleted_by=change.delete_by,
                )
            elif change.reaction is not None:
                emoji, user_id, action = change.reaction
                reactions = dict(message.reactions)
                users = reactions.get(emoji, ())
                if action == "add" and user_id not in users:
                    users = (*users, user_id)
                elif action == "remove":
                    users = tuple(u for u in users if u != user_id)
                reactions[emoji] = users
                message = replace(message, reactions={k: v for k, v in reactions.items() if v})
            message = replace(message, version=message.version + 1)
            stored.message = message
            stored.applied = [*stored.applied, change.request_id][-APPLIED_KEPT:]
            return message, True

    async def history(
        self,
        room_id: uuid.UUID,
        *,
        before_seq: int | None = None,
        after_seq: int | None = None,
        min_seq: int = 0,
        limit: int,
        newest_first: bool,
    ) -> Sequence[Message]:
        found = [
            m
            for m in self._room_messages(room_id)
            if m.seq > min_seq
            and (before_seq is None or m.seq < before_seq)
            and (after_seq is None or m.seq > after_seq)
        ]
        return list(reversed(found))[:limit] if newest_first else found[:limit]

    async def replies(self, room_id: uuid.UUID, message_id: uuid.UUID, *, limit: int) -> Sequence[Message]:
        return [m for m in self._room_messages(room_id) if m.reply_to == message_id][:limit]

    async def search(
        self,
        rooms: Sequence[tuple[uuid.UUID, int]],
        tokens: Sequence[str],
        *,
        limit: int,
        before: tuple[datetime, int] | None,
    ) -> Sequence[Message]:
        scopes = dict(rooms)
        found = [
            s.message
            for s in self.messages.values()
            if s.message.room_id in scopes
            and s.message.seq > scopes[s.message.room_id]
            and not s.message.deleted
            and all(t in s.message.tokens for t in tokens)
            and (before is None or (s.message.created_at, s.message.seq) < before)
        ]
        return sorted(found, key=lambda m: (m.created_at, m.seq), reverse=True)[:limit]

    async def move_marker(self, room_id: uuid.UUID, user_id: uuid.UUID, kind: MarkerKind, seq: int) -> bool:
        current = self.markers_.get((room_id, user_id), Markers(room_id=room_id, user_id=user_id))
        if kind == "read" and seq > current.read_seq:
            self.markers_[(room_id, user_id)] = replace(current, read_seq=seq)
            return True
        if kind == "delivered" and seq > current.delivered_seq:
            self.markers_[(room_id, user_id)] = replace(current, delivered_seq=seq)
            return True
        return False

    async def markers(self, room_id: uuid.UUID) -> Sequence[Markers]:
        return [m for k, m in self.markers_.items() if k[0] == room_id]

    async def marker(self, room_id: uuid.UUID, user_id: uuid.UUID) -> Markers:
        return self.markers_.get((room_id, user_id), Markers(room_id=room_id, user_id=user_id))

    async def count_unread(
        self, room_id: uuid.UUID, user_id: uuid.UUID, *, after_seq: int, up_to_seq: int | None = None
    ) -> int:
        top = up_to_seq if up_to_seq is not None else sys.maxsize
        return sum(
            1
            for m in self._room_messages(room_id)
            if after_seq < m.seq <= top and m.sender_id != user_id and not m.deleted
        )

    async def count_unread_mentions(
        self, room_id: uuid.UUID, user_id: uuid.UUID, *, after_seq: int, up_to_seq: int | None = None
    ) -> int:
        top = up_to_seq if up_to_seq is not None else sys.maxsize
        return sum(
            1
            for m in self._room_messages(room_id)
            if after_seq < m.seq <= top
            and m.sender_id != user_id
            and not m.deleted
            and (m.mentions_room or any(x.user_id == user_id for x in m.mentions))
        )

    async def set_retention(self, room_id: uuid.UUID, days: int | None) -> None:
        if days is None:
            self.retention_days.pop(room_id, None)
        else:
            self.retention_days[room_id] = days

    async def retention(self, room_id: uuid.UUID) -> int | None:
        return self.retention_days.get(room_id)

    async def retention_policies(self) -> Sequence[tuple[uuid.UUID, int]]:
        return list(self.retention_days.items())

    async def delete_messages_before(self, room_id: uuid.UUID, before: datetime) -> int:
        last = await self.last_seq(room_id)
        doomed = [
            k
            for k, s in self.messages.items()
            if s.message.room_id == room_id and s.message.created_at < before and s.message.seq < last
        ]
        for key in doomed:
            del self.messages[key]
        self.activity_ = {k: a for k, a in self.activity_.items() if a.room_id != room_id or a.occurred_at >= before}
        return len(doomed)

    async def schedule_purge(self, room_id: uuid.UUID, at: datetime) -> None:
        self.purges[room_id] = at

    async def due_purges(self, now: datetime) -> Sequence[uuid.UUID]:
        return [room_id for room_id, at in self.purges.items() if at <= now]

    async def purge_done(self, room_id: uuid.UUID) -> None:
        self.purges.pop(room_id, None)


def _edit(body: str, at: datetime) -> Edit:
    return Edit(body=body, edited_at=at)


class RecordingPublisher:
    """Keeps every published envelope; tests read ``events`` (and ``batches``: how many publish calls)."""

    def __init__(self) -> None:
        self.events: list[Envelope] = []
        self.batches = 0

    async def publish(
        self, spec: TopicSpec, data: Contract, *, key: str | None = None, correlation_id: str | None = None, source: str
    ) -> Envelope:
        self.batches += 1
        envelope = Envelope.wrap(data, source=source, key=key or spec.key_of(data), correlation_id=correlation_id)
        self.events.append(envelope)
        return envelope

    async def publish_all(self, messages: Sequence[Outgoing], *, source: str) -> list[Envelope]:
        self.batches += 1
        envelopes = [
            Envelope.wrap(m.data, source=source, key=m.key or m.spec.key_of(m.data), correlation_id=m.correlation_id)
            for m in messages
        ]
        self.events.extend(envelopes)
        return envelopes


class FakeClock:
    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 11, 21, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)
