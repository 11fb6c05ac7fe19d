"""Refusals: a command rejection (answered on the bus) and a request error (answered over HTTP)."""

from __future__ import annotations

from chat_contracts.messages_events import RejectionCode
from chat_runtime.errors import CodedError


class Rejection(Exception):
    """A command the service refuses; becomes a ``message.rejected`` event addressed to the sender."""

    def __init__(self, code: RejectionCode, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.code: RejectionCode = code
        self.message = message
        self.retry_after = retry_after


class MessagesError(CodedError):
    """An HTTP request the service refuses, with a stable code."""


class RoomNotFound(MessagesError):
    """No such room, or one the caller is not a member of."""

    def __init__(self) -> None:
        super().__init__("room_not_found", "No such room.", status=404)


class AttachmentNotFound(MessagesError):
    """No such file in this room."""

    def __init__(self) -> None:
        super().__init__("attachment_not_found", "No such file.", status=404)
