"""Errors the use cases raise; the HTTP layer turns each into a problem document with its code."""

from __future__ import annotations

from chat_runtime.errors import CodedError


class AuthError(CodedError):
    """A refusal with a stable machine code and a message safe to show."""


class InvalidCredentials(AuthError):
    """Wrong email, username or password, or no such account: one answer, so accounts cannot be enumerated."""

    def __init__(self) -> None:
        super().__init__("invalid_credentials", "Wrong email, username or password.", status=401)


class InvalidCode(AuthError):
    """An email code that is wrong, expired, used up, or for an account that does not exist: one answer."""

    def __init__(self) -> None:
        super().__init__("invalid_code", "The code is wrong or has expired; request a new one.", status=400)


class Conflict(Exception):
    """A unique key is taken (raised by stores): ``field`` names which."""

    def __init__(self, field: str) -> None:
        super().__init__(field)
        self.field = field
