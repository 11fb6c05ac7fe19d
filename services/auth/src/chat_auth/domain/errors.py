"""Errors the use cases raise; the HTTP layer turns each into a problem document with its code."""

from __future__ import annotations

from chat_runtime.errors import CodedError


class AuthError(CodedError):
    """A refusal with a stable machine code and a message safe to show."""


class Conflict(Exception):
    """A unique key is taken (raised by stores): ``field`` names which."""

    def __init__(self, field: str) -> None:
        super().__init__(field)
        self.field = field
