"""The Socket.IO hub: authenticated connections, room subscriptions with recovery, acknowledged commands, fan-out.

The events, payloads, acks and error codes are in docs/protocol.md; ``protocol`` has the inbound models.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import socketio
import socketio.packet
import structlog
from pydantic import ValidationError

from chat_contracts import messages_commands as cmd
from chat_contracts import messages_events as mev
from chat_contracts import rooms as rev
from chat_contracts import users as uev
from chat_contracts.base import Contract
from chat_contracts.envelope import Envelope
from chat_contracts.ids import random_uuid
from chat_contracts.topics import MESSAGES_COMMANDS
from chat_gateway.adapters import fanout
from chat_gateway.adapters.history import History, HistoryUnavailable
from chat_gateway.adapters.rooms import Rooms, RoomsUnavailable
from chat_gateway.adapters.socketio_packets import GuardedServer
from chat_gateway.domain.membership import Memberships
from chat_gateway.domain.presence import Status
from chat_gateway.service.ephemeral import Ephemeral
from chat_gateway.service.protocol import (
    CLIENT_EVENTS,
    EVENT_LIMITS,
    MESSAGE_EVENTS,
    Ack,
    Delete,
    Edit,
    Marker,
    MentionOut,
    MessageOut,
    React,
    Refresh,
    RoomRef,
    Send,
    SetPresence,
    Subscribe,
    SubscribeMany,
    Typing,
    fail,
    ok,
)
from chat_gateway.settings import GatewaySettings
from chat_runtime.bus.port import Bus
from chat_runtime.tokens import TokenError, TokenVerifier, VerificationUnavailable, VerifiedToken

log = structlog.get_logger("chat.gateway")

SOURCE = "gateway"
NAMESPACE = "/"
BLOCKED_MESSAGE = "A block between you and the other person closes this conversation until it is lifted."
LIVE_ROOM_EVENT_AGE = timedelta(seconds=60)
"""Room events older than this are a replay of the topic, applied to memberships but not announced."""


@dataclass(slots=True)
class Bucket:
    """A user's event budget on this instance (token bucket shared by their sockets)."""

    tokens: float
    refilled: float = field(default_factory=time.monotonic)


@dataclass(slots=True)
class Connection:
    sid: str
    user: VerifiedToken
    token: str
    status: Status = "online"
    rooms: set[uuid.UUID] = field(default_factory=set)
    replaying: dict[uuid.UUID, list[tuple[int, str, dict[str, Any]]]] = field(default_factory=dict)
    delivered: dict[uuid.UUID, int] = field(default_factory=dict)
    """The highest message seq sent to this socket per room: a re-announced message (a resend answered after a
    gateway restart, a redelivered event) is never shown twice."""
    timers: list[asyncio.TimerHandle] = field(default_factory=list)
    """The expiry warning and the expiry of the current access token."""


def room_channel(room_id: uuid.UUID) -> str:
    return f"room:{room_id}"


def user_channel(user_id: uuid.UUID) -> str:
    return f"user:{user_id}"


class Hub:
    def __init__(
        self,
        *,
        settings: GatewaySettings,
        bus: Bus,
        verifier: TokenVerifier,
        history: History,
        rooms: Rooms,
    ) -> None:
        self.settings = settings
        self.bus = bus
        self.verifier = verifier
        self.history = history
        self.rooms = rooms
        self.memberships = Memberships()
        self.connections: dict[str, Connection] = {}
        self.by_user: dict[uuid.UUID, set[str]] = {}
        self.buckets: dict[uuid.UUID, dict[str, Bucket]] = {}
        """User → event ("*" for all events) → that budget on this instance."""
        self.pending: dict[str, asyncio.Future[Envelope]] = {}
        """Highest message seq sent to each room's sockets: per-room events arrive in seq order."""
        self.ephemeral = Ephemeral(settings=settings, bus=bus, memberships=self.memberships, sockets=self)
        self._background: set[asyncio.Task[None]] = set()
        self.ending: set[str] = set()
        """Sockets being closed by the gateway: they get nothing more."""
        self.rooms_asked: set[uuid.UUID] = set()
        """Users whose rooms this instance asked the rooms service for (see ``_learn_rooms``)."""
        self.sio = GuardedServer(
            refuse=self.on_refused_event,
            end=self.end,
            compression_min_bytes=settings.ws_compression_min_bytes,
            async_mode="asgi",
            cors_allowed_origins=settings.allowed_origins if settings.mode == "prod" else "*",
            max_http_buffer_size=settings.max_message_bytes,
            logger=False,
            engineio_logger=False,
        )
        self._register()

    async def start(self) -> None:
        await self.ephemeral.start()

    async def stop(self) -> None:
        await self.ephemeral.stop()
        for task in list(self._background):
            task.cancel()
        await self.rooms.aclose()
        await self.history.aclose()

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # --- connection lifecycle ---------------------------------------------------------------------------------

    def _register(self) -> None:
        sio = self.sio
        sio.on("connect", self.on_connect)
        sio.on("disconnect", self.on_disconnect)
        handlers = self._handlers()
        if set(handlers) != set(CLIENT_EVENTS):  # the documented protocol and the served one are the same
            raise RuntimeError(f"served {sorted(handlers)} but documented {sorted(CLIENT_EVENTS)}")
        for name, handler in handlers.items():
            sio.on(name, self._guarded(name, handler))
        sio.on("*", self.on_unknown_event)

    def _handlers(self) -> dict[str, Callable[[str, Any], Awaitable[Ack]]]:
        return {
            "room:subscribe": self.on_subscribe,
            "room:subscribe_many": self.on_subscribe_many,
            "room:unsubscribe": self.on_unsubscribe,
            "message:send": self.on_send,
            "message:edit": self.on_edit,
            "message:delete": self.on_delete,
            "message:react": self.on_react,
            "room:read": self.on_read,
            "room:delivered": self.on_delivered,
            "typing:start": self.on_typing_start,
            "typing:stop": self.on_typing_stop,
            "presence:set": self.on_presence_set,
            "auth:refresh": self.on_refresh,
        }

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        token = auth.get("token") if isinstance(auth, dict) else None
        if not isinstance(token, str) or not token:
            raise _refused("unauthenticated", "Send the access token in the auth payload: {token}.")
        user = await self._verify(token)
        if len(self.by_user.get(user.sub, ())) >= self.settings.max_connections_per_user:
            raise _refused("too_many_connections", "Close another tab or device first.")
        connection = Connection(sid=sid, user=user, token=token)
        self.connections[sid] = connection
        self.by_user.setdefault(user.sub, set()).add(sid)
        self._schedule_expiry(connection)
        await self.sio.enter_room(sid, user_channel(user.sub))
        await self.ephemeral.local_changed(user.sub)
        if user.sub not in self.rooms_asked and not self.memberships.rooms_of(user.sub):
            self.rooms_asked.add(user.sub)
            self._spawn(self._learn_rooms(user.sub, token))
        log.info("gateway.connected", user_id=str(user.sub))

    async def _learn_rooms(self, user: uuid.UUID, token: str) -> None:
        """Learn the rooms of a user this instance knows in none (after an all-in-one restart there are no join
        events to replay), so that their presence reaches all their rooms, not only those their client subscribes
        to: a terminal client opens one."""
        try:
            found = await self.rooms.rooms_of(token=token)
        except RoomsUnavailable as exc:
            self.rooms_asked.discard(user)  # asked again at their next connection
            log.warning("gateway.rooms_unavailable", user_id=str(user), error=str(exc))
            return
        for room, membership in found.items():
            # An answer no newer than the room's last event is no news: they may have left since.
            newer = membership.room_version > self.memberships.versions.get(room, 0)
            if newer and self.memberships.role(room, user) is None:
                self.memberships.learn(room, user, membership.role, membership.room_version, blocked=membership.blocked)
                await self.ephemeral.member_joined(room, user)

    async def _verify(self, token: str) -> VerifiedToken:
        try:
            return await self.verifier.verify(token, typ="access")
        except TokenError as exc:
            raise _refused(exc.code, "The token is not valid.") from exc
        except VerificationUnavailable as exc:
            raise _refused("unavailable", "Tokens cannot be checked right now.", retry_after=5) from exc

    async def on_disconnect(self, sid: str, *args: Any) -> None:
        self.ending.discard(sid)
        connection = self.connections.pop(sid, None)
        if connection is None:
            return
        for timer in connection.timers:
            timer.cancel()
        user = connection.user.sub
        mine = self.by_user.get(user, set())
        mine.discard(sid)
        if not mine:
            self.by_user.pop(user, None)
            self.buckets.pop(user, None)
        await self.ephemeral.socket_closed(sid, user)

    def local_status(self, user_id: uuid.UUID) -> Status:
        statuses = {self.connections[sid].status for sid in self.by_user.get(user_id, ()) if sid in self.connections}
        if "online" in statuses:
            return "online"
        return "away" if statuses else "offline"

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
                lambda: self._spawn(self._warn_expiry(sid, expires_at)),
            ),
            loop.call_later(max(0.0, left), lambda: self._spawn(self._expire(sid, expires_at))),
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
            await self.end(sid, "token_expired")

    async def end(self, sid: str, reason: str) -> None:
        """Tell the socket why (``session:ended``) and close it."""
        self.ending.add(sid)
        await self.sio.emit("session:ended", {"reason": reason}, to=sid)
        await self.sio.disconnect(sid)

    def _guarded(
        self, event: str, handler: Callable[[str, Any], Awaitable[Ack]]
    ) -> Callable[[str, Any], Awaitable[Ack]]:
        """Every event: known connection, rate limit, schema errors as coded acks, never an exception to the loop."""

        async def guarded(sid: str, data: Any = None, *extra: Any) -> Ack:
            connection = self.connections.get(sid)
            if connection is None:
                return fail("unauthenticated", "Connect with a token first.")
            if extra:
                return fail("validation_failed", "Send one payload object per event.")
            if connection.user.expires_at.timestamp() + self.verifier.leeway_seconds < time.time():
                self._spawn(self.end(sid, "token_expired"))
                return fail("token_expired", "The access token expired; reconnect with a fresh one.")
            wait = self._take(connection.user.sub, "*")
            if wait > 0:
                return fail("rate_limited", "Too many events; slow down.", retry_after=round(wait, 3))
            try:
                # Validated once here (the handler's own model_validate returns this instance as it is), so
                # that a malformed event costs only the user's overall budget, not the event's own.
                payload = CLIENT_EVENTS[event].payload.model_validate(data)
                if event in EVENT_LIMITS:
                    wait = self._take(connection.user.sub, event)
                    if wait > 0:
                        return fail("rate_limited", f"Too many {event} events; slow down.", retry_after=round(wait, 3))
                return await handler(sid, payload)
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
        wait = self._take(connection.user.sub, "*")
        if wait > 0:
            return fail("rate_limited", "Too many events; slow down.", retry_after=round(wait, 3))
        return fail("unknown_event", f"The gateway does not serve {event[:64]!r}.")

    async def on_refused_event(self, sid: str, code: str, message: str) -> Ack:
        """An event no handler may see (undecodable, or a lifecycle name) still gets a coded ack, and counts."""
        connection = self.connections.get(sid)
        if connection is None:
            return fail("unauthenticated", "Connect with a token first.")
        wait = self._take(connection.user.sub, "*")
        if wait > 0:
            return fail("rate_limited", "Too many events; slow down.", retry_after=round(wait, 3))
        return fail(code, message)

    def _take(self, user: uuid.UUID, scope: str) -> float:
        """Seconds to wait before one more event of ``scope`` is allowed (0: allowed, and counted): ``*`` is the
        user's budget for every event; an event named in ``EVENT_LIMITS`` also has its own, so that, say, typing
        cannot starve sending."""
        rate, burst = (
            (self.settings.events_per_second, self.settings.events_burst) if scope == "*" else EVENT_LIMITS[scope]
        )
        now = time.monotonic()
        bucket = self.buckets.setdefault(user, {}).setdefault(scope, Bucket(tokens=float(burst), refilled=now))
        bucket.tokens = min(float(burst), bucket.tokens + (now - bucket.refilled) * rate)
        bucket.refilled = now
        if bucket.tokens < 1:
            return (1 - bucket.tokens) / rate
        bucket.tokens -= 1
        return 0.0

    # --- live tokens, typing and presence ---------------------------------------------------------------------

    async def on_refresh(self, sid: str, data: Any) -> Ack:
        """A fresh access token for a live socket (no reconnect); it must be the same user's."""
        request = Refresh.model_validate(data)
        connection = self.connections[sid]
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

    async def on_typing_start(self, sid: str, data: Any) -> Ack:
        request = Typing.model_validate(data)
        connection = self.connections[sid]
        refused = await self._require_member(request.room_id, connection)
        if refused is not None:
            return refused
        if self.memberships.blocked(request.room_id):
            return fail("user_blocked", BLOCKED_MESSAGE)
        await self.ephemeral.typing_start(request.room_id, connection.user.sub, sid)
        return ok(room_id=str(request.room_id), ttl_seconds=self.settings.typing_ttl_seconds)

    async def on_typing_stop(self, sid: str, data: Any) -> Ack:
        request = Typing.model_validate(data)
        await self.ephemeral.typing_stop(request.room_id, self.connections[sid].user.sub)
        return ok(room_id=str(request.room_id))

    async def on_presence_set(self, sid: str, data: Any) -> Ack:
        request = SetPresence.model_validate(data)
        connection = self.connections[sid]
        connection.status = request.status
        user = connection.user.sub
        await self.ephemeral.local_changed(user)
        return ok(status=self.local_status(user), seen_as=self.ephemeral.seen_as(user))

    async def _require_member(self, room: uuid.UUID, connection: Connection) -> Ack | None:
        """None when the user is a member; asks the rooms service when this instance has not heard of it yet."""
        if self.memberships.role(room, connection.user.sub) is not None:
            return None
        try:
            found = await self.rooms.membership(room, token=connection.token)
        except RoomsUnavailable:
            return fail("unavailable", "Membership cannot be checked right now; try again.", retry_after=2)
        if found is None:
            return fail("not_member", "You are not a member of this room (or it does not exist).")
        self.memberships.learn(room, connection.user.sub, found.role, found.room_version, blocked=found.blocked)
        # Learnt after the user's sockets connected (a projection still replaying, or none to replay after an
        # all-in-one restart): the room has not been told their status yet.
        await self.ephemeral.member_joined(room, connection.user.sub)
        return None

    # --- subscriptions and recovery ----------------------------------------------------------------------------

    async def on_subscribe(self, sid: str, data: Any) -> Ack:
        return self._with_presence(await self._subscribe(sid, Subscribe.model_validate(data)))

    async def on_subscribe_many(self, sid: str, data: Any) -> Ack:
        """A room list's worth of subscriptions in one event; each room answers as ``room:subscribe`` would."""
        request = SubscribeMany.model_validate(data)
        results = []
        for room in request.rooms:
            answer = await self._subscribe(sid, room)
            results.append(answer if answer["ok"] else {"room_id": str(room.room_id), **answer})
        return ok(results=[self._with_presence(answer) for answer in results])

    def _with_presence(self, answer: Ack) -> Ack:
        """Add the room's present members to a subscribe answer as it leaves: the socket is in the room by then,
        so every change it was sent before is in the list, and every later one arrives after the answer."""
        if answer["ok"]:
            answer["presence"] = self.ephemeral.present_in(uuid.UUID(answer["room_id"]))
        return answer

    async def _subscribe(self, sid: str, request: Subscribe) -> Ack:
        connection = self.connections[sid]
        refused = await self._require_member(request.room_id, connection)
        if refused is not None:
            return refused
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
        connection.delivered[room] = max(sent, connection.delivered.get(room, 0))
        # Replayed messages come in their current state (edited, deleted, reactions); changes since then to
        # messages at or before last_seq, markers and member lists are not replayed: the client reloads those.
        return ok(
            room_id=str(room),
            recovered=True,
            seq=sent,
            replayed=len(missed),
            changes_recovered=False,
        )

    async def on_unsubscribe(self, sid: str, data: Any) -> Ack:
        request = RoomRef.model_validate(data)
        connection = self.connections[sid]
        connection.rooms.discard(request.room_id)
        connection.replaying.pop(request.room_id, None)
        connection.delivered.pop(request.room_id, None)
        await self.sio.leave_room(sid, room_channel(request.room_id))
        return ok(room_id=str(request.room_id))

    # --- commands with acks -----------------------------------------------------------------------------------

    async def _command(
        self, sid: str, room_id: uuid.UUID, build: Callable[[uuid.UUID, str], Contract]
    ) -> Envelope | Ack:
        connection = self.connections[sid]
        refused = await self._require_member(room_id, connection)
        if refused is not None:
            return refused
        request_id = random_uuid().hex
        future: asyncio.Future[Envelope] = asyncio.get_running_loop().create_future()
        self.pending[request_id] = future
        command = build(connection.user.sub, request_id).model_copy(
            update={"room_version": self.memberships.seen_at(room_id, connection.user.sub)}
        )
        try:
            # One deadline for handing the command to the bus and hearing the answer.
            async with asyncio.timeout(self.settings.ack_timeout_seconds):
                try:
                    await self.bus.publish(MESSAGES_COMMANDS, command, source=SOURCE)
                except Exception as exc:  # the bus is unreachable: nothing was accepted, so say so at once
                    log.warning("gateway.command_not_published", error=type(exc).__name__)
                    return fail(
                        "unavailable", "Messages cannot be accepted right now; resend with the same id.", retry_after=1
                    )
                return await future
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

    async def on_message_events(self, envelopes: Sequence[Envelope]) -> None:
        """A batch of messages events: every socket gets what is for it in one write (see ``fanout``)."""
        for envelope in envelopes:
            await self.on_message_event(envelope)

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
        if isinstance(data, mev.ReadMarkerMoved | mev.DeliveryMarkerMoved) and self.memberships.blocked(room):
            await self.sio.emit(name, payload, room=user_channel(data.user_id))  # their own devices only
            return
        await self.broadcast(name, payload, room, droppable=False, seq=seq, new=name == "message:new")

    async def broadcast(
        self,
        event: str,
        payload: dict[str, Any],
        room_id: uuid.UUID,
        *,
        droppable: bool,
        skip_user: uuid.UUID | None = None,
        seq: int = 0,
        new: bool = False,
    ) -> None:
        """Emit to a room's sockets, encoded once. A socket replaying the room gets room events queued behind
        the replay. A socket whose backlog is over the soft limit misses droppable events (typing, presence);
        over the hard limit, a room event ends it with ``slow_consumer`` instead of growing its buffer. A ``new``
        message goes only to sockets that have not been sent its seq (a resent client_msg_id re-announces its
        message to answer the sender, and a gateway that restarted cannot know what its sockets replayed)."""
        eio = self.sio.eio
        frame: fanout.Frame | None = None
        lagging: list[str] = []
        limit = self.settings.buffer_soft_limit_bytes if droppable else self.settings.buffer_hard_limit_bytes
        for sid, eio_sid in self.sio.manager.get_participants(NAMESPACE, room_channel(room_id)):
            connection = self.connections.get(sid)
            socket = fanout.socket_of(eio, eio_sid)
            if connection is None or socket is None or sid in self.ending:
                continue
            if skip_user is not None and connection.user.sub == skip_user:
                continue
            if not droppable and room_id in connection.replaying:
                connection.replaying[room_id].append((seq, event, payload))
                continue
            if new and connection.delivered.get(room_id, 0) >= seq:
                continue
            if self.backlog(eio_sid) >= limit:
                if not droppable:
                    lagging.append(sid)
                continue
            if new:
                connection.delivered[room_id] = seq
            if frame is None:
                frame = fanout.event_frame(event, orjson.dumps(payload))
            # The same frame for every recipient, written to its connection without a task per recipient (as
            # python-socketio's room emit would make) or per socket (as python-engineio's writer is).
            socket.send_frame(frame)
        for sid in lagging:
            log.warning("gateway.slow_consumer", sid=sid, room_id=str(room_id))
            self.ending.add(sid)
            self._spawn(self.end(sid, "slow_consumer"))

    def backlog(self, eio_sid: str) -> int:
        """Bytes written to a socket and not yet sent to it."""
        socket = fanout.socket_of(self.sio.eio, eio_sid)
        return socket.backlog() if socket is not None else 0

    async def on_room_event(self, envelope: Envelope) -> None:
        data = envelope.data
        for room, user in self.memberships.apply(data):
            self.ephemeral.member_left(room, user)
            for sid in list(self.by_user.get(user, ())):
                connection = self.connections.get(sid)
                if connection is None or room not in connection.rooms:
                    continue
                connection.rooms.discard(room)
                connection.replaying.pop(room, None)
                connection.delivered.pop(room, None)
                await self.sio.leave_room(sid, room_channel(room))
                await self.sio.emit("room:removed", {"room_id": str(room)}, to=sid)
        if isinstance(data, rev.MemberJoined) and self.memberships.role(data.room_id, data.user_id) is not None:
            await self.ephemeral.member_joined(data.room_id, data.user_id)
        if isinstance(data, rev.RoomBlocked):
            await self.ephemeral.room_closed(data.room_id)
        happened = getattr(data, "occurred_at", None) or envelope.occurred_at
        if datetime.now(UTC) - happened > LIVE_ROOM_EVENT_AGE:
            return  # replayed history (a new instance reading the topic from the start): not news to anyone
        room_id = getattr(data, "room_id", None)
        if not isinstance(room_id, uuid.UUID):
            return
        if isinstance(data, rev.MemberJoined):
            added = {"room_id": str(room_id), "role": data.role, "by": str(data.by) if data.by else None}
            await self.sio.emit("room:added", added, room=user_channel(data.user_id))
        elif isinstance(data, rev.MemberInvited):
            invited = {"room_id": str(room_id), "by": str(data.by)}
            await self.sio.emit("room:invited", invited, room=user_channel(data.user_id))
        await self.broadcast("room:event", data.model_dump(mode="json"), room_id, droppable=False)

    async def on_user_event(self, envelope: Envelope) -> None:
        data = envelope.data
        if isinstance(data, uev.UserSessionsRevoked | uev.UserDeleted):
            sessions = set(data.session_ids or ()) if isinstance(data, uev.UserSessionsRevoked) else set()
            reason = getattr(data, "reason", "account_deleted")
            for sid in list(self.by_user.get(data.user_id, ())):
                connection = self.connections.get(sid)
                if connection is not None and (not sessions or connection.user.sid in sessions):
                    await self.end(sid, reason)


def _refused(code: str, message: str, *, retry_after: float | None = None) -> Exception:
    """A refused connection: clients get ``connect_error`` with ``message`` and ``data: {code, message, …}``."""
    refused: Exception = socketio.exceptions.ConnectionRefusedError(
        message, fail(code, message, retry_after=retry_after)["error"]
    )
    return refused


def _client_event(data: Contract) -> tuple[str | None, dict[str, Any], int]:
    """The socket event for a messages event: its name, payload and seq (0 for markers' ordering purposes)."""
    kind = getattr(data, "type", "")
    if isinstance(data, mev.MessageCreated):
        return "message:new", new_message(data), data.seq
    payload = data.model_dump(mode="json", exclude={"request_id", "type"})
    seq = int(payload.get("seq") or payload.get("up_to_seq") or 0)
    names = {v: k for k, v in MESSAGE_EVENTS.items()}
    return names.get(kind), payload, seq


def new_message(data: mev.MessageCreated) -> dict[str, Any]:
    """A new message in the shape of a history page item, so live and replayed ones match."""
    message = MessageOut(
        id=data.message_id,
        room_id=data.room_id,
        seq=data.seq,
        sender_id=data.sender_id,
        client_msg_id=data.client_msg_id,
        body=data.body,
        created_at=data.created_at,
        edited_at=None,
        deleted=False,
        deleted_by=None,
        reply_to=data.reply_to,
        attachment_ids=list(data.attachment_ids),
        mentions=[MentionOut(user_id=m.user_id, username=m.username) for m in data.mentions.users],
        mentions_room=data.mentions.room,
        reactions=[],
        version=1,
    )
    return message.model_dump(mode="json")
