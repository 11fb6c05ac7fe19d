"""What reaches the sockets from the bus: messages events fanned out to a room's sockets (encoded once), room
events (memberships, ``room:added``/``room:invited``/``room:removed``, ``room:event``), and ended sessions and
withdrawn signing keys (their sockets are closed).

The frames are written by ``adapters/fanout`` (the only module that touches python-engineio's sockets).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import structlog
from pydantic import TypeAdapter

from chat_contracts import messages_events as mev
from chat_contracts import rooms as rev
from chat_contracts import users as uev
from chat_contracts.base import Contract
from chat_contracts.envelope import Envelope
from chat_gateway.adapters import fanout
from chat_gateway.adapters.socketio_packets import GuardedServer
from chat_gateway.adapters.ws_frames import Frame, event_frame
from chat_gateway.domain.membership import Memberships
from chat_gateway.domain.presence import Status
from chat_gateway.service.background import Background
from chat_gateway.service.commands import Requests
from chat_gateway.service.connections import Connections, room_channel, user_channel
from chat_gateway.service.metrics import GatewayMetrics
from chat_gateway.service.presence import Presence
from chat_gateway.service.protocol import MESSAGE_EVENTS
from chat_gateway.settings import GatewaySettings

log = structlog.get_logger("chat.gateway")

_JSON_TIME: TypeAdapter[datetime] = TypeAdapter(datetime)
"""A time in JSON as pydantic writes every model's (``MessageOut.created_at``)."""

NAMESPACE = "/"
LIVE_ROOM_EVENT_AGE = timedelta(seconds=60)
"""Room events older than this are a replay of the topic, applied to memberships but not announced."""


class Delivery:
    def __init__(
        self,
        *,
        sio: GuardedServer,
        settings: GatewaySettings,
        connections: Connections,
        memberships: Memberships,
        requests: Requests,
        background: Background,
        metrics: GatewayMetrics,
    ) -> None:
        self.sio = sio
        self.delivered = metrics.deliveries
        self.slow_consumers = metrics.slow_consumers
        self.settings = settings
        self.connections = connections
        self.memberships = memberships
        self.requests = requests
        self.background = background
        self.presence: Presence | None = None
        """Set once the presence relay exists (it broadcasts through this delivery)."""

    def _presence(self) -> Presence:
        if self.presence is None:
            raise RuntimeError("Delivery.presence is set when the gateway is put together")
        return self.presence

    def local_status(self, user_id: uuid.UUID) -> Status:
        """What this instance sees of the user (for presence)."""
        return self.connections.local_status(user_id)

    async def end(self, sid: str, reason: str) -> None:
        """Tell the socket why (``session:ended``) and close it."""
        self.connections.ending.add(sid)
        await self.sio.emit("session:ended", {"reason": reason}, to=sid)
        await self.sio.disconnect(sid)

    # --- messages events --------------------------------------------------------------------------------------

    async def on_message_events(self, envelopes: Sequence[Envelope]) -> None:
        """A batch of messages events: every socket gets what is for it in one write (see ``fanout``)."""
        for envelope in envelopes:
            await self.on_message_event(envelope)

    async def on_message_event(self, envelope: Envelope) -> None:
        """Resolve a waiting ack, then fan the event out to the room (encoded once for every recipient)."""
        self.requests.answered(envelope)
        data = envelope.data
        if isinstance(data, mev.MessageRejected):
            return
        name, payload, seq = client_event(data)
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
        frame: Frame | None = None
        written = 0
        lagging: list[str] = []
        limit = self.settings.buffer_soft_limit_bytes if droppable else self.settings.buffer_hard_limit_bytes
        by_sid, ending = self.connections.by_sid, self.connections.ending
        channel = room_channel(room_id)
        for sid, eio_sid in self.sio.manager.get_participants(NAMESPACE, channel):
            connection = by_sid.get(sid)
            socket = fanout.socket_of(eio, eio_sid)
            if connection is None or socket is None or sid in ending:
                continue
            if skip_user is not None and connection.user.sub == skip_user:
                continue
            if not droppable and connection.replaying and room_id in connection.replaying:
                connection.replaying[room_id].append((seq, event, payload))
                continue
            if new and connection.delivered.get(channel, 0) >= seq:
                continue
            if socket.backlog() >= limit:
                if not droppable:
                    lagging.append(sid)
                continue
            if new:
                connection.delivered[channel] = seq
            if frame is None:
                frame = event_frame(event, orjson.dumps(payload))
            # The same frame for every recipient, written to its connection without a task per recipient (as
            # python-socketio's room emit would make) or per socket (as python-engineio's writer is).
            socket.send_frame(frame)
            written += 1
        if written:
            self.delivered.inc(written)
        if lagging:
            self.slow_consumers.inc(len(lagging))
        for sid in lagging:
            log.warning("gateway.slow_consumer", sid=sid, room_id=str(room_id))
            self.connections.ending.add(sid)
            self.background.spawn(self.end(sid, "slow_consumer"))

    # --- room and user events ---------------------------------------------------------------------------------

    async def on_room_event(self, envelope: Envelope) -> None:
        data = envelope.data
        presence = self._presence()
        for room, user in self.memberships.apply(data):
            presence.member_left(room, user)
            for connection in self.connections.of_user(user):
                if room not in connection.rooms:
                    continue
                connection.leave(room)
                await self.sio.leave_room(connection.sid, room_channel(room))
                await self.sio.emit("room:removed", {"room_id": str(room)}, to=connection.sid)
        if isinstance(data, rev.MemberJoined) and self.memberships.role(data.room_id, data.user_id) is not None:
            await presence.member_joined(data.room_id, data.user_id)
        if isinstance(data, rev.RoomBlocked):
            await presence.room_closed(data.room_id)
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
            for connection in self.connections.of_user(data.user_id):
                if not sessions or connection.user.sid in sessions:
                    await self.end(connection.sid, reason)
        elif isinstance(data, uev.SigningKeyWithdrawn):
            # Its tokens are refused everywhere now; sockets that authenticated with one go too (a client
            # refreshes and comes back with a token of the key that took over).
            for connection in list(self.connections.by_sid.values()):
                if connection.user.kid == data.kid:
                    await self.end(connection.sid, "token_key_withdrawn")


def client_event(data: Contract) -> tuple[str | None, dict[str, Any], int]:
    """The socket event for a messages event: its name, payload and seq (0 for markers' ordering purposes)."""
    kind = getattr(data, "type", "")
    if isinstance(data, mev.MessageCreated):
        return "message:new", new_message(data), data.seq
    payload = data.model_dump(mode="json", exclude={"request_id", "type"})
    seq = int(payload.get("seq") or payload.get("up_to_seq") or 0)
    names = {v: k for k, v in MESSAGE_EVENTS.items()}
    return names.get(kind), payload, seq


def new_message(data: mev.MessageCreated) -> dict[str, Any]:
    """A new message in the shape of a history page item (``MessageOut`` as JSON), so live and replayed ones
    match. Built straight from the event, which was validated when it was made: constructing a ``MessageOut`` to
    dump it again cost every message a validation (tests/test_new_message.py holds the two shapes equal)."""
    return {
        "id": str(data.message_id),
        "room_id": str(data.room_id),
        "seq": data.seq,
        "sender_id": str(data.sender_id),
        "client_msg_id": data.client_msg_id,
        "body": data.body,
        "created_at": _JSON_TIME.dump_python(data.created_at, mode="json"),
        "edited_at": None,
        "deleted": False,
        "deleted_by": None,
        "reply_to": None if data.reply_to is None else str(data.reply_to),
        "attachment_ids": [str(a) for a in data.attachment_ids],
        "mentions": [{"user_id": str(m.user_id), "username": m.username} for m in data.mentions.users],
        "mentions_room": data.mentions.room,
        "reactions": [],
        "version": 1,
    }
