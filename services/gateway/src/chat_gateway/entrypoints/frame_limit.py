"""The frame size limit on long-polling, in front of the Socket.IO app: a frame over it ends that socket only, and
says so. (On websockets, ``chat_gateway.adapters.fanout.FastSocket`` enforces the same limit the same way while it
reads frames; wrapping a websocket's ASGI calls here would hide uvicorn's protocol from it.)

python-engineio has a limit of its own (``max_http_buffer_size``) but answers it in ways a client cannot tell from
any other failure: a websocket is closed with the normal code 1000, and a long-polling POST gets a bare 400 while
its session is closed on the poll the server holds. Here, on either transport, the socket first gets
``session:ended {reason: frame_too_large}`` (the code every Socket.IO client reads the same way) and is then closed:

- websocket: the close frame has code 1009 (message too big) and reason ``frame_too_large``;
- long-polling: the POST carrying it is answered 413 problem+json ``frame_too_large`` once a poll (the one the server
  holds, or the client's next) has been answered with ``session:ended`` (a client reads that first), and the
  Engine.IO session is closed.

Sizes are bytes (UTF-8 for text). A POST without a Content-Length is read here, up to the limit, and handed on with
one, so that python-engineio (which reads only what Content-Length announces) sees its packets.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import urllib.parse
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Final

import socketio
import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = structlog.get_logger("chat.gateway")

REASON: Final = "frame_too_large"
POLL_ANSWER_SECONDS: Final = 5.0
"""The longest an oversize POST's answer waits for a poll answer that carries ``session:ended``."""
ENDED_PACKET: Final = b'["session:ended"'
"""How ``session:ended`` starts in a poll answer (a JSON string inside an event escapes its quotes: no false match)."""
CLOSE_SECONDS: Final = 30.0
"""How long a long-polling session closed for a frame too large may wait for its client's next poll."""

EndSocket = Callable[[str, str], Awaitable[None]]
"""(Socket.IO sid, reason) → tell the socket why and disconnect it (``Delivery.end``)."""


class FrameLimit:
    """ASGI middleware: frames larger than ``max_bytes`` on ``path`` end their socket (see the module docstring)."""

    def __init__(
        self, app: ASGIApp, *, max_bytes: int, server: socketio.AsyncServer, end: EndSocket, path: str = "/socket.io/"
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.server = server
        self.end = end
        self.path = path
        self._closing: set[asyncio.Task[None]] = set()
        self._told: dict[str, asyncio.Event] = {}
        """Engine.IO session ended for a frame too large → set once a poll answer carrying its ``session:ended`` has
        gone out."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", ""))
        if not (path.startswith(self.path) or path == self.path.rstrip("/")):
            await self.app(scope, receive, send)
        elif scope["type"] == "http" and scope.get("method") == "POST":
            await self._post(scope, receive, send)
        elif scope["type"] == "http" and scope.get("method") == "GET":
            await self._poll(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    # --- long-polling ---------------------------------------------------------------------------------------------

    async def _poll(self, scope: Scope, receive: Receive, send: Send) -> None:
        eio_sid = _query(scope, "sid")
        if eio_sid is None:
            await self.app(scope, receive, send)
            return

        async def tracked_send(message: Message) -> None:
            await send(message)
            told = self._told.get(eio_sid)
            body = message.get("body", b"") if message["type"] == "http.response.body" else b""
            if told is not None and ENDED_PACKET in body:
                told.set()

        await self.app(scope, receive, tracked_send)

    async def _post(self, scope: Scope, receive: Receive, send: Send) -> None:
        declared = _content_length(scope)
        if declared is not None:
            if declared > self.max_bytes:
                await self._refuse_post(scope, send)
            else:
                await self.app(scope, receive, send)
            return
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            body += message.get("body", b"")
            more = bool(message.get("more_body"))
            if len(body) > self.max_bytes:
                await self._refuse_post(scope, send)
                return
        headers = [*scope.get("headers", []), (b"content-length", str(len(body)).encode())]
        await self.app({**scope, "headers": headers}, _replay(bytes(body), receive), send)

    async def _refuse_post(self, scope: Scope, send: Send) -> None:
        log.info("gateway.frame_too_large", transport="polling")
        eio_sid = _query(scope, "sid")
        if eio_sid is not None:
            # A poll answer carries session:ended: wait until one has gone out (the poll the server holds, or the
            # client's next one), so that a client reads that, not an error of its POST that would close its
            # transport before it polled again.
            told = self._told[eio_sid] = asyncio.Event()
            try:
                if await self._end(eio_sid):
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(POLL_ANSWER_SECONDS):
                            await told.wait()
            finally:
                self._told.pop(eio_sid, None)
            # Closing the Engine.IO session waits for the client's next poll to take the close; not this answer.
            closing = asyncio.create_task(self._close_session(eio_sid))
            self._closing.add(closing)
            closing.add_done_callback(self._closing.discard)
        problem = {
            "type": f"urn:chat:problem:{REASON}",
            "title": "Frame too large",
            "status": 413,
            "code": REASON,
            "detail": f"A Socket.IO frame may be at most {self.max_bytes} bytes; this socket is closed.",
            "limit": self.max_bytes,
        }
        body = json.dumps(problem).encode()
        headers = [(b"content-type", b"application/problem+json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    # --- both -----------------------------------------------------------------------------------------------------

    async def _end(self, eio_sid: str) -> bool:
        """End the Socket.IO socket of ``eio_sid``; False if it has none (any more)."""
        sid = self.server.manager.sid_from_eio_sid(eio_sid, "/")
        if sid is None:
            return False
        await self.end(sid, REASON)
        return True

    async def _close_session(self, eio_sid: str) -> None:
        try:
            async with asyncio.timeout(CLOSE_SECONDS):
                await self.server.eio.disconnect(eio_sid)
        except TimeoutError:
            pass  # no poll came: python-engineio drops the closed session on its own


def _query(scope: Scope, name: str) -> str | None:
    values = urllib.parse.parse_qs(scope.get("query_string", b"").decode("latin-1")).get(name)
    return values[0] if values else None


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _replay(body: bytes, receive: Receive) -> Callable[[], Coroutine[Any, Any, Message]]:
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed
