"""The baseline: a plain python-socketio broadcast server. Clients ``join`` a room; the injector emits each message
to the room. No tokens, no bus, no checks: what fan-out costs with python-socketio alone.

It runs on the same uvicorn, and emits the same ``message:new`` payload (the shape and size of the gateway's), so
the two differ only in what the gateway does around the emit.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

import socketio

from bench.serving import Seat, stamped_body


class BaselineTarget:
    def __init__(self) -> None:
        self.sio = socketio.AsyncServer(async_mode="asgi", cors_allowed_origins="*")
        self.app = socketio.ASGIApp(self.sio)
        self.rooms: list[tuple[str, str]] = []
        self.seqs: dict[str, int] = {}

        @self.sio.on("join")  # type: ignore[untyped-decorator]
        async def join(sid: str, data: dict[str, Any]) -> dict[str, bool]:
            await self.sio.enter_room(sid, data["room"])
            return {"ok": True}

    async def setup(self, users: int, room_size: int) -> list[Seat]:
        seats = []
        for first in range(0, users, room_size):
            room = str(uuid.uuid4())
            self.rooms.append((room, str(uuid.uuid4())))
            seats += [Seat(token=None, room=room) for _ in range(min(room_size, users - first))]
        return seats

    async def inject_one(self, index: int) -> float:
        started = time.process_time()
        room, sender = self.rooms[index % len(self.rooms)]
        seq = self.seqs[room] = self.seqs.get(room, 0) + 1
        message = {
            "id": str(uuid.uuid4()),
            "room_id": room,
            "seq": seq,
            "sender_id": sender,
            "client_msg_id": f"bench-{index}",
            "body": stamped_body(time.time()),
            "created_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "edited_at": None,
            "deleted": False,
            "deleted_by": None,
            "reply_to": None,
            "attachment_ids": [],
            "mentions": [],
            "mentions_room": False,
            "reactions": [],
            "version": 1,
        }
        spent = time.process_time() - started
        await self.sio.emit("message:new", message, room=room)
        return spent

    async def stop(self) -> None:
        return None
