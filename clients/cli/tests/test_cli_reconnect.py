"""chat-cli's socket across a server going away and coming back (a small Socket.IO server on loopback): each
connection is a fresh client, one given up leaves nothing open and says nothing more; and what /away says."""

from __future__ import annotations

import asyncio
import gc
import socket
from pathlib import Path
from typing import Any

import pytest
import socketio
import uvicorn
from chat_cli.api import Api
from chat_cli.config import Config
from chat_cli.errors import Unreachable
from chat_cli.realtime import Socket
from chat_cli.room_commands import presence_note


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Server:
    """A Socket.IO server on loopback that accepts anyone and greets each connection with ``hello``."""

    def __init__(self, port: int) -> None:
        self.sio = socketio.AsyncServer(async_mode="asgi", logger=False, engineio_logger=False)
        self.sio.on("connect", self._connect)
        config = uvicorn.Config(socketio.ASGIApp(self.sio), host="127.0.0.1", port=port, log_level="error")
        self.server = uvicorn.Server(config)
        self.task: asyncio.Task[None] | None = None

    async def _connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        await self.sio.emit("hello", {"sid": sid}, to=sid)

    async def start(self) -> None:
        self.task = asyncio.create_task(self.server.serve())
        await until(lambda: self.server.started)

    async def stop(self) -> None:
        self.server.should_exit = True
        if self.task is not None:
            await self.task


async def until(condition: Any, timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


@pytest.fixture
def api(tmp_path: Path) -> Api:
    port = _free_port()
    config = Config(path=tmp_path / "config.json", access_token="t", access_expires_at=4e9)
    return Api(f"http://127.0.0.1:{port}", config)


async def test_a_socket_outlives_its_server_going_away_and_leaves_nothing_open(api: Api) -> None:
    reported: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    port = int(api.server.rsplit(":", 1)[1])
    sock = Socket(api)
    greetings: list[str] = []
    drops: list[Any] = []
    lost = asyncio.Event()

    async def hello(data: dict[str, Any]) -> None:
        greetings.append(data["sid"])

    async def dropped(reason: Any = None) -> None:
        drops.append(reason)
        lost.set()

    sock.on("hello", hello)
    sock.on("disconnect", dropped)
    first, second = Server(port), Server(port)
    try:
        await first.start()
        await sock.connect()
        await until(lambda: len(greetings) == 1)
        stopping = asyncio.create_task(first.stop())
        await lost.wait()  # the server went away under the client: try again at once, as the room view does
        for _ in range(3):
            with pytest.raises(Unreachable):
                await sock.connect()
        await stopping
        await second.start()
        await sock.connect()
        await until(lambda: len(greetings) == 2)
        assert sock.sio.connected
        await sock.close()
        assert len(drops) == 2, "only the current connection's disconnect is heard, once each"
    finally:
        await api.aclose()
        await first.stop()
        await second.stop()
    gc.collect()
    await asyncio.sleep(0.1)
    assert reported == [], "no connection given up leaves an HTTP session open (the 'Exception None' screen)"


@pytest.mark.parametrize(
    ("away", "seen_as", "said"),
    [
        (True, "online", "you are away here; others still see you online because another device is active"),
        (True, "away", "you are away; others see you as away"),
        (False, "online", "you are online"),
    ],
)
def test_away_says_what_the_others_see(away: bool, seen_as: str, said: str) -> None:
    assert presence_note(away=away, seen_as=seen_as) == said
