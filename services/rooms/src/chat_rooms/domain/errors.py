"""Errors the rooms use cases raise; the HTTP layer turns each into a problem document with its code."""

from __future__ import annotations

from chat_runtime.errors import CodedError


class RoomsError(CodedError):
    """A refusal with a stable machine code and a message safe to show."""


class Conflict(Exception):
    """A unique key is taken (raised by stores): ``field`` names which (``dm_key``, ``membership``…)."""

    def __init__(self, field: str) -> None:
        super().__init__(field)
        self.field = field
