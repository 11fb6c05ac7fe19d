"""Opaque keyset-pagination cursors, for every service's list routes: the last row's sort key as base64url JSON.
A cursor says where the next page starts; clients pass it back as they got it and never build one.

``encode`` writes a key; ``decode`` reads one of a known size, and the ``text``, ``integer``, ``instant`` and
``identifier`` readers check each part. Anything else raises ``InvalidCursor``, which each service answers as its
own 422 ``invalid_cursor`` problem.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from datetime import datetime

Part = str | int


class InvalidCursor(ValueError):
    """A cursor this API did not give out."""


def encode(*key: Part) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(key)).encode()).rstrip(b"=").decode()


def decode(cursor: str, size: int) -> list[Part]:
    """The ``size`` parts of a cursor ``encode`` wrote."""
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise InvalidCursor(cursor) from None
    if not isinstance(raw, list) or len(raw) != size:
        raise InvalidCursor(cursor)
    if not all(isinstance(part, str | int) and not isinstance(part, bool) for part in raw):
        raise InvalidCursor(cursor)
    return raw


def text(part: Part) -> str:
    if not isinstance(part, str):
        raise InvalidCursor(part)
    return part


def integer(part: Part) -> int:
    if not isinstance(part, int):
        raise InvalidCursor(part)
    return part


def instant(part: Part) -> datetime:
    """An ISO 8601 instant with its offset (a naive one is not a cursor this API gave out)."""
    try:
        parsed = datetime.fromisoformat(text(part))
    except ValueError:
        raise InvalidCursor(part) from None
    if parsed.tzinfo is None:
        raise InvalidCursor(part)
    return parsed


def identifier(part: Part) -> uuid.UUID:
    try:
        return uuid.UUID(text(part))
    except ValueError:
        raise InvalidCursor(part) from None
