"""Opaque keyset-pagination cursors: base64url JSON of the last row's sort key."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from datetime import datetime

from chat_rooms.domain.errors import InvalidCursor


def encode(*parts: str) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(parts)).encode()).rstrip(b"=").decode()


def _decode(cursor: str) -> list[str]:
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise InvalidCursor() from None
    if not isinstance(raw, list) or len(raw) != 2 or not all(isinstance(p, str) for p in raw):
        raise InvalidCursor()
    return raw


def name_cursor(cursor: str | None) -> tuple[str, uuid.UUID] | None:
    if cursor is None:
        return None
    name, room_id = _decode(cursor)
    try:
        return name, uuid.UUID(room_id)
    except ValueError:
        raise InvalidCursor() from None


def time_cursor(cursor: str | None) -> tuple[datetime, uuid.UUID] | None:
    if cursor is None:
        return None
    when, ident = _decode(cursor)
    try:
        parsed = datetime.fromisoformat(when)
        if parsed.tzinfo is None:
            raise ValueError(when)
        return parsed, uuid.UUID(ident)
    except ValueError:
        raise InvalidCursor() from None
