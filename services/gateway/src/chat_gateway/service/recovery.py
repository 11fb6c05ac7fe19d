"""Subscribing a socket to a room, and recovering what it missed: the messages after the client's ``last_seq``
are replayed from history while the room's live events for that socket are held back, then the held-back ones
follow without a message twice or a gap (the seam). When too many were missed, the client is told to reload up to
the room's current seq, and the held-back events follow the answer.

Replayed and held-back events are written to the socket at once (``GuardedServer.write_now``), with nothing awaited
between the end of the hold and the answer: a live event cannot overtake them."""

from __future__ import annotations

import uuid

from chat_gateway.adapters.socketio_packets import GuardedServer, after_answer
from chat_gateway.service.connections import Connection, Replayed, room_channel
from chat_gateway.service.ports import History, HistoryUnavailable
from chat_gateway.service.protocol import Ack, Subscribe, fail, ok
from chat_gateway.settings import GatewaySettings


class Recovery:
    def __init__(self, *, sio: GuardedServer, history: History, settings: GatewaySettings) -> None:
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
        # Buffer live events for this socket while the missed ones are read, so none is lost or doubled.
        held: list[Replayed] = []
        connection.replaying[room] = held
        connection.rooms.add(room)
        await self.sio.enter_room(sid, room_channel(room))
        try:
            missed = await self.history.after(
                room, request.last_seq, self.settings.recovery_limit + 1, token=connection.token
            )
        except HistoryUnavailable:
            if connection.replaying.get(room) is held:
                del connection.replaying[room]
            return fail("unavailable", "History cannot be read right now; try again.", retry_after=2)
        if len(missed) > self.settings.recovery_limit:
            try:
                current = await self.history.last_seq(room, token=connection.token)
            except HistoryUnavailable:
                current = max(int(m["seq"]) for m in missed)
            # The client reloads up to ``current`` over HTTP when it has the answer: what comes live comes after it
            # (a message before the answer would be taken as the newest the client has, and the reload would skip
            # what lies between; one at or below ``current`` would be shown twice).
            after_answer(lambda: self._release(connection, room, held, current))
            return ok(room_id=str(room), recovered=False, seq=current)
        # From here to the answer nothing waits: what the socket is written cannot be overtaken by a live event.
        sent = request.last_seq
        for message in missed:
            self.sio.write_now(sid, "message:new", message)
            sent = max(sent, int(message["seq"]))
        sent = self._release(connection, room, held, sent)
        # Replayed messages come in their current state (edited, deleted, reactions); changes since then to
        # messages at or before last_seq, markers and member lists are not replayed: the client reloads those.
        return ok(room_id=str(room), recovered=True, seq=sent, replayed=len(missed), changes_recovered=False)

    def _release(self, connection: Connection, room: uuid.UUID, held: list[Replayed], sent: int) -> int:
        """Write the live events ``held`` back during a subscribe that are not covered by ``sent`` (the highest
        message seq the client has or reloads), then let the room's events through; returns the highest message
        seq sent. Nothing when the socket left the room or subscribed again meanwhile (that subscribe holds its
        own)."""
        if connection.replaying.get(room) is not held:
            return sent
        del connection.replaying[room]
        for seq, event, payload in held:
            if event != "message:new" or seq > sent:
                self.sio.write_now(connection.sid, event, payload)
                if event == "message:new":
                    sent = seq
        channel = room_channel(room)
        connection.delivered[channel] = max(sent, connection.delivered.get(channel, 0))
        return sent

    async def unsubscribe(self, connection: Connection, room: uuid.UUID) -> Ack:
        connection.leave(room)
        await self.sio.leave_room(connection.sid, room_channel(room))
        return ok(room_id=str(room))
