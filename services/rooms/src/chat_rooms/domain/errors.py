"""Errors the rooms use cases raise; the HTTP layer turns each into a problem document with its code."""

from __future__ import annotations

from chat_runtime.errors import CodedError


class RoomsError(CodedError):
    """A refusal with a stable machine code and a message safe to show."""


class RoomNotFound(RoomsError):
    """No such room, or one the caller may not know exists."""

    def __init__(self) -> None:
        super().__init__("room_not_found", "No such room.", status=404)


class InvalidCursor(RoomsError):
    """A pagination cursor this API did not give out."""

    def __init__(self) -> None:
        super().__init__("invalid_cursor", "The cursor is not one this API gave out.", status=422)


class Conflict(Exception):
    """A unique key is taken (raised by stores): ``field`` names which (``dm_key``, ``membership``…)."""

    def __init__(self, field: str) -> None:
        super().__init__(field)
        self.field = field
