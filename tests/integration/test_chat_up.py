"""`chat up` as a person meets it: one command starts embedded PostgreSQL and SecantusDB as child servers and the
whole product on one port, prints the URL and the email codes; Ctrl-C stops everything it started; the data is
there again after a restart (accounts, rooms, messages, and sending still works)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import socketio

from .product import PASSWORD, free_port, until

STOP_SECONDS = 30


@dataclass
class Up:
    """One `chat up` process, its output read line by line."""

    process: asyncio.subprocess.Process
    base: str
    lines: list[str] = field(default_factory=list)
    reader: asyncio.Task[None] | None = None

    async def read(self) -> None:
        assert self.process.stdout is not None
        async for raw in self.process.stdout:
            self.lines.append(raw.decode(errors="replace").rstrip())

    def output(self) -> str:
        return "\n".join(self.lines[-80:])

    def code_for(self, email: str) -> str | None:
        for line in self.lines:
            if "mail.console" in line and email in line:
                found = re.search(r"\b(\d{6})\b", json.loads(line).get("subject", ""))
                if found:
                    return found.group(1)
        return None

    async def interrupt(self) -> int:
        """Ctrl-C, as a person at the terminal would; returns the exit status."""
        self.process.send_signal(signal.SIGINT)
        try:
            async with asyncio.timeout(STOP_SECONDS):
                status = await self.process.wait()
        except TimeoutError:
            self.process.kill()
            raise AssertionError(f"chat up did not stop within {STOP_SECONDS}s:\n{self.output()}") from None
        if self.reader is not None:
            await self.reader
        return status


def _port_answers(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def up_env(tmp_path: Path) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("CHAT_")}
    env.update(
        {
            "CHAT_INFRA_DIR": str(tmp_path / "infra"),
            "CHAT_INFRA_PG_PORT": str(free_port()),
            "CHAT_INFRA_MONGO_PORT": str(free_port()),
            "CHAT_DATA_DIR": str(tmp_path / "data"),
            "CHAT_HTTP_PORT": str(free_port()),
            "CHAT_LOG_FORMAT": "json",
            "CHAT_LOG_LEVEL": "info",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


@pytest.fixture
async def start_up(up_env: dict[str, str]) -> AsyncIterator[Any]:
    running: list[Up] = []

    async def start() -> Up:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "chat_app",
            "up",
            env=up_env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        up = Up(process=process, base=f"http://127.0.0.1:{up_env['CHAT_HTTP_PORT']}")
        up.reader = asyncio.create_task(up.read())
        running.append(up)
        try:
            await until(lambda: any("listening on http://" in line for line in up.lines) or process.returncode, 120)
            assert process.returncode is None, f"chat up exited:\n{up.output()}"
            async with httpx.AsyncClient(base_url=up.base, timeout=5) as http:
                for _ in range(200):
                    try:
                        if (await http.get("/readyz")).status_code == 200:
                            return up
                    except httpx.TransportError:
                        pass
                    await asyncio.sleep(0.1)
        except BaseException:
            print(up.output())
            raise
        raise AssertionError(f"chat up never became ready:\n{up.output()}")

    try:
        yield start
    finally:
        for up in running:
            if up.process.returncode is None:
                up.process.kill()
                await up.process.wait()
        # Whatever happened, stop the embedded servers this test's `chat up` may have left.
        stopper = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "chat_localinfra", "down", env=up_env, stdout=asyncio.subprocess.DEVNULL
        )
        await stopper.wait()


async def _socket(base: str, token: str) -> socketio.AsyncClient:
    client = socketio.AsyncClient(reconnection=False)
    await client.connect(base, auth={"token": token}, transports=["websocket"], wait_timeout=10)
    return client


async def test_chat_up_serves_the_product_stops_its_servers_on_ctrl_c_and_keeps_the_data(
    start_up: Any, up_env: dict[str, str]
) -> None:
    ports = [int(up_env["CHAT_INFRA_PG_PORT"]), int(up_env["CHAT_INFRA_MONGO_PORT"])]
    first: Up = await start_up()
    assert any(f"listening on {first.base}/" in line for line in first.lines), "the URL is printed"
    async with httpx.AsyncClient(base_url=first.base, timeout=20) as http:
        body = {"email": "ada@example.com", "username": "ada", "password": PASSWORD}
        assert (await http.post("/api/auth/register", json=body)).status_code == 202
        await until(lambda: first.code_for("ada@example.com"), 10)
        code = first.code_for("ada@example.com")
        verified = await http.post("/api/auth/email/verify", json={"email": "ada@example.com", "code": code})
        assert verified.status_code == 200, verified.text
        tokens = (await http.post("/api/auth/login", json={"identifier": "ada", "password": PASSWORD})).json()
        auth = {"Authorization": f"Bearer {tokens['access_token']}"}
        room = (await http.post("/api/rooms", json={"kind": "public", "name": "kept"}, headers=auth)).json()
        client = await _socket(first.base, tokens["access_token"])
        try:
            assert (await client.call("room:subscribe", {"room_id": room["id"]}, timeout=15))["ok"] is True
            sent = {"room_id": room["id"], "client_msg_id": "before", "body": "said before the restart"}
            assert (await client.call("message:send", sent, timeout=15))["seq"] == 1
        finally:
            await client.disconnect()
    assert all(_port_answers(port) for port in ports), "the embedded servers ran"

    status = await first.interrupt()
    assert status in (0, -signal.SIGINT, 130), f"exit status {status}:\n{first.output()}"
    assert not any(_port_answers(port) for port in ports), f"Ctrl-C stops the servers it started:\n{first.output()}"

    second: Up = await start_up()
    async with httpx.AsyncClient(base_url=second.base, timeout=20) as http:
        again = await http.post("/api/auth/login", json={"identifier": "ada", "password": PASSWORD})
        assert again.status_code == 200, "the account survived the restart"
        auth = {"Authorization": f"Bearer {again.json()['access_token']}"}
        page = (await http.get(f"/api/messages/rooms/{room['id']}/messages", headers=auth)).json()
        assert [m["body"] for m in page["items"]] == ["said before the restart"]
        client = await _socket(second.base, again.json()["access_token"])
        try:
            subscribed = await client.call("room:subscribe", {"room_id": room["id"], "last_seq": 0}, timeout=15)
            assert subscribed["ok"] is True, subscribed
            assert subscribed["seq"] == 1
            sent = {"room_id": room["id"], "client_msg_id": "after", "body": "and after"}
            answer = await client.call("message:send", sent, timeout=15)
            assert answer["seq"] == 2, answer
        finally:
            await client.disconnect()
    await second.interrupt()
    assert not any(_port_answers(port) for port in ports)
