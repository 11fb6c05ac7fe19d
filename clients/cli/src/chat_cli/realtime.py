"""The Socket.IO side: connecting with the access token, acks as values, and resending a message with the same
``client_msg_id`` until the server answers (safe by the protocol: a resend never makes a second message)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import socketio
from socketio import exceptions as sio_exceptions

from chat_cli.api import Api
from chat_cli.errors import Refused, Unreachable

ACK_TIMEOUT_SECONDS = 15.0
CONNECT_TIMEOUT_SECONDS = 10.0

# Codes after which the same command may simply be sent again. `not_member` is among them because a member who
# has just joined can be refused until the services' membership projections catch up (docs/messages.md).
RETRYABLE = frozenset({"timeout", "unavailable", "rate_limited", "not_member", "internal_error"})

Ack = dict[str, Any]
Sleep = Callable[[float], Awaitable[None]]


class AckTimeout(Exception):
    """No ack arrived in time."""


def new_client_msg_id() -> str:
    return uuid.uuid4().hex


def refused_from_ack(ack: Ack) -> Refused:
    error = ack.get("error") if isinstance(ack, dict) else None
    if isinstance(error, dict):
        return Refused(str(error.get("code", "error")), str(error.get("message", "")), body=error)
    return Refused("bad_ack", f"unexpected answer: {ack!r}")


async def call_with_retry(
    call: Callable[[], Awaitable[Ack]],
    *,
    attempts: int = 8,
    base_delay: float = 0.25,
    max_delay: float = 5.0,
    retry_not_member: int = 40,
    sleep: Sleep = asyncio.sleep,
) -> Ack:
    """Call until ``{ok: true}``; retry lost acks and retryable codes with capped exponential backoff (honouring
    ``retry_after``), and raise ``Refused`` for anything else or when the attempts run out."""
    delay = base_delay
    not_member_left = retry_not_member
    attempt = 0
    last: Refused = Refused("timeout", "no answer from the server")
    while True:
        attempt += 1
        try:
            ack = await call()
        except AckTimeout:
            last = Refused("timeout", "no answer from the server")
        else:
            if isinstance(ack, dict) and ack.get("ok") is True:
                return ack
            last = refused_from_ack(ack)
            if last.code not in RETRYABLE:
                raise last
            if last.code == "not_member":
                not_member_left -= 1
                if not_member_left < 0:
                    raise last
                attempt -= 1  # waiting for a projection is not a failed attempt
                await sleep(0.1)
                continue
        if attempt >= attempts:
            raise last
        retry_after = last.body.get("retry_after") if isinstance(last.body, dict) else None
        await sleep(max(delay, float(retry_after)) if isinstance(retry_after, int | float) else delay)
        delay = min(delay * 2, max_delay)


class Socket:
    """The signed-in user's connection to the gateway: a fresh Socket.IO client for each connection, so a connection
    that failed or dropped is closed for good (its HTTP session with it) and nothing of it reaches the next one.

    Reusing one client across a server outage is what broke the room view: a client still tearing down its dropped
    connection while it is asked to connect again drops an open HTTP session, and the event loop's report of it
    ("Unclosed client session", with no exception) took over the screen."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.sio = socketio.AsyncClient(reconnection=False)
        self.connect_error: Any = None
        self.handlers: dict[str, Callable[..., Awaitable[None]]] = {}

    def on(self, event: str, handler: Callable[..., Awaitable[None]]) -> None:
        """Handle ``event`` on this connection and every later one."""
        self.handlers[event] = handler
        self._register(self.sio, event, handler)

    def _register(self, client: socketio.AsyncClient, event: str, handler: Callable[..., Awaitable[None]]) -> None:
        async def current_only(*args: Any) -> None:
            if client is self.sio:  # a late event of a connection given up (its disconnect) changes nothing
                await handler(*args)

        client.on(event, current_only)

    def _fresh(self) -> socketio.AsyncClient:
        client = socketio.AsyncClient(reconnection=False)

        async def on_connect_error(data: Any = None) -> None:
            self.connect_error = data

        client.on("connect_error", on_connect_error)
        for event, handler in self.handlers.items():
            self._register(client, event, handler)
        return client

    async def connect(self) -> None:
        """Connect on a fresh client; refresh the token once if the gateway says it expired."""
        for attempt in range(2):
            token = await self.api.access_token(force=attempt > 0)
            self.connect_error = None
            old, self.sio = self.sio, self._fresh()
            await old.disconnect()  # no longer current: whatever it still says is not heard
            try:
                await self.sio.connect(
                    self.api.server,
                    auth={"token": token},
                    transports=["websocket"],
                    wait_timeout=CONNECT_TIMEOUT_SECONDS,
                )
                return
            except sio_exceptions.ConnectionError as exc:
                await self.close()
                data = self.connect_error
                code = data.get("code") if isinstance(data, dict) else None
                if isinstance(code, str):
                    if code.startswith("token_") and attempt == 0:
                        continue
                    raise Refused(code, str(data.get("message", code)), body=data) from exc
                raise Unreachable(f"cannot reach {self.api.server} (Socket.IO): {exc}") from exc
        raise Refused("unauthenticated", "the gateway refused the connection")

    @property
    def connected(self) -> bool:
        return bool(self.sio.connected)

    async def call(self, event: str, payload: dict[str, Any], *, timeout: float = ACK_TIMEOUT_SECONDS) -> Ack:
        """Emit and wait for the ack; ``AckTimeout`` when none comes."""
        try:
            ack = await self.sio.call(event, payload, timeout=timeout)
        except sio_exceptions.TimeoutError as exc:
            raise AckTimeout(event) from exc
        except sio_exceptions.BadNamespaceError as exc:
            raise AckTimeout(f"{event}: not connected") from exc
        return dict(ack) if isinstance(ack, dict) else {"ok": False, "error": {"code": "bad_ack", "message": "?"}}

    async def request(self, event: str, payload: dict[str, Any]) -> Ack:
        """``call`` with the retry policy, raising ``Refused`` on a refusal."""
        return await call_with_retry(lambda: self.call(event, payload))

    async def send_message(
        self, room_id: str, body: str, *, client_msg_id: str | None = None, reply_to: str | None = None
    ) -> Ack:
        """Send; every retry reuses the same ``client_msg_id``, so the message exists at most once."""
        payload: dict[str, Any] = {
            "room_id": room_id,
            "client_msg_id": client_msg_id or new_client_msg_id(),
            "body": body,
        }
        if reply_to:
            payload["reply_to"] = reply_to
        return await self.request("message:send", payload)

    async def close(self) -> None:
        """Close the current connection, or what is left of it: disconnecting a client that is not connected
        still closes its HTTP session."""
        await self.sio.disconnect()
