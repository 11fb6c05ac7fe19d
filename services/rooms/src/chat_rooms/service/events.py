"""Room events: each change raises the room's version by one and stamps the event with it."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from chat_contracts.base import Contract
from chat_contracts.envelope import Envelope
from chat_contracts.topics import ROOMS_EVENTS, SOCIAL_EVENTS
from chat_rooms.domain.model import Room
from chat_rooms.service.ports import Tx
from chat_runtime.logging import current_correlation_id

SOURCE = "rooms"


async def room_event(tx: Tx, room: Room, event_type: type[Contract], now: datetime, **fields: Any) -> Room:
    """Bump the room's version, emit ``event_type`` stamped with it, and return the bumped room (not yet saved)."""
    bumped = replace(room, version=room.version + 1, updated_at=now)
    data = event_type.model_validate({"room_id": room.id, "room_version": bumped.version, "occurred_at": now, **fields})
    await tx.emit(_wrap(data, ROOMS_EVENTS.key_of(data)), topic=ROOMS_EVENTS.name)
    return bumped


async def first_event(tx: Tx, room: Room, event_type: type[Contract], now: datetime, **fields: Any) -> None:
    """Emit the event that creates a room, at the room's current version (1)."""
    data = event_type.model_validate({"room_id": room.id, "room_version": room.version, "occurred_at": now, **fields})
    await tx.emit(_wrap(data, ROOMS_EVENTS.key_of(data)), topic=ROOMS_EVENTS.name)


async def social_event(tx: Tx, event_type: type[Contract], now: datetime, **fields: Any) -> None:
    data = event_type.model_validate({"occurred_at": now, **fields})
    await tx.emit(_wrap(data, SOCIAL_EVENTS.key_of(data)), topic=SOCIAL_EVENTS.name)


def _wrap(data: Contract, key: str) -> Envelope:
    return Envelope.wrap(data, source=SOURCE, key=key, correlation_id=current_correlation_id())
