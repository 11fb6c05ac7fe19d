"""Typing and presence: what this instance publishes on chat.ephemeral, and what it shows from every instance.

Typing: ``typing:start`` publishes a ``TypingChanged`` that expires after ``typing_ttl_seconds``; renewals closer
than ``typing_throttle_seconds`` are not published again; ``typing:stop``, the expiry and a closed socket publish
the stop. Everyone in the room except the typist's own sockets sees it.

Presence: this instance reports, per room the user is in, what it sees of the user's sockets (online if one is
online, away if all are away). When the last socket closes it waits ``presence_grace_seconds`` before reporting
offline, so a reconnect does not flap. What members are shown is the best status any instance reports
(``PresenceBoard``), and only changes are shown.

A direct room closed by a block (docs/decisions/0009) shows neither typing nor presence: neither person sees the
other there until the block is lifted.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import structlog

from chat_contracts import ephemeral as eph
from chat_contracts.base import Contract
from chat_contracts.envelope import Envelope
from chat_contracts.topics import EPHEMERAL
from chat_gateway.domain.membership import Memberships
from chat_gateway.domain.presence import PresenceBoard, Seen, Status, rank
from chat_gateway.settings import GatewaySettings
from chat_runtime.bus.port import Bus, Outgoing

log = structlog.get_logger("chat.gateway.presence")

SOURCE = "gateway"
TICK_SECONDS = 0.25


class Sockets(Protocol):
    """What presence and typing need of this instance's sockets (``service/delivery``): what it sees of a user,
    and a way to a room's sockets."""

    def local_status(self, user_id: uuid.UUID) -> Status: ...

    async def broadcast(
        self,
        event: str,
        payload: dict[str, Any],
        room_id: uuid.UUID,
        *,
        droppable: bool,
        skip_user: uuid.UUID | None = None,
    ) -> None: ...


class Presence:
    def __init__(
        self,
        *,
        settings: GatewaySettings,
        bus: Bus,
        memberships: Memberships,
        sockets: Sockets,
    ) -> None:
        self.settings = settings
        self.bus = bus
        self.memberships = memberships
        self.sockets = sockets
        self.instance = settings.instance_id
        self.started_at = datetime.now(UTC)
        self.board = PresenceBoard()
        self.announced: dict[uuid.UUID, Status] = {}
        """What this instance last reported for each user it has sockets of."""
        self.going_offline: dict[uuid.UUID, float] = {}
        """User → monotonic time at which they are reported offline unless a socket comes back."""
        self.typing: dict[tuple[uuid.UUID, uuid.UUID], tuple[float, str]] = {}
        """(room, user) → (monotonic expiry, socket that typed) for typists on this instance."""
        self.typing_sent: dict[tuple[uuid.UUID, uuid.UUID], float] = {}
        self.outgoing: dict[uuid.UUID, dict[uuid.UUID, eph.PresenceReport]] = {}
        """Room → user → the status to report at the next tick (the latest wins)."""
        self._next_beat = 0.0
        self._listening = False
        """Whether this instance reads chat.ephemeral yet: it beats only then (see ``listening``)."""
        self._ticker: asyncio.Task[None] | None = None

    # --- lifecycle ----------------------------------------------------------------------------------------------

    async def start(self) -> None:
        self._ticker = asyncio.create_task(self._tick_forever(), name="gateway-presence")

    def listening(self) -> None:
        """This instance now reads chat.ephemeral: it may send its first heartbeat. The others answer a newcomer's
        first heartbeat with what they see, once; a newcomer that beat before it listened would never hear it, and
        would show their users offline until each of them changed."""
        self._listening = True

    async def stop(self) -> None:
        """Stop ticking. Nothing is reported offline: the clients reconnect elsewhere, and the other instances
        forget this one's reports after three missed heartbeats."""
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker

    async def _tick_forever(self) -> None:
        while True:
            try:
                await self.tick(time.monotonic())
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("gateway.ephemeral_tick_failed")
            await asyncio.sleep(TICK_SECONDS)

    async def tick(self, now: float) -> None:
        """Expire typing, report offline after the grace period, publish the presence changes, beat, forget silent
        instances."""
        for key, (expires, _sid) in list(self.typing.items()):
            if expires <= now:
                await self._typing_stopped(*key)
        for user, due in list(self.going_offline.items()):
            if due <= now:
                del self.going_offline[user]
                if self.sockets.local_status(user) == "offline":
                    await self._announce(user, "offline")
        await self.flush_presence()
        if self._listening and now >= self._next_beat:
            self._next_beat = now + self.settings.heartbeat_seconds
            await self._publish(
                eph.GatewayHeartbeat(
                    room_id=eph.NO_ROOM,
                    instance_id=self.instance,
                    started_at=self.started_at,
                    interval_seconds=self.settings.heartbeat_seconds,
                )
            )
        for instance in self.board.silent(now=now):
            if instance != self.instance:
                log.warning("gateway.instance_silent", instance=instance)
                await self._show_users(self.board.forget_instance(instance))

    # --- this instance's sockets --------------------------------------------------------------------------------

    async def local_changed(self, user: uuid.UUID) -> None:
        """A socket of ``user`` opened, closed or set its status: report the change (offline after the grace)."""
        status = self.sockets.local_status(user)
        if status == "offline":
            if user in self.announced and user not in self.going_offline:
                self.going_offline[user] = time.monotonic() + self.settings.presence_grace_seconds
            return
        self.going_offline.pop(user, None)
        if self.announced.get(user) != status:
            await self._announce(user, status)

    async def socket_closed(self, sid: str, user: uuid.UUID) -> None:
        for (room, typist), (_expires, typed_on) in list(self.typing.items()):
            if typed_on == sid:
                await self._typing_stopped(room, typist)
        await self.local_changed(user)

    async def member_joined(self, room: uuid.UUID, user: uuid.UUID) -> None:
        """Tell a room a newly joined user's current status, if they are connected here."""
        status = self.announced.get(user)
        if status is not None:
            self._queue(room, user, status)

    def member_left(self, room: uuid.UUID, user: uuid.UUID) -> None:
        self.board.forget_room(room, user)
        self.typing.pop((room, user), None)
        self.typing_sent.pop((room, user), None)

    async def room_closed(self, room: uuid.UUID) -> None:
        """A block closed ``room``: whoever types in it here stops (the stop reaches the other person)."""
        for typing_room, typist in list(self.typing):
            if typing_room == room:
                await self._typing_stopped(room, typist)

    async def typing_start(self, room: uuid.UUID, user: uuid.UUID, sid: str) -> None:
        now = time.monotonic()
        key = (room, user)
        self.typing[key] = (now + self.settings.typing_ttl_seconds, sid)
        if now - self.typing_sent.get(key, float("-inf")) < self.settings.typing_throttle_seconds:
            return
        self.typing_sent[key] = now
        expires_at = datetime.now(UTC) + timedelta(seconds=self.settings.typing_ttl_seconds)
        await self._publish(eph.TypingChanged(room_id=room, user_id=user, typing=True, expires_at=expires_at))

    async def typing_stop(self, room: uuid.UUID, user: uuid.UUID) -> None:
        if (room, user) in self.typing:
            await self._typing_stopped(room, user)

    async def _typing_stopped(self, room: uuid.UUID, user: uuid.UUID) -> None:
        self.typing.pop((room, user), None)
        self.typing_sent.pop((room, user), None)
        await self._publish(eph.TypingChanged(room_id=room, user_id=user, typing=False, expires_at=datetime.now(UTC)))

    async def _announce(self, user: uuid.UUID, status: Status, rooms: set[uuid.UUID] | None = None) -> None:
        if status == "offline":
            self.announced.pop(user, None)
        else:
            self.announced[user] = status
        targets = self.memberships.rooms_of(user) if rooms is None else rooms
        for room in list(targets):
            self._queue(room, user, status)

    def _queue(self, room: uuid.UUID, user: uuid.UUID, status: Status) -> None:
        report = eph.PresenceReport(user_id=user, status=status, last_seen=datetime.now(UTC))
        self.outgoing.setdefault(room, {})[user] = report

    async def flush_presence(self) -> None:
        """Publish what changed since the last tick: one record per room."""
        if not self.outgoing:
            return
        outgoing, self.outgoing = self.outgoing, {}
        records = []
        for room, reports in outgoing.items():
            changes = list(reports.values())
            for first in range(0, len(changes), eph.MAX_PRESENCE_CHANGES):
                part = tuple(changes[first : first + eph.MAX_PRESENCE_CHANGES])
                records.append(
                    Outgoing(EPHEMERAL, eph.PresenceChanges(room_id=room, instance_id=self.instance, changes=part))
                )
        try:
            await self.bus.publish_all(records, source=SOURCE)
        except Exception:  # typing and presence are best effort: a bus hiccup must not fail the socket
            log.warning("gateway.ephemeral_publish_failed", type="presence.changes", exc_info=True)

    async def _publish(self, data: Contract) -> None:
        try:
            await self.bus.publish(EPHEMERAL, data, source=SOURCE)
        except Exception:  # typing and presence are best effort: a bus hiccup must not fail the socket
            log.warning("gateway.ephemeral_publish_failed", type=getattr(data, "type", "?"), exc_info=True)

    # --- every instance's reports, from the bus -----------------------------------------------------------------

    async def on_event(self, envelope: Envelope) -> None:
        """Typing and presence are best effort: a failure is logged, never retried (that would stall the rest)."""
        try:
            await self._on_event(envelope.data)
        except Exception:
            log.exception("gateway.ephemeral_event_failed", type=getattr(envelope.data, "type", "?"))

    async def _on_event(self, data: Contract) -> None:
        if isinstance(data, eph.TypingChanged):
            if data.typing and data.expires_at <= datetime.now(UTC):
                return  # arrived too late to mean anything
            if data.typing and self.memberships.blocked(data.room_id):
                return  # started before the block, on an instance that had not heard of it yet
            payload = data.model_dump(mode="json", exclude={"type"})
            await self.sockets.broadcast("typing", payload, data.room_id, droppable=True, skip_user=data.user_id)
        elif isinstance(data, eph.PresenceChanges):
            for change in data.changes:
                seen = Seen(change.status, change.last_seen)
                self.board.report(change.user_id, data.instance_id, seen, room=data.room_id)
            await self._show_room(data.room_id, [change.user_id for change in data.changes])
        elif isinstance(data, eph.PresenceChanged):
            seen = Seen(data.status, data.last_seen)
            self.board.report(data.user_id, data.instance_id or "unnamed", seen, room=data.room_id)
            await self._show_room(data.room_id, [data.user_id])
        elif isinstance(data, eph.GatewayHeartbeat):
            await self._heartbeat(data)

    async def _heartbeat(self, data: eph.GatewayHeartbeat) -> None:
        now = time.monotonic()
        if data.instance_id == self.instance:
            self.board.heartbeat(data.instance_id, data.started_at, now=now, interval=data.interval_seconds)
            return
        newcomer = self.board.is_new(data.instance_id, data.started_at)
        restarted = self.board.heartbeat(data.instance_id, data.started_at, now=now, interval=data.interval_seconds)
        await self._show_users(restarted)
        if newcomer:
            # A new (or restarted) instance knows nothing yet: tell it what this one sees. Members see no
            # change, because only changes are shown.
            for user, status in list(self.announced.items()):
                await self._announce(user, status)

    async def _show_users(self, users: set[uuid.UUID]) -> None:
        by_room: dict[uuid.UUID, list[uuid.UUID]] = {}
        for user in users:
            for room in self.rooms_of(user):
                by_room.setdefault(room, []).append(user)
        for room, members in by_room.items():
            await self._show_room(room, members)

    async def _show_room(self, room: uuid.UUID, users: list[uuid.UUID]) -> None:
        """Show a room's members what changed: ``presence`` for one member (not sent to that member's own sockets),
        ``presence:changes`` for several (to everyone in the room: one frame for all of them)."""
        if self.memberships.blocked(room):
            return  # a direct room closed by a block shows neither person to the other
        changes = []
        for user in users:
            seen = self.board.to_show(room, user)
            if seen is not None:
                changes.append(
                    {
                        "user_id": str(user),
                        "status": seen.status,
                        "last_seen": seen.last_seen.isoformat() if seen.last_seen else None,
                    }
                )
        if len(changes) == 1:
            (change,) = changes
            payload = {"room_id": str(room), **change}
            await self.sockets.broadcast(
                "presence", payload, room, droppable=True, skip_user=uuid.UUID(change["user_id"])
            )
        elif changes:
            await self.sockets.broadcast(
                "presence:changes", {"room_id": str(room), "changes": changes}, room, droppable=True
            )

    def rooms_of(self, user: uuid.UUID) -> set[uuid.UUID]:
        """The rooms of ``user`` as this instance knows them, and as the instances that report them do."""
        return self.memberships.rooms_of(user) | self.board.rooms_reported.get(user, set())

    def members_of(self, room: uuid.UUID) -> set[uuid.UUID]:
        """The members of ``room`` this instance knows of, and those other instances report there."""
        return set(self.memberships.members_of(room)) | self.board.reported_in.get(room, set())

    def seen_as(self, user: uuid.UUID) -> Status:
        """What members are shown of ``user`` once this instance has reported its sockets' status: the best of that
        and of every other instance's report (another device may keep them online)."""
        here = self.sockets.local_status(user)
        elsewhere = self.board.status(user, excluding=self.instance).status
        return here if rank(here) >= rank(elsewhere) else elsewhere

    def present_in(self, room: uuid.UUID) -> list[dict[str, Any]]:
        """Members of ``room`` who are online or away, for a subscribe answer (none in a room closed by a block)."""
        if self.memberships.blocked(room):
            return []
        found = []
        for user in self.members_of(room):
            seen = self.board.status(user)
            if seen.status != "offline":
                found.append(
                    {
                        "user_id": str(user),
                        "status": seen.status,
                        "last_seen": seen.last_seen.isoformat() if seen.last_seen else None,
                    }
                )
        return found
