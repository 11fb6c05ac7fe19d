"""Room members as people run them across server restarts, each keeping the room's presence as its screen shows
it: a web-like Socket.IO client that reconnects and resubscribes by itself (as socket.io-client and the web client
do: the subscribe answer replaces the list, then ``presence`` and ``presence:changes`` update it), and chat-cli's
interactive room view without a screen (``RoomView`` on prompt_toolkit's pipe input)."""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import socketio
from chat_cli.api import Api
from chat_cli.config import Config
from chat_cli.interactive import RoomView
from prompt_toolkit.application import create_app_session
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

SUBSCRIBE_TIMEOUT = 15


@dataclass
class WebLike:
    """One browser tab in one room: Socket.IO's own reconnection, a resubscribe from the last seq on every connect,
    and the members' statuses as the tab shows them."""

    base: str
    token: str
    room_id: str
    me: str
    sio: socketio.AsyncClient = field(
        default_factory=lambda: socketio.AsyncClient(reconnection_delay=0.2, reconnection_delay_max=1)
    )
    presence: dict[str, str] = field(default_factory=dict)
    last_seq: int = 0
    subscriptions: int = 0
    """Subscribe answers received: one per (re)connection."""
    bodies: list[str] = field(default_factory=list)
    log: list[str] = field(default_factory=list)
    """What happened to the tab's picture, for a failure message."""
    closing: bool = False
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def start(self) -> None:
        self.sio.on("connect", self._connected)
        self.sio.on("presence", self._one)
        self.sio.on("presence:changes", self._changes)
        self.sio.on("message:new", self._message)
        await self.sio.connect(self.base, auth={"token": self.token}, transports=["websocket"], wait_timeout=10)

    async def close(self) -> None:
        self.closing = True
        await self.sio.disconnect()
        for task in list(self._tasks):
            task.cancel()

    def sees(self, user_id: str) -> str:
        """What the tab shows for ``user_id`` (itself always online, as the web client does)."""
        return "online" if user_id == self.me else self.presence.get(user_id, "offline")

    async def _connected(self) -> None:
        # An ack cannot arrive while the connect handler runs: subscribe from a task of its own.
        task = asyncio.create_task(self._subscribe())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _subscribe(self) -> None:
        payload = {"room_id": self.room_id, "last_seq": self.last_seq}
        while not self.closing:  # (``connected`` is set only once the connect handler has returned)
            with contextlib.suppress(socketio.exceptions.TimeoutError, socketio.exceptions.BadNamespaceError):
                answer = await self.sio.call("room:subscribe", payload, timeout=SUBSCRIBE_TIMEOUT)
                self.log.append(f"subscribed: {answer}")
                if answer.get("ok"):
                    self.presence = {p["user_id"]: p["status"] for p in answer.get("presence") or []}
                    self.subscriptions += 1
                    return
            await asyncio.sleep(0.2)

    async def _one(self, data: dict[str, Any]) -> None:
        await self._changes({"room_id": data["room_id"], "changes": [data]})

    async def _changes(self, data: dict[str, Any]) -> None:
        self.log.append(f"changes: {data}")
        if data["room_id"] == self.room_id:
            for change in data["changes"]:
                self.presence[change["user_id"]] = change["status"]

    async def _message(self, data: dict[str, Any]) -> None:
        if data["room_id"] == self.room_id:
            self.last_seq = max(self.last_seq, int(data["seq"]))
            self.bodies.append(str(data["body"]))


def cli_session(base: str, tokens: Mapping[str, Any], config_path: Path) -> Api:
    """chat-cli signed in on ``base`` with ``tokens`` (a login answer), its config file at ``config_path``."""
    api = Api(base, Config(path=config_path))
    api.store_tokens(dict(tokens))
    return api


@asynccontextmanager
async def cli_in_room(api: Api, room_id: str) -> AsyncIterator[RoomView]:
    """``chat-cli open`` on ``room_id`` with its own reconnection, without a screen; left with Ctrl-D."""
    with create_pipe_input() as keys, create_app_session(input=keys, output=DummyOutput()):
        view = RoomView(api, {"id": room_id, "name": "room"}, transcript=io.StringIO())
        running = asyncio.create_task(view.run())
        try:
            yield view
        finally:
            keys.send_text("\x04")
            try:
                await asyncio.wait_for(running, 20)
            finally:
                await api.aclose()


def cli_sees(view: RoomView, user_id: str) -> str:
    """What the CLI's status line shows for ``user_id``."""
    return view.state.presence.get(user_id, "offline")
