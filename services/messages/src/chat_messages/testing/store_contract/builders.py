"""The messages, changes and activity the store contract stores, and the instants they carry: shared by every area
of the suite and by the adapters' own tests (a store's test module builds its extra cases with them).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta

from chat_messages.domain.activity import Activity, ActivityKind
from chat_messages.domain.model import Change, Message, message_id_for
from chat_messages.service.ports import MessageStore

T0 = datetime(2030, 1, 1, tzinfo=UTC)
"""A fixed instant."""
SECOND = timedelta(seconds=1)
US = timedelta(microseconds=1)


def ids(count: int) -> list[uuid.UUID]:
    """``count`` ids in ascending order."""
    return sorted(uuid.uuid4() for _ in range(count))


def a_message(
    room_id: uuid.UUID,
    seq: int,
    *,
    body: str | None = None,
    tokens: Sequence[str] | None = None,
    sender_id: uuid.UUID | None = None,
    at: datetime | None = None,
    reply_to: uuid.UUID | None = None,
    client_msg_id: str | None = None,
) -> Message:
    """Message ``seq`` of ``room_id``, sent ``seq`` seconds after T0 unless ``at`` says otherwise; its id is the one
    its client_msg_id derives."""
    body = f"message {seq}" if body is None else body
    client_msg_id = client_msg_id or f"client-{seq}-{uuid.uuid4().hex[:8]}"
    return Message(
        id=message_id_for(room_id, client_msg_id),
        room_id=room_id,
        seq=seq,
        sender_id=sender_id or uuid.uuid4(),
        client_msg_id=client_msg_id,
        body=body,
        created_at=T0 + seq * SECOND if at is None else at,
        tokens=tuple(body.lower().split()) if tokens is None else tuple(tokens),
        reply_to=reply_to,
    )


async def insert(store: MessageStore, *messages: Message) -> None:
    for message in messages:
        assert await store.insert_message(message) == "inserted"


async def a_room_of(store: MessageStore, count: int, *, room_id: uuid.UUID | None = None) -> list[Message]:
    """``count`` stored messages with seqs 1..count in one room."""
    room_id = room_id or uuid.uuid4()
    messages = [a_message(room_id, seq) for seq in range(1, count + 1)]
    await insert(store, *messages)
    return messages


def an_edit(body: str, *, request_id: str | None = None, at: datetime = T0 + timedelta(hours=1)) -> Change:
    return Change(
        request_id=request_id or f"edit-{uuid.uuid4()}", at=at, edit_body=body, edit_tokens=tuple(body.lower().split())
    )


def a_deletion(by: uuid.UUID, *, request_id: str | None = None, at: datetime = T0 + timedelta(hours=2)) -> Change:
    return Change(request_id=request_id or f"delete-{uuid.uuid4()}", at=at, delete_by=by)


def a_reaction(emoji: str, user_id: uuid.UUID, action: str = "add", *, request_id: str | None = None) -> Change:
    assert action in ("add", "remove")
    return Change(
        request_id=request_id or f"react-{uuid.uuid4()}",
        at=T0 + timedelta(hours=3),
        reaction=(emoji, user_id, "add" if action == "add" else "remove"),
    )


def seqs(messages: Iterable[Message]) -> list[int]:
    return [message.seq for message in messages]


def an_activity(
    room_id: uuid.UUID,
    room_version: int,
    after_seq: int,
    *,
    kind: ActivityKind = "joined",
    at: datetime | None = None,
    name: str | None = None,
) -> Activity:
    """Version ``room_version`` of ``room_id``, after message ``after_seq``, ``room_version`` seconds after T0."""
    return Activity(
        room_id=room_id,
        room_version=room_version,
        kind=kind,
        after_seq=after_seq,
        occurred_at=T0 + room_version * SECOND if at is None else at,
        user_id=None if kind == "renamed" else uuid.uuid4(),
        by=uuid.uuid4() if kind in ("kicked", "banned", "renamed") else None,
        name=name,
    )


def versions(activity: Iterable[Activity]) -> list[int]:
    return [a.room_version for a in activity]
