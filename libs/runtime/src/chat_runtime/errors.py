"""The one error shape every layer may raise: a stable code, a safe message, an HTTP status.

REST turns it into a problem document, Socket.IO into ``{ok: false, error: {code, message, retry_after?}}``.
It has no web dependencies, so domain code can raise it.
"""

from __future__ import annotations

from typing import Any


class CodedError(Exception):
    """A refusal with a machine ``code`` (stable, documented) and a ``message`` safe to show to the caller."""

    status: int = 400

    def __init__(
        self,
        code: str,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        if status is not None:
            self.status = status
        self.retry_after = retry_after
        self.extra = extra
