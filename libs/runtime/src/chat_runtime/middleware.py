"""ASGI middleware: a correlation id per request, bound for logging and echoed back."""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send
from structlog.contextvars import bound_contextvars

from chat_runtime.logging import CORRELATION_HEADER, CORRELATION_KEY, new_correlation_id

_ACCEPTABLE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_HEADER = CORRELATION_HEADER.lower().encode()


class CorrelationIdMiddleware:
    """Take a well-formed ``X-Correlation-ID`` from the caller or make one; never trust odd values."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        given = next((v.decode("latin-1") for k, v in scope.get("headers", ()) if k == _HEADER), "")
        correlation_id = given if _ACCEPTABLE.match(given) else new_correlation_id()

        async def send_with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"].append((_HEADER, correlation_id.encode()))
            await send(message)

        with bound_contextvars(**{CORRELATION_KEY: correlation_id}):
            await self.app(scope, receive, send_with_header)
