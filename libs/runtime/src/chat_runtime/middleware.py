"""ASGI middleware: a correlation id per request, bound for logging and echoed back (and, when tracing is on, the
request's server span)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send
from structlog.contextvars import bound_contextvars

from chat_runtime import tracing
from chat_runtime.logging import CORRELATION_HEADER, CORRELATION_KEY, new_correlation_id

_ACCEPTABLE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_HEADER = CORRELATION_HEADER.lower().encode()


class CorrelationIdMiddleware:
    """Take a well-formed ``X-Correlation-ID`` from the caller or make one; never trust odd values.

    When tracing is on, each request under ``/api/`` runs in a server span (probes and scrapes would only bury the
    requests worth reading), named by ``route_of``'s template for the route that served it.
    """

    def __init__(self, app: ASGIApp, *, route_of: Callable[[Scope], str] | None = None) -> None:
        self.app = app
        self.route_of = route_of

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

        spans = tracing.spans()
        with bound_contextvars(**{CORRELATION_KEY: correlation_id}):
            if spans is None or scope["type"] != "http" or not scope.get("path", "").startswith("/api/"):
                await self.app(scope, receive, send_with_header)
            else:
                await spans.serve_http(
                    self.app, scope, receive, send_with_header, correlation_id=correlation_id, route_of=self.route_of
                )


DEFAULT_MAX_BODY_BYTES = 64 * 1024
_PARAM = re.compile(r"\{[^/{}]+\}")


class _BodyTooLarge(Exception):
    pass


class BodySizeLimitMiddleware:
    """Refuse request bodies over a limit with 413 (problem+json), by Content-Length or while streaming.

    ``overrides`` maps paths to their own limit (an avatar upload may be larger than a JSON body); a path may
    hold ``{name}`` placeholders that match one path segment (``/api/messages/rooms/{room_id}/attachments``).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_bytes: int = DEFAULT_MAX_BODY_BYTES,
        overrides: Mapping[str, int] | None = None,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        given = dict(overrides or {})
        self.overrides = {path: limit for path, limit in given.items() if "{" not in path}
        self.templates = [
            (re.compile("[^/]+".join(re.escape(part) for part in _PARAM.split(path)) + r"\Z"), limit)
            for path, limit in given.items()
            if "{" in path
        ]

    def limit_for(self, path: str) -> int:
        """The limit for ``path``: an exact override, else a matching template, else the default."""
        limit = self.overrides.get(path)
        if limit is None:
            limit = next((n for pattern, n in self.templates if pattern.match(path)), self.max_bytes)
        return limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope.get("path", ""))
        declared = next((v for k, v in scope.get("headers", ()) if k == b"content-length"), None)
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await self._refuse(scope, receive, send, limit)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _BodyTooLarge
            return message

        try:
            await self.app(scope, counting_receive, send)
        except _BodyTooLarge:
            await self._refuse(scope, receive, send, limit)

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        from chat_runtime.problems import problem_response

        response = problem_response(
            413,
            "payload_too_large",
            f"The request body is larger than {limit} bytes.",
            instance=scope.get("path"),
        )
        await response(scope, receive, send)


class NulCharacterGuard:
    """Refuse the NUL character (U+0000) anywhere in a request with a 422 problem before a handler sees it.

    PostgreSQL text cannot hold it (the driver raises, which would be a 500) and no field of this API means one.
    Checked: the path, the query string, and every key and string of a JSON body (parsed, so the text ``\\u0000``
    written as an escaped backslash is still accepted). Other bodies (uploads) pass untouched.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw_path = scope.get("raw_path") or scope.get("path", "").encode()
        if b"%00" in scope.get("query_string", b"") or b"%00" in raw_path or "\x00" in scope.get("path", ""):
            await self._refuse(scope, receive, send)
            return
        content_type = next((v for k, v in scope.get("headers", ()) if k == b"content-type"), b"")
        if b"json" not in content_type.lower():
            await self.app(scope, receive, send)
            return
        body = b""
        while True:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay([message], receive), send)
                return
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        if b"\\u0000" in body and _holds_nul(body):
            await self._refuse(scope, receive, send)
            return
        await self.app(scope, _replay([{"type": "http.request", "body": body, "more_body": False}], receive), send)

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send) -> None:
        from chat_runtime.problems import problem_response

        response = problem_response(
            422, "validation_failed", "The NUL character (U+0000) is not accepted.", instance=scope.get("path")
        )
        await response(scope, receive, send)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay


def _holds_nul(body: bytes) -> bool:
    try:
        document = json.loads(body)
    except ValueError:
        return False  # not JSON after all: the route's own validation answers
    stack = [document]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            if "\x00" in node:
                return True
        elif isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False
