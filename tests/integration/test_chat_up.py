"""`chat up` as a person meets it: one command starts embedded PostgreSQL and SecantusDB as child servers and the
whole product on one port, prints the URL and the email codes; Ctrl-C stops everything it started, and so does
SIGTERM (`kill`, a process manager); the data is there again after a restart (accounts, rooms, messages, and
sending still works)."""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import socketio

from .chat_up import Footprint, Up, own_infra_dir, running_up, up_environment
from .procfs import listening
from .product import PASSWORD, until


@pytest.fixture
def up_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    with own_infra_dir() as infra:
        yield up_environment(tmp_path, infra=infra)


@pytest.fixture
async def start_up(up_env: dict[str, str]) -> AsyncIterator[Any]:
    async with running_up(up_env) as start:

        async def started() -> Up:
            up: Up = await start()
            await up.ready()
            return up

        yield started


async def _socket(base: str, token: str) -> socketio.AsyncClient:
    client = socketio.AsyncClient(reconnection=False)
    await client.connect(base, auth={"token": token}, transports=["websocket"], wait_timeout=10)
    return client


async def test_chat_up_serves_the_product_stops_its_servers_on_ctrl_c_and_sigterm_and_keeps_the_data(
    start_up: Any, up_env: dict[str, str]
) -> None:
    first: Up = await start_up()
    footprint = Footprint.of(first.process.pid, up_env)
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
    assert listening(set(footprint.ports)) == footprint.ports, "the product and the embedded servers listen"

    status = await first.interrupt()
    assert status == 0, f"exit status {status}:\n{first.output()}"
    assert footprint.left() == "", f"Ctrl-C stops everything it started:\n{footprint.left()}{first.output()}"

    second: Up = await start_up()
    footprint = Footprint.of(second.process.pid, up_env)
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
    status = await second.stop(signal.SIGTERM)
    assert status == 0, f"exit status {status}:\n{second.output()}"
    assert second.said("app.stopped"), "the app drained and stopped its modules before the process ended"
    assert footprint.left() == "", f"SIGTERM stops everything it started:\n{footprint.left()}{second.output()}"
