"""The Socket.IO entrypoint: the connection handshake, the guard every client event passes, and one table from
event to handler. Command events (send, edit, delete, react, read, delivered) all go through ``Requests``; the
events, payloads, acks and error codes are in docs/protocol.md and ``service/protocol``."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import socketio
import structlog
from pydantic import ValidationError

from chat_gateway.adapters.socketio_packets import GuardedServer
from chat_gateway.domain.membership import Memberships
from chat_gateway.service.access import Access
from chat_gateway.service.background import Background
from chat_gateway.service.commands import COMMANDS, Requests
from chat_gateway.service.connections import Connection, Connections, user_channel
from chat_gateway.service.delivery import Delivery
from chat_gateway.service.metrics import UNKNOWN_EVENT, GatewayMetrics
from chat_gateway.service.presence import Presence
from chat_gateway.service.protocol import (
    CLIENT_EVENTS,
    EVENT_LIMITS,
    Ack,
    Refresh,
    RoomRef,
    SetPresence,
    Subscribe,
    SubscribeMany,
    Typing,
    fail,
    ok,
)
from chat_gateway.service.recovery import Recovery
from chat_gateway.settings import GatewaySettings
from chat_runtime import tracing
from chat_runtime.tokens import TokenError, TokenVerifier, VerificationUnavailable, VerifiedToken

log = structlog.get_logger("chat.gateway")

BLOCKED_MESSAGE = "A block between you and the other person closes this conversation until it is lifted."

Handler = Callable[[Connection, Any], Awaitable[Ack]]
"""A client event's handler: the socket's connection and the payload, validated once by the guard."""


class SocketEvents:
    def __init__(
        self,
        *,
        sio: GuardedServer,
        settings: GatewaySettings,
        verifier: TokenVerifier,
        connections: Connections,
        memberships: Memberships,
        access: Access,
        presence: Presence,
        recovery: Recovery,
        requests: Requests,
        delivery: Delivery,
        background: Background,
        metrics: GatewayMetrics,
    ) -> None:
        self.sio = sio
        self.metrics = metrics
        self.settings = settings
        self.verifier = verifier
        self.connections = connections
        self.memberships = memberships
        self.access = access
        self.presence = presence
        self.recovery = recovery
        self.requests = requests
        self.delivery = delivery
        self.background = background

    def register(self) -> None:
        handlers = self.handlers()
        if set(handlers) != set(CLIENT_EVENTS):  # the documented protocol and the served one are the same
            raise RuntimeError(f"served {sorted(handlers)} but documented {sorted(CLIENT_EVENTS)}")
        self.sio.on("connect", self.on_connect)
        self.sio.on("disconnect", self.on_disconnect)
        for name, handler in handlers.items():
            self.sio.on(name, self.guarded(name, handler))
        self.sio.on("*", self.on_unknown_event)

    def handlers(self) -> dict[str, Handler]:
        own: dict[str, Handler] = {
            "room:subscribe": self.on_subscribe,
            "room:subscribe_many": self.on_subscribe_many,
            "room:unsubscribe": self.on_unsubscribe,
            "typing:start": self.on_typing_start,
            "typing:stop": self.on_typing_stop,
            "presence:set": self.on_presence_set,
            "auth:refresh": self.on_refresh,
        }
        return own | {event: self._command(event) for event in COMMANDS}

    # --- the connection's life ----------------------------------------------------------------------------------

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        token = auth.get("token") if isinstance(auth, dict) else None
        if not isinstance(token, str) or not token:
            raise refused("unauthenticated", "Send the access token in the auth payload: {token}.")
        user = await self._verify(token)
        if self.connections.count_of(user.sub) >= self.settings.max_connections_per_user:
            raise refused("too_many_connections", "Close another tab or device first.")
        connection = Connection(sid=sid, user=user, token=token)
        self.connections.add(connection)
        self._schedule_expiry(connection)
        await self.sio.enter_room(sid, user_channel(user.sub))
        await self.presence.local_changed(user.sub)
        if self.access.should_learn_rooms(user.sub):
            self.background.spawn(self.access.learn_rooms(user.sub, token))
        log.info("gateway.connected", user_id=str(user.sub))

    async def _verify(self, token: str) -> VerifiedToken:
        try:
            return await self.verifier.verify(token, typ="access")
        except TokenError as exc:
            raise refused(exc.code, "The token is not valid.") from exc
        except VerificationUnavailable as exc:
            raise refused("unavailable", "Tokens cannot be checked right now.", retry_after=5) from exc

    async def on_disconnect(self, sid: str, *args: Any) -> None:
        connection = self.connections.remove(sid)
        if connection is not None:
            await self.presence.socket_closed(sid, connection.user.sub)

    def _schedule_expiry(self, connection: Connection) -> None:
        """Warn ``token_warning_seconds`` before the token expires; end the socket when it does."""
        for timer in connection.timers:
            timer.cancel()
        loop = asyncio.get_running_loop()
        # The same clock-skew leeway as the verifier's, so a token accepted at connect is not ended at once.
        left = connection.user.expires_at.timestamp() + self.verifier.leeway_seconds - time.time()
        expires_at = connection.user.expires_at
        sid = connection.sid
        connection.timers = [
            loop.call_later(
                max(0.0, left - self.settings.token_warning_seconds),
                lambda: self.background.spawn(self._warn_expiry(sid, expires_at)),
            ),
            loop.call_later(max(0.0, left), lambda: self.background.spawn(self._expire(sid, expires_at))),
        ]

    async def _warn_expiry(self, sid: str, expires_at: datetime) -> None:
        connection = self.connections.get(sid)
        if connection is not None and connection.user.expires_at == expires_at:
            left = max(0.0, expires_at.timestamp() + self.verifier.leeway_seconds - time.time())
            await self.sio.emit(
                "auth:expiring", {"expires_at": expires_at.isoformat(), "seconds_left": round(left, 1)}, to=sid
            )

    async def _expire(self, sid: str, expires_at: datetime) -> None:
        connection = self.connections.get(sid)
        if connection is not None and connection.user.expires_at == expires_at:
            await self.delivery.end(sid, "token_expired")

    # --- the guard ----------------------------------------------------------------------------------------------

    def guarded(self, event: str, handler: Handler) -> Callable[[str, Any], Awaitable[Ack]]:
        """Every event: known connection, rate limit, schema errors as coded acks, never an exception to the loop;
        each ack counted by its code and timed."""
        model = CLIENT_EVENTS[event].payload
        acked = self.metrics.acked

        async def guarded(sid: str, data: Any = None, *extra: Any) -> Ack:
            started = time.perf_counter()
            spans = tracing.spans()
            if spans is None:
                ack = await answer(sid, data, *extra)
            else:
                with spans.socket_event(event):
                    ack = await answer(sid, data, *extra)
            acked(event, ack, started)
            return ack

        async def answer(sid: str, data: Any, *extra: Any) -> Ack:
            connection = self.connections.get(sid)
            if connection is None:
                return fail("unauthenticated", "Connect with a token first.")
            if extra:
                return fail("validation_failed", "Send one payload object per event.")
            if connection.user.expires_at.timestamp() + self.verifier.leeway_seconds < time.time():
                self.background.spawn(self.delivery.end(sid, "token_expired"))
                return fail("token_expired", "The access token expired; reconnect with a fresh one.")
            wait = self.connections.take(connection.user.sub, "*")
            if wait > 0:
                return fail("rate_limited", "Too many events; slow down.", retry_after=round(wait, 3))
            try:
                # Validated once, here: a malformed event costs only the user's overall budget, not the event's own.
                payload = model.model_validate(data)
                if event in EVENT_LIMITS:
                    wait = self.connections.take(connection.user.sub, event)
                    if wait > 0:
                        return fail("rate_limited", f"Too many {event} events; slow down.", retry_after=round(wait, 3))
                return await handler(connection, payload)
            except ValidationError as exc:
                return fail("validation_failed", "; ".join(e["msg"] for e in exc.errors()[:3]))
            except Exception:
                log.exception("gateway.handler_failed")
                return fail("internal_error", "Something went wrong; try again.")

        return guarded

    async def on_unknown_event(self, event: str, sid: str, *data: Any) -> Ack:
        """An event the gateway does not serve gets a coded ack (a client waiting on it must not hang)."""
        return await self.on_refused_event(sid, "unknown_event", f"The gateway does not serve {event[:64]!r}.")

    async def on_refused_event(self, sid: str, code: str, message: str) -> Ack:
        """An event no handler may see (undecodable, unknown, or a lifecycle name) still gets a coded ack, and
        counts against the user's budget."""
        started = time.perf_counter()
        ack = self._refuse(sid, code, message)
        self.metrics.acked(UNKNOWN_EVENT, ack, started)
        return ack

    def _refuse(self, sid: str, code: str, message: str) -> Ack:
        connection = self.connections.get(sid)
        if connection is None:
            return fail("unauthenticated", "Connect with a token first.")
        wait = self.connections.take(connection.user.sub, "*")
        if wait > 0:
            return fail("rate_limited", "Too many events; slow down.", retry_after=round(wait, 3))
        return fail(code, message)

    # --- the handlers -------------------------------------------------------------------------------------------

    def _command(self, event: str) -> Handler:
        async def command(connection: Connection, payload: Any) -> Ack:
            room: uuid.UUID = payload.room_id
            refused_here = await self.access.require_member(room, connection)
            if refused_here is not None:
                return refused_here
            seen_at = self.memberships.seen_at(room, connection.user.sub)
            return await self.requests.ask(event, payload, connection.user.sub, seen_at)

        return command

    async def on_refresh(self, connection: Connection, request: Refresh) -> Ack:
        """A fresh access token for a live socket (no reconnect); it must be the same user's."""
        try:
            user = await self.verifier.verify(request.token, typ="access")
        except TokenError as exc:
            return fail(exc.code, "The token is not valid.")
        except VerificationUnavailable:
            return fail("unavailable", "Tokens cannot be checked right now.", retry_after=5)
        if user.sub != connection.user.sub:
            return fail("forbidden", "A socket keeps its user; connect again to change user.")
        connection.user, connection.token = user, request.token
        self._schedule_expiry(connection)
        return ok(expires_at=user.expires_at.isoformat())

    async def on_typing_start(self, connection: Connection, request: Typing) -> Ack:
        refused_here = await self.access.require_member(request.room_id, connection)
        if refused_here is not None:
            return refused_here
        if self.memberships.blocked(request.room_id):
            return fail("user_blocked", BLOCKED_MESSAGE)
        await self.presence.typing_start(request.room_id, connection.user.sub, connection.sid)
        return ok(room_id=str(request.room_id), ttl_seconds=self.settings.typing_ttl_seconds)

    async def on_typing_stop(self, connection: Connection, request: Typing) -> Ack:
        await self.presence.typing_stop(request.room_id, connection.user.sub)
        return ok(room_id=str(request.room_id))

    async def on_presence_set(self, connection: Connection, request: SetPresence) -> Ack:
        connection.status = request.status
        user = connection.user.sub
        await self.presence.local_changed(user)
        return ok(status=self.connections.local_status(user), seen_as=self.presence.seen_as(user))

    async def on_subscribe(self, connection: Connection, request: Subscribe) -> Ack:
        return self._with_presence(await self._subscribe(connection, request))

    async def on_subscribe_many(self, connection: Connection, request: SubscribeMany) -> Ack:
        """A room list's worth of subscriptions in one event; each room answers as ``room:subscribe`` would."""
        results = []
        for room in request.rooms:
            answer = await self._subscribe(connection, room)
            results.append(answer if answer["ok"] else {"room_id": str(room.room_id), **answer})
        return ok(results=[self._with_presence(answer) for answer in results])

    async def _subscribe(self, connection: Connection, request: Subscribe) -> Ack:
        refused_here = await self.access.require_member(request.room_id, connection)
        if refused_here is not None:
            return refused_here
        return await self.recovery.subscribe(connection, request)

    def _with_presence(self, answer: Ack) -> Ack:
        """Add the room's present members to a subscribe answer as it leaves: the socket is in the room by then,
        so every change it was sent before is in the list, and every later one arrives after the answer."""
        if answer["ok"]:
            answer["presence"] = self.presence.present_in(uuid.UUID(answer["room_id"]))
        return answer

    async def on_unsubscribe(self, connection: Connection, request: RoomRef) -> Ack:
        return await self.recovery.unsubscribe(connection, request.room_id)


def refused(code: str, message: str, *, retry_after: float | None = None) -> Exception:
    """A refused connection: clients get ``connect_error`` with ``message`` and ``data: {code, message, …}``."""
    error: Exception = socketio.exceptions.ConnectionRefusedError(
        message, fail(code, message, retry_after=retry_after)["error"]
    )
    return error
