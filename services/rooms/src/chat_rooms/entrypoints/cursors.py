"""The rooms API's cursors (``chat_runtime.cursors``): by name for the directory, by time for my rooms and members."""

from __future__ import annotations

import uuid
from datetime import datetime

from chat_rooms.domain.errors import InvalidCursor
from chat_runtime import cursors
from chat_runtime.cursors import encode

__all__ = ["encode", "name_cursor", "time_cursor"]


def name_cursor(cursor: str | None) -> tuple[str, uuid.UUID] | None:
    if cursor is None:
        return None
    try:
        name, room_id = cursors.decode(cursor, 2)
        return cursors.text(name), cursors.identifier(room_id)
    except cursors.InvalidCursor:
        raise InvalidCursor() from None


def time_cursor(cursor: str | None) -> tuple[datetime, uuid.UUID] | None:
    if cursor is None:
        return None
    try:
        when, ident = cursors.decode(cursor, 2)
        return cursors.instant(when), cursors.identifier(ident)
    except cursors.InvalidCursor:
        raise InvalidCursor() from None
