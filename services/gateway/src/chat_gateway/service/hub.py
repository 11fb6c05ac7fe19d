"""The Socket.IO hub: authenticated connections, room subscriptions with recovery, acknowledged commands, fan-out.

Every client event that expects an answer gets an ack ``{"ok": true, ...}`` or
``{"ok": false, "error": {"code", "message", "retry_after"?}}`` (docs/protocol.md lists the events and codes).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final

import socketio
import structlog
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from chat_contracts import messages_commands as cmd
from chat_contracts import messages_events as mev
from chat_contracts import users as uev
from chat_contracts.base import Contract
from chat_contracts.envelope import Envelope
from chat_contracts.topics import MESSAGES_COMMANDS
from chat_gateway.adapters.history import History, HistoryUnavailable
from chat_gateway.domain.membership import Memberships
from chat_gateway.settings import GatewaySettings
from chat_runtime.bus.port import Bus
from chat_runtime.tokens import JwksUnavailable, TokenError, TokenVerifier, VerifiedToken

log = structlog.get_logger("chat.gateway")

Ack = dict[str, Any]
SOURCE = "gateway"


def ok(**fields: Any) -> Ack:
    return {"ok": True, **fields}


def fail(code: str, message: str, *, retry_after: float | None = None) -> Ack:
    error: dict[str, Any] = {"code": code, "message": message}
    if retry_after is not None:
        error["retry_after"] = retry_after
    return {"ok": False, "error": error}


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Subscribe(_In):
    room_id: uuid.UUID
    last_seq: int | None = Field(default=None, ge=0)


MAX_SUBSCRIBE_MANY: Final = 100


class SubscribeMany(_In):
    rooms: list[Subscribe] = Field(min_length=1, max_length=MAX_SUBSCRIBE_MANY)

    @model_validator(mode="after")
    def _distinct(self) -> SubscribeMany:
        if len({room.room_id for room in self.rooms}) != len(self.rooms):
            raise ValueError("each room may appear once")
        return self


class RoomRef(_In):
    room_id: uuid.UUID


class Send(_In):
    room_id: uuid.UUID
    client_msg_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
    body: str = Field(default="", max_length=16000)
    reply_to: uuid.UUID | None = None
    attachment_ids: list[uuid.UUID] = Field(default_factory=list, max_length=10)


class Edit(_In):
    room_id: uuid.UUID
    message_id: uuid.UUID
    body: str = Field(max_length=16000)


class Delete(_In):
    room_id: uuid.UUID
    message_id: uuid.UUID


class React(_In):
    room_id: uuid.UUID
    message_id: uuid.UUID
    emoji: str = Field(min_length=1, max_length=32)
    action: str = Field(pattern=r"^(add|remove)$")


class Marker(_In):
    room_id: uuid.UUID
    seq: int = Field(ge=0)


@dataclass
class Connection:
    sid: str
    user: VerifiedToken
    token: str
    rooms: set[uuid.UUID] = field(default_factory=set)
    replaying: dict[uuid.UUID, list[tuple[int, str, dict[str, Any]]]] = field(default_factory=dict)
    tokens: float = 0.0
    refilled: float = field(default_factory=time.monotonic)


def room_channel(room_id: uuid.UUID) -> str:
    return f"room:{room_id}"


def user_channel(user_id: uuid.UUID) -> str:
    return f"user:{user_id}"


class Hub:
    def __init__(self, *, settings: GatewaySettings, bus: Bus, verifier: TokenVerifier, history: History) -> None:
        self.settings = settings
        self.bus = bus
        self.verifier = verifier
        self.history = history
        self.memberships = Memberships()
        self.connections: dict[str, Connection] = {}
        self.pending: dict[str, asyncio.Future[Envelope]] = {}
        self.fanned_out: dict[uuid.UUID, int] = {}
        """Highest message seq sent to each room's sockets: per-room events arrive in seq order."""
        self.sio = socketio.AsyncServer(
            async_mode="asgi",
            cors_allowed_origins=settings.allowed_origins if settings.mode == "prod" else "*",
            max_http_buffer_size=settings.max_message_bytes,
            logger=False,
            engineio_logger=False,
        )
        self._register()

    # --- connection lifecycle ---------------------------------------------------------------------------------

    def _register(self) -> None:
        sio = self.sio
        sio.on("connect", self.on_connect)
        sio.on("disconnect", self.on_disconnect)
        handlers: dict[str, Callable[[str, Any], Awaitable[Ack]]] = {
            "room:subscribe": self.on_subscribe,
            "room:subscribe_many": self.on_subscribe_many,
            "room:unsubscribe": self.on_unsubscribe,
            "message:send": self.on_send,
            "message:edit": self.on_edit,
            "message:delete": self.on_delete,
            "message:react": self.on_react,
            "room:read": self.on_read,
            "room:delivered": self.on_delivered,
        }
        for name, handler in handlers.items():
            sio.on(name, self._guarded(handler))
        sio.on("*", self.on_unknown_event)

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        token = auth.get("token") if isinstance(auth, dict) else None
        if not isinstance(token, str) or not token:
            raise _refused("unauthenticated", "Send the access token in the auth payload: {token}.")
        try:
            user = await self.verifier.verify(token, typ="access")
        except TokenError as exc:
            raise _refused(exc.code, "The token is not valid.") from exc
        except JwksUnavailable as exc:
            raise _refused("unavailable", "Tokens cannot be checked right now.", retry_after=5) from exc
        mine = [c for c in self.connections.values() if c.user.sub == user.sub]
        if len(mine) >= self.settings.max_connections_per_user:
            raise _refused("too_many_connections", "Close another tab or device first.")
        self.connections[sid] = Connection(sid=sid, user=user, token=token, tokens=float(self.settings.events_burst))
        await self.sio.enter_room(sid, user_channel(user.sub))
        log.info("gateway.connected", user_id=str(user.sub))

    async def on_disconnect(self, sid: str, *args: Any) -> None:
        self.connections.pop(sid, None)

    def _guarded(self, handler: Callable[[str, Any], Awaitable[Ack]]) -> Callable[[str, Any], Awaitable[Ack]]:
        """Every event: known connection, rate limit, schema errors as coded acks, never an exception to the loop."""

        async def guarded(sid: str, data: Any = None, *extra: Any) -> Ack:
            connection = self.connections.get(sid)
            if connection is None:
                return fail("unauthenticated", "Connect with a token first.")
            if extra:
                return fail("validation_failed", "Send one payload object per event.")
            if connection.user.expires_at.timestamp() < time.time():
                await self.sio.disconnect(sid)
                return fail("token_expired", "The access token expired; reconnect with a fresh one.")
            wait = self._take(connection)
            if wait > 0:
                return fail("rate_limited", "Too many events; slow down.", retry_after=round(wait, 3))
            try:
                return await handler(sid, data)
            except ValidationError as exc:
                return fail("validation_failed", "; ".join(e["msg"] for e in exc.errors()[:3]))
            except Exception:
                log.exception("gateway.handler_failed")
                return fail("internal_error", "Something went wrong; try again.")

        return guarded

    async def on_unknown_event(self, event: str, sid: str, *data: Any) -> Ack:
        """An event the gateway does not serve gets a coded ack (a client waiting on it must not hang)."""
        connection = self.connections.get(sid)
        if connection is None:
            return fail("unauthenticated", "Connect with a token first.")
        wait = self._take(connection)
        if wait > 0:
            return fail("rate_limited", "Too many events; slow down.", retry_after=round(wait, 3))
        return fail("unknown_event", f"The gateway does not serve {event[:64]!r}.")

    def _take(self, connection: Connection) -> float:
        now = time.monotonic()
        rate = self.settings.events_per_second
        connection.tokens = min(
            float(self.settings.events_burst), connection.tokens + (now - connection.refilled) * rate
        )
        connection.refilled = now
        if connection.tokens >= 1:
            connection.tokens -= 1
            return 0.0
        return (1 - connection.tokens) / rate

    # --- subscriptions and recovery ----------------------------------------------------------------------------

    async def on_subscribe(self, sid: str, data: Any) -> Ack:
        return await self._subscribe(sid, Subscribe.model_validate(data))

    async def on_subscribe_many(self, sid: str, data: Any) -> Ack:
        """A room list's worth of subscriptions in one event; each room answers as ``room:subscribe`` would."""
        request = SubscribeMany.model_validate(data)
        results = []
        for room in request.rooms:
            answer = await self._subscribe(sid, room)
            results.append(answer if answer["ok"] else {"room_id": str(room.room_id), **answer})
        return ok(results=results)

    async def _subscribe(self, sid: str, request: Subscribe) -> Ack:
        connection = self.connections[sid]
        if self.memberships.role(request.room_id, connection.user.sub) is None:
            return fail("not_member", "You are not a member of this room (or it does not exist).")
        room = request.room_id
        if request.last_seq is None:
            connection.rooms.add(room)
            await self.sio.enter_room(sid, room_channel(room))
            try:
                current = await self.history.last_seq(room, token=connection.token)
            except HistoryUnavailable:
                current = None
            return ok(room_id=str(room), recovered=None, seq=current)
        # Buffer live events for this socket while the missed ones are replayed, so none is lost or doubled.
        connection.replaying[room] = []
        connection.rooms.add(room)
        await self.sio.enter_room(sid, room_channel(room))
        try:
            missed = await self.history.after(
                room, request.last_seq, self.settings.recovery_limit + 1, token=connection.token
            )
        except HistoryUnavailable:
            connection.replaying.pop(room, None)
            return fail("unavailable", "History cannot be read right now; try again.", retry_after=2)
        if len(missed) > self.settings.recovery_limit:
            connection.replaying.pop(room, None)
            try:
                current = await self.history.last_seq(room, token=connection.token)
            except HistoryUnavailable:
                current = max(int(m["seq"]) for m in missed)
            return ok(room_id=str(room), recovered=False, seq=current)
        sent = request.last_seq
        for message in missed:
            await self.sio.emit("message:new", message, to=sid)
            sent = max(sent, int(message["seq"]))
        for seq, event, payload in connection.replaying.pop(room, []):
            if event != "message:new" or seq > sent:
                await self.sio.emit(event, payload, to=sid)
                if event == "message:new":
                    sent = seq
        return ok(room_id=str(room), recovered=True, seq=sent, replayed=len(missed))

    async def on_unsubscribe(self, sid: str, data: Any) -> Ack:
        request = RoomRef.model_validate(data)
        connection = self.connections[sid]
        connection.rooms.discard(request.room_id)
        connection.replaying.pop(request.room_id, None)
        await self.sio.leave_room(sid, room_channel(request.room_id))
        return ok(room_id=str(request.room_id))

    # --- commands with acks -----------------------------------------------------------------------------------

    async def _command(
        self, sid: str, room_id: uuid.UUID, build: Callable[[uuid.UUID, str], Contract]
    ) -> Envelope | Ack:
        connection = self.connections[sid]
        if self.memberships.role(room_id, connection.user.sub) is None:
            return fail("not_member", "You are not a member of this room.")
        request_id = uuid.uuid4().hex
        future: asyncio.Future[Envelope] = asyncio.get_running_loop().create_future()
        self.pending[request_id] = future
        try:
            await self.bus.publish(MESSAGES_COMMANDS, build(connection.user.sub, request_id), source=SOURCE)
            return await asyncio.wait_for(future, self.settings.ack_timeout_seconds)
        except TimeoutError:
            return fail("timeout", "No answer in time; resend with the same client_msg_id (it is safe).", retry_after=1)
        finally:
            self.pending.pop(request_id, None)

    @staticmethod
    def _answer(result: Envelope | Ack, success: Callable[[Any], Ack]) -> Ack:
        if isinstance(result, dict):
            return result
        data = result.data
        if isinstance(data, mev.MessageRejected):
            return fail(data.code, data.message, retry_after=data.retry_after)
        return success(data)

    async def on_send(self, sid: str, data: Any) -> Ack:
        request = Send.model_validate(data)
        result = await self._command(
            sid,
            request.room_id,
            lambda user, rid: cmd.SendMessage(
                room_id=request.room_id,
                sender_id=user,
                client_msg_id=request.client_msg_id,
                body=request.body,
                reply_to=request.reply_to,
                attachment_ids=tuple(request.attachment_ids),
                request_id=rid,
            ),
        )
        return self._answer(result, lambda d: ok(message_id=str(d.message_id), seq=d.seq, room_id=str(d.room_id)))

    async def on_edit(self, sid: str, data: Any) -> Ack:
        request = Edit.model_validate(data)
        result = await self._command(
            sid,
            request.room_id,
            lambda user, rid: cmd.EditMessage(
                room_id=request.room_id, actor_id=user, message_id=request.message_id, body=request.body, request_id=rid
            ),
        )
        return self._answer(result, lambda d: ok(version=d.version))

    async def on_delete(self, sid: str, data: Any) -> Ack:
        request = Delete.model_validate(data)
        result = await self._command(
            sid,
            request.room_id,
            lambda user, rid: cmd.DeleteMessage(
                room_id=request.room_id, actor_id=user, message_id=request.message_id, request_id=rid
            ),
        )
        return self._answer(result, lambda d: ok(version=d.version))

    async def on_react(self, sid: str, data: Any) -> Ack:
        request = React.model_validate(data)
        result = await self._command(
            sid,
            request.room_id,
            lambda user, rid: cmd.ReactToMessage(
                room_id=request.room_id,
                actor_id=user,
                message_id=request.message_id,
                emoji=request.emoji,
                action="add" if request.action == "add" else "remove",
                request_id=rid,
            ),
        )
        return self._answer(result, lambda d: ok(version=d.version, counts=d.counts))

    async def on_read(self, sid: str, data: Any) -> Ack:
        request = Marker.model_validate(data)
        result = await self._command(
            sid,
            request.room_id,
            lambda user, rid: cmd.MarkRead(
                room_id=request.room_id, actor_id=user, up_to_seq=request.seq, request_id=rid
            ),
        )
        return self._answer(result, lambda d: ok(seq=d.up_to_seq))

    async def on_delivered(self, sid: str, data: Any) -> Ack:
        request = Marker.model_validate(data)
        result = await self._command(
            sid,
            request.room_id,
            lambda user, rid: cmd.AcknowledgeDelivery(
                room_id=request.room_id, actor_id=user, up_to_seq=request.seq, request_id=rid
            ),
        )
        return self._answer(result, lambda d: ok(seq=d.up_to_seq))

    # --- events from the bus ----------------------------------------------------------------------------------

    async def on_message_event(self, envelope: Envelope) -> None:
        """Resolve a waiting ack, then fan the event out to the room (encoded once for every recipient)."""
        data = envelope.data
        request_id = getattr(data, "request_id", None)
        if isinstance(request_id, str):
            future = self.pending.get(request_id)
            if future is not None and not future.done():
                future.set_result(envelope)
        if isinstance(data, mev.MessageRejected):
            return
        name, payload, seq = _client_event(data)
        if name is None:
            return
        room = data.room_id  # type: ignore[attr-defined]
        if name == "message:new":
            # A resent client_msg_id re-announces its message to answer the sender; clients saw it already.
            if seq <= self.fanned_out.get(room, 0):
                return
            self.fanned_out[room] = seq
        replaying = [c for c in self.connections.values() if room in c.replaying]
        for connection in replaying:
            connection.replaying[room].append((seq, name, payload))
        await self.sio.emit(name, payload, room=room_channel(room), skip_sid=[c.sid for c in replaying] or None)

    async def on_room_event(self, envelope: Envelope) -> None:
        lost = self.memberships.apply(envelope.data)
        if lost is not None:
            room, user = lost
            for connection in [c for c in self.connections.values() if c.user.sub == user and room in c.rooms]:
                connection.rooms.discard(room)
                await self.sio.leave_room(connection.sid, room_channel(room))
                await self.sio.emit("room:removed", {"room_id": str(room)}, to=connection.sid)

    async def on_user_event(self, envelope: Envelope) -> None:
        data = envelope.data
        if isinstance(data, uev.UserSessionsRevoked | uev.UserDeleted):
            sessions = set(data.session_ids or ()) if isinstance(data, uev.UserSessionsRevoked) else set()
            for connection in [c for c in self.connections.values() if c.user.sub == data.user_id]:
                if not sessions or connection.user.sid in sessions:
                    await self.sio.emit(
                        "session:ended", {"reason": getattr(data, "reason", "account_deleted")}, to=connection.sid
                    )
                    await self.sio.disconnect(connection.sid)


def _refused(code: str, message: str, *, retry_after: float | None = None) -> Exception:
    """A refused connection: clients get ``connect_error`` with ``message`` and ``data: {code, message, …}``."""
    refused: Exception = socketio.exceptions.ConnectionRefusedError(
        message, fail(code, message, retry_after=retry_after)["error"]
    )
    return refused


def _client_event(data: Contract) -> tuple[str | None, dict[str, Any], int]:
    payload = data.model_dump(mode="json", exclude={"request_id", "type"})
    seq = int(payload.get("seq") or payload.get("up_to_seq") or 0)
    names = {
        "message.created": "message:new",
        "message.edited": "message:edited",
        "message.deleted": "message:deleted",
        "message.reaction_changed": "message:reaction",
        "message.read_marker_moved": "room:read",
        "message.delivery_marker_moved": "room:delivered",
    }
    kind = getattr(data, "type", "")
    if kind == "message.created":
        payload["id"] = payload.pop("message_id")  # the same name as in history pages
    return names.get(kind), payload, seq
