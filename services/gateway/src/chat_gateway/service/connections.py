"""The sockets this instance holds: who each one is, which rooms it follows, and each user's event budgets."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from chat_gateway.domain.presence import Status
from chat_gateway.service.metrics import GatewayMetrics
from chat_gateway.service.protocol import EVENT_LIMITS
from chat_gateway.settings import GatewaySettings
from chat_runtime.tokens import VerifiedToken

Replayed = tuple[int, str, dict[str, Any]]
"""An event held back for a socket while its room is replayed: (seq, event name, payload)."""


@lru_cache(maxsize=16_384)
def room_channel(room_id: uuid.UUID) -> str:
    """The Socket.IO room of a chat room's sockets; remembered, as every event to the room names it."""
    return f"room:{room_id}"


@lru_cache(maxsize=16_384)
def user_channel(user_id: uuid.UUID) -> str:
    return f"user:{user_id}"


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
    replaying: dict[uuid.UUID, list[Replayed]] = field(default_factory=dict)
    """Rooms being replayed to this socket, with the live events held back meanwhile (see ``service/recovery``)."""
    delivered: dict[str, int] = field(default_factory=dict)
    """The highest message seq sent to this socket per room (by ``room_channel``): a re-announced message (a resend
    answered after a gateway restart, a redelivered event) is never shown twice. Keyed by the channel's text, which
    each broadcast has at hand: read for every recipient of every message, a string finds its entry at C speed
    where a UUID hashes and compares in Python."""
    timers: list[asyncio.TimerHandle] = field(default_factory=list)
    """The expiry warning and the expiry of the current access token."""

    def leave(self, room: uuid.UUID) -> None:
        """Forget the room (the socket left it, or was removed from it)."""
        self.rooms.discard(room)
        self.replaying.pop(room, None)
        self.delivered.pop(room_channel(room), None)


class Connections:
    """Every authenticated socket of this instance, by socket id and by user."""

    def __init__(self, settings: GatewaySettings, metrics: GatewayMetrics) -> None:
        self.settings = settings
        self.connected = metrics.sockets_connected
        self.by_sid: dict[str, Connection] = {}
        self.by_user: dict[uuid.UUID, set[str]] = {}
        self.buckets: dict[uuid.UUID, dict[str, Bucket]] = {}
        """User → event ("*" for all events) → that budget on this instance."""
        self.ending: set[str] = set()
        """Sockets being closed by the gateway: they get nothing more."""

    def get(self, sid: str) -> Connection | None:
        return self.by_sid.get(sid)

    def __getitem__(self, sid: str) -> Connection:
        return self.by_sid[sid]

    def count_of(self, user: uuid.UUID) -> int:
        return len(self.by_user.get(user, ()))

    def of_user(self, user: uuid.UUID) -> list[Connection]:
        """The user's sockets on this instance."""
        return [self.by_sid[sid] for sid in self.by_user.get(user, ()) if sid in self.by_sid]

    def add(self, connection: Connection) -> None:
        self.by_sid[connection.sid] = connection
        self.by_user.setdefault(connection.user.sub, set()).add(connection.sid)
        self.connected.set(len(self.by_sid))

    def remove(self, sid: str) -> Connection | None:
        """Forget a closed socket (and, with the user's last one, their budgets); None if it was not known."""
        self.ending.discard(sid)
        connection = self.by_sid.pop(sid, None)
        if connection is None:
            return None
        self.connected.set(len(self.by_sid))
        for timer in connection.timers:
            timer.cancel()
        user = connection.user.sub
        mine = self.by_user.get(user, set())
        mine.discard(sid)
        if not mine:
            self.by_user.pop(user, None)
            self.buckets.pop(user, None)
        return connection

    def local_status(self, user_id: uuid.UUID) -> Status:
        """Online if one of the user's sockets here is, away if all are, offline without any."""
        statuses = {connection.status for connection in self.of_user(user_id)}
        if "online" in statuses:
            return "online"
        return "away" if statuses else "offline"

    def take(self, user: uuid.UUID, scope: str) -> float:
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
