"""Subscribing a socket to a room, and recovering what it missed: the messages after the client's ``last_seq``
are replayed from history while the room's live events for that socket are held back, then the held-back ones
follow without a message twice or a gap (the seam)."""

from __future__ import annotations

import uuid

import socketio

from chat_gateway.service.connections import Connection, room_channel
from chat_gateway.service.ports import History, HistoryUnavailable
from chat_gateway.service.protocol import Ack, Subscribe, fail, ok
from chat_gateway.settings import GatewaySettings


class Recovery:
    def __init__(self, *, sio: socketio.AsyncServer, history: History, settings: GatewaySettings) -> None:
        self.sio = sio
        self.history = history
        self.settings = settings

    async def subscribe(self, connection: Connection, request: Subscribe) -> Ack:
        """Join the socket to the room (the caller checked membership); replay after ``last_seq`` when given."""
        sid, room = connection.sid, request.room_id
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
        return ok(room_id=str(room), recovered=True, seq=sent, replayed=len(missed), changes_recovered=False)

    async def unsubscribe(self, connection: Connection, room: uuid.UUID) -> Ack:
        connection.leave(room)
        await self.sio.leave_room(connection.sid, room_channel(room))
        return ok(room_id=str(room))
