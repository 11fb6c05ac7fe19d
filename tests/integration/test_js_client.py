"""The gateway with the official JavaScript client (socket.io-client, pinned in tests/js/package.json) through the
whole product in one process: a refused token's connect_error code, chat between a JS client and a python client
with acks and idempotent resends, and recovery of what the JS client missed. tests/js/chat-client.mjs is the driver:
it runs JSON steps from stdin and prints every event and ack as a JSON line."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

import pytest

from chat_contracts.fields import MAX_FRAME_BYTES

from .product import Client, Product, connect, product, until

__all__ = ["product"]  # the fixture, imported for pytest

JS_DIR = Path(__file__).resolve().parents[1] / "js"
DRIVER = JS_DIR / "chat-client.mjs"
FIX = "run `make js-deps` (or `npm ci --no-audit --no-fund --prefix tests/js`)"
Line = dict[str, Any]


class JsClient:
    """One node process running chat-client.mjs: steps go to its stdin, its stdout lines are collected."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[Line] = []
        self.stderr = b""
        self._readers = [asyncio.create_task(self._read_stdout()), asyncio.create_task(self._read_stderr())]

    async def _read_stdout(self) -> None:
        assert self.process.stdout is not None
        async for raw in self.process.stdout:
            text = raw.decode(errors="replace").strip()
            try:
                self.lines.append(json.loads(text))
            except json.JSONDecodeError:
                self.lines.append({"type": "not_json", "text": text})

    async def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        self.stderr = await self.process.stderr.read()

    async def step(self, op: str, **args: Any) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"op": op, **args}).encode() + b"\n")
        await self.process.stdin.drain()

    def printed(self, kind: str, event: str | None = None) -> list[Line]:
        """The lines of that type (``event``, ``ack``, ``waited``, …), optionally for one event name, in order."""
        return [x for x in self.lines if x["type"] == kind and (event is None or x.get("event") == event)]

    async def expect(self, kind: str, event: str | None = None, nth: int = 1, timeout: float = 20) -> Line:
        """The nth such line; fails (with node's output, see js_client) if it is not printed in time."""
        stdout_ended = self._readers[0].done
        with suppress(TimeoutError):
            await until(lambda: stdout_ended() or len(self.printed(kind, event)) >= nth, timeout)
        found = self.printed(kind, event)
        assert len(found) >= nth, f"the JS client printed {len(found)} {kind} {event or ''} line(s), expected {nth}"
        return found[nth - 1]

    async def ack(self, event: str, nth: int = 1) -> Any:
        return (await self.expect("ack", event, nth))["ack"]

    def received(self, event: str) -> list[Any]:
        return [line["data"] for line in self.printed("event", event)]

    async def finish(self, timeout: float = 20) -> int:
        """Ends stdin (the end of the script) and waits for node to exit; returns its exit code."""
        assert self.process.stdin is not None
        if not self.process.stdin.is_closing():
            self.process.stdin.close()
        async with asyncio.timeout(timeout):
            code = await self.process.wait()
            await asyncio.gather(*self._readers)
        return code

    def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()

    def output(self) -> str:
        printed = "\n".join(json.dumps(line) for line in self.lines[-40:])
        stderr = self.stderr.decode(errors="replace")
        return f"--- node stdout (last 40 lines) ---\n{printed}\n--- node stderr ---\n{stderr}"


@asynccontextmanager
async def js_client(
    product: Product, token: str, room_id: str = "", *, transport: str = "websocket"
) -> AsyncIterator[JsClient]:
    """Runs the driver; any failure inside carries node's stdout and stderr, and node never outlives the block."""
    node = shutil.which("node")
    if node is None:
        pytest.fail(f"node is not on PATH: install Node.js 20 or later with npm, then {FIX}", pytrace=False)
    if not (JS_DIR / "node_modules" / "socket.io-client" / "package.json").is_file():
        pytest.fail(f"tests/js/node_modules has no socket.io-client: {FIX}", pytrace=False)
    process = await asyncio.create_subprocess_exec(
        node,
        str(DRIVER),
        product.base,
        token,
        room_id,
        cwd=JS_DIR,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "CHAT_CLIENT_TRANSPORT": transport},
    )
    client = JsClient(process)
    failure: Exception | None = None
    try:
        yield client
    except Exception as exc:
        failure = exc
    finally:
        client.kill()
        await client.finish()
    if failure is not None:
        why = failure if isinstance(failure, AssertionError) else repr(failure)
        raise AssertionError(f"{why}\n{client.output()}") from failure


async def chatting_pair(product: Product) -> tuple[str, Client, str]:
    """ada (python client, subscribed) and bob (a member, for the JS client) in a new room: (room, ada, bob's token)."""
    ada, bob = [await product.sign_up(n) for n in ("ada", "bob")]
    headers = {"Authorization": f"Bearer {ada['access_token']}"}
    room_id = str(
        (await product.http.post("/api/rooms", json={"kind": "public", "name": "lobby"}, headers=headers)).json()["id"]
    )
    joined = await product.http.post(
        f"/api/rooms/{room_id}/join", headers={"Authorization": f"Bearer {bob['access_token']}"}
    )
    assert joined.status_code == 200, joined.text
    a = await connect(product, ada["access_token"])
    for _ in range(100):  # the gateway learns memberships from room events: wait for it
        answer = await a.sio.call("room:subscribe", {"room_id": room_id}, timeout=15)
        if answer["ok"]:
            break
        await asyncio.sleep(0.1)
    assert answer["ok"] is True, answer
    return room_id, a, str(bob["access_token"])


async def send(client: Client, room_id: str, client_msg_id: str, body: str) -> dict[str, Any]:
    sent = await client.sio.call(
        "message:send", {"room_id": room_id, "client_msg_id": client_msg_id, "body": body}, timeout=15
    )
    assert sent["ok"] is True, sent
    return dict(sent)


async def test_a_js_client_with_a_bad_token_gets_connect_error_with_its_code(product: Product) -> None:
    ada = await product.sign_up("ada")
    header, payload, _signature = str(ada["access_token"]).split(".")
    forged = base64.urlsafe_b64encode(bytes(32)).rstrip(b"=").decode()
    for token, code in (("not.a.token", "token_malformed"), (f"{header}.{payload}.{forged}", "token_bad_signature")):
        async with js_client(product, token) as js:
            refused = await js.expect("connect_error")
            assert await js.finish() == 2
            assert refused["code"] == code, refused
            assert (refused["data"]["code"], refused["data"]["message"]) == (code, refused["message"]), refused
            assert refused["message"] == "The token is not valid.", refused
            assert js.printed("connect") == []


async def test_a_js_client_and_a_python_client_chat_with_acks_and_idempotent_resends(product: Product) -> None:
    room_id, ada, bob_token = await chatting_pair(product)
    try:
        async with js_client(product, bob_token, room_id) as bob:
            await bob.step("subscribe")
            subscribed = await bob.ack("room:subscribe")
            assert subscribed["ok"] is True, subscribed
            assert subscribed["room_id"] == room_id

            first = await send(ada, room_id, "a-1", "hi bob")
            await bob.step("wait", event="message:new", count=1)
            await bob.expect("waited")
            [heard] = bob.received("message:new")
            assert (heard["seq"], heard["body"], heard["id"]) == (first["seq"], "hi bob", first["message_id"])
            assert (heard["room_id"], heard["client_msg_id"]) == (room_id, "a-1")

            await bob.step("send", client_msg_id="b-1", body="hi ada")
            reply = await bob.ack("message:send")
            assert reply["ok"] is True, reply
            assert (reply["seq"], reply["room_id"]) == (first["seq"] + 1, room_id)
            await until(lambda: reply["seq"] in ada.messages(room_id))
            [mine] = [p for e, p in ada.received if e == "message:new" and p["seq"] == reply["seq"]]
            assert (mine["body"], mine["id"], mine["client_msg_id"]) == ("hi ada", reply["message_id"], "b-1")

            await bob.step("send", client_msg_id="b-1", body="hi ada")
            again = await bob.ack("message:send", nth=2)
            assert again == reply, "a resend gets the same message"

            last = await send(ada, room_id, "a-2", "still one each?")
            await until(lambda: last["seq"] in ada.messages(room_id))
            await bob.step("wait", event="message:new", count=3)
            await bob.expect("waited", nth=2)
            assert ada.messages(room_id) == [1, 2, 3], "the resend is not delivered twice"
            assert [m["seq"] for m in bob.received("message:new")] == [1, 2, 3], "nor to the JS client that resent it"
            assert await bob.finish() == 0
            assert bob.lines[-1] == {"type": "done"}
    finally:
        await ada.sio.disconnect()


async def test_a_js_client_resubscribing_with_last_seq_gets_exactly_what_it_missed(product: Product) -> None:
    room_id, ada, bob_token = await chatting_pair(product)
    try:
        async with js_client(product, bob_token, room_id) as bob:
            await bob.step("subscribe")
            assert (await bob.ack("room:subscribe"))["ok"] is True
            await send(ada, room_id, "a-1", "#1")
            await bob.step("wait", count=1)
            assert await bob.finish() == 0
            [seen] = bob.received("message:new")
            assert seen["seq"] == 1

        missed = [await send(ada, room_id, f"a-{n}", f"#{n}") for n in range(2, 7)]
        async with js_client(product, bob_token, room_id) as back:
            await back.step("subscribe", last_seq=1)
            recovered = await back.ack("room:subscribe")
            shape = {key: recovered.get(key) for key in ("ok", "room_id", "recovered", "seq", "replayed")}
            assert shape == {"ok": True, "room_id": room_id, "recovered": True, "seq": 6, "replayed": 5}, recovered
            live = await send(ada, room_id, "a-7", "live")
            await back.step("wait", count=6)
            assert await back.finish() == 0
            got = back.received("message:new")
            assert [m["seq"] for m in got] == [2, 3, 4, 5, 6, 7], "exactly the missed ones, in order, then the live one"
            assert [m["id"] for m in got] == [m["message_id"] for m in missed] + [live["message_id"]]
            assert [m["body"] for m in got] == ["#2", "#3", "#4", "#5", "#6", "live"]
    finally:
        await ada.sio.disconnect()


@pytest.mark.parametrize("transport", ["websocket", "polling"])
async def test_a_js_client_sending_a_frame_over_the_limit_reads_frame_too_large_and_only_its_socket_ends(
    product: Product, transport: str
) -> None:
    room_id, ada, bob_token = await chatting_pair(product)
    try:
        async with js_client(product, bob_token, room_id, transport=transport) as bob:
            await bob.step("subscribe")
            assert (await bob.ack("room:subscribe"))["ok"] is True
            await bob.step("oversize", bytes=MAX_FRAME_BYTES + 1)
            ended = await bob.expect("event", "session:ended")
            assert ended["data"] == {"reason": "frame_too_large"}
            gone = await bob.expect("disconnect")
            assert gone["reason"] == "io server disconnect", gone
            assert await bob.finish() == 1
            assert bob.printed("ack", "message:send") == []
        after = await send(ada, room_id, "a-1", "the others go on")
        await until(lambda: after["seq"] in ada.messages(room_id))
    finally:
        await ada.sio.disconnect()
