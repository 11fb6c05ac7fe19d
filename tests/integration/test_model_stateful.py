"""A hypothesis stateful model of a room, run against the whole product (real PostgreSQL, Mongo-wire server, SMTP):
random sequences of join, leave, kick, connect, disconnect, subscribe (with the last seq seen), send and resend.

Checked after every step: seq is strictly increasing on every socket and dense across the room, a resend returns
the original seq and changes nothing, and no socket ever receives a room's message while its user is not a member.
``CHAT_MODEL_EXAMPLES`` sets the number of random programs (default 6; more in `make chaos`).
"""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import socketio
import uvicorn
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from chat_app.compose import build
from chat_gateway.bootstrap import GatewayModule
from chat_gateway.service.hub import Hub
from chat_localinfra.smtp import SmtpInbox
from chat_runtime.serving import server_config
from chat_runtime.settings import ChatSettings, load_settings

from .product import Product, free_port, product_env

T = TypeVar("T")
EXAMPLES = int(os.environ.get("CHAT_MODEL_EXAMPLES", "6"))
STEP_TIMEOUT = 20.0


class LoopThread:
    """An event loop in a thread: the product and the Socket.IO clients live there; the model drives it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, work: Coroutine[Any, Any, T], timeout: float = STEP_TIMEOUT) -> T:
        return asyncio.run_coroutine_threadsafe(work, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@dataclass
class World:
    loop: LoopThread
    product: Product
    hub: Hub
    users: list[dict[str, Any]]


@pytest.fixture
def world(
    tmp_path: Path,
    postgres_url: str,
    mongo_url: str,
    mongo_database_name: str,
    smtp_server: tuple[str, int, SmtpInbox],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[World]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    suffix = uuid.uuid4().hex[:8]
    inbox = smtp_server[2]
    env = product_env(
        base=base,
        data_dir=tmp_path,
        postgres_url=postgres_url,
        databases=(f"model_auth_{suffix}", f"model_rooms_{suffix}"),
        mongo_url=mongo_url,
        smtp_server=smtp_server,
        CHAT_MESSAGES_MONGO_DATABASE=mongo_database_name,
        CHAT_GATEWAY_EVENTS_BURST="100000",
        CHAT_ROOMS_ROOMS_PER_USER_PER_HOUR="100000",  # every program creates a room
        CHAT_MESSAGES_SEND_PER_SECOND="100",
    )
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    loop = LoopThread()
    app = build("all", load_settings(ChatSettings))
    gateway = next(m for m in app.state.modules if isinstance(m, GatewayModule))
    server = uvicorn.Server(server_config(gateway.wrap(app), host="127.0.0.1", port=port))
    serving = asyncio.run_coroutine_threadsafe(server.serve(), loop.loop)

    async def started() -> None:
        while not server.started:
            await asyncio.sleep(0.05)

    http = loop.run(_client(base), 5)
    try:
        loop.run(started(), 60)
        product = Product(base=base, http=http, inbox=inbox)
        users = [loop.run(product.sign_up(name), 30) for name in ("olga", "uma", "vic")]
        yield World(loop=loop, product=product, hub=gateway.hub, users=users)
    finally:
        server.should_exit = True
        serving.result(30)
        loop.run(http.aclose(), 5)
        loop.close()


async def _client(base: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=base, timeout=20)


@dataclass
class Device:
    """One user's socket and what it has shown (kept across reconnects, as a client keeps its history)."""

    user: int
    sio: socketio.AsyncClient | None = None
    subscribed: bool = False
    shown: list[int] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)


class ChatModel(RuleBasedStateMachine):
    world: World

    def __init__(self) -> None:
        super().__init__()
        w = self.world
        self.room = w.loop.run(self._create_room())
        self.members: set[int] = {0}
        self.sent: dict[int, dict[str, int]] = {0: {}, 1: {}, 2: {}}
        self.seqs: list[int] = []
        self.devices = [Device(user=i) for i in range(3)]

    # --- helpers (run on the loop thread) -------------------------------------------------------------------

    def _auth(self, user: int) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.world.users[user]['access_token']}"}

    async def _create_room(self) -> str:
        created = await self.world.product.http.post(
            "/api/rooms", json={"kind": "public", "name": f"m-{uuid.uuid4().hex[:6]}"}, headers=self._auth(0)
        )
        assert created.status_code == 201, created.text
        return str(created.json()["id"])

    def _user_id(self, user: int) -> uuid.UUID:
        return uuid.UUID(self.world.users[user]["user_id"])

    async def _gateway_knows(self, user: int, member: bool) -> None:
        room, uid = uuid.UUID(self.room), self._user_id(user)
        for _ in range(400):
            if (self.world.hub.memberships.role(room, uid) is not None) == member:
                return
            await asyncio.sleep(0.025)
        raise AssertionError(f"the gateway never saw user {user} {'join' if member else 'leave'}")

    def _record(self, device: Device) -> Any:
        async def on_message(data: dict[str, Any]) -> None:
            if data.get("room_id") != self.room:
                return
            seq = int(data["seq"])
            if device.user not in self.members:
                device.violations.append(f"user {device.user} (not a member) received seq {seq}")
            if device.shown and seq <= device.shown[-1]:
                device.violations.append(f"user {device.user} received seq {seq} after {device.shown[-1]}")
            else:
                device.shown.append(seq)

        async def on_removed(data: dict[str, Any]) -> None:
            if data.get("room_id") == self.room:
                device.subscribed = False

        return on_message, on_removed

    async def _connect(self, device: Device) -> None:
        client = socketio.AsyncClient(reconnection=False)
        on_message, on_removed = self._record(device)
        client.on("message:new", on_message)
        client.on("room:removed", on_removed)
        token = self.world.users[device.user]["access_token"]
        await client.connect(self.world.product.base, auth={"token": token}, transports=["websocket"])
        device.sio, device.subscribed = client, False

    async def _subscribe(self, device: Device) -> dict[str, Any]:
        """Subscribe with the last seq shown; ``unavailable`` (history not readable yet right after a join) is
        retried as a client does."""
        assert device.sio is not None
        for _ in range(100):
            last = device.shown[-1] if device.shown else 0
            answer: dict[str, Any] = await device.sio.call(
                "room:subscribe", {"room_id": self.room, "last_seq": last}, timeout=15
            )
            if answer.get("ok") or answer["error"]["code"] != "unavailable":
                break
            await asyncio.sleep(0.05)
        device.subscribed = bool(answer.get("ok"))
        return answer

    async def _settle(self) -> None:
        """Wait until every subscribed member's socket has shown every message (fan-out is asynchronous)."""
        for _ in range(400):
            if all(
                d.shown[-1:] == self.seqs[-1:]
                for d in self.devices
                if d.sio is not None and d.subscribed and d.user in self.members and self.seqs
            ):
                return
            await asyncio.sleep(0.025)
        raise AssertionError(f"fan-out did not settle: {[(d.user, d.shown[-3:]) for d in self.devices]}")

    # --- rules ------------------------------------------------------------------------------------------------

    @rule(user=st.sampled_from([1, 2]))
    def join(self, user: int) -> None:
        async def go() -> None:
            response = await self.world.product.http.post(f"/api/rooms/{self.room}/join", headers=self._auth(user))
            assert response.status_code == 200, response.text
            self.members.add(user)
            await self._gateway_knows(user, member=True)

        self.world.loop.run(go())

    @precondition(lambda self: len(self.members) > 1)
    @rule(user=st.sampled_from([1, 2]), kicked=st.booleans())
    def leave_or_kicked(self, user: int, kicked: bool) -> None:
        async def go() -> None:
            if kicked:
                path, who = f"/api/rooms/{self.room}/members/{self.world.users[user]['user_id']}/kick", 0
            else:
                path, who = f"/api/rooms/{self.room}/leave", user
            response = await self.world.product.http.post(path, headers=self._auth(who))
            if user not in self.members:
                assert response.status_code in (403, 404, 409), response.text
                return
            assert response.status_code == 204, response.text
            self.members.discard(user)
            await self._gateway_knows(user, member=False)

        self.world.loop.run(go())

    @rule(user=st.sampled_from([0, 1, 2]))
    def connect_and_subscribe(self, user: int) -> None:
        device = self.devices[user]

        async def go() -> None:
            if device.sio is None or not device.sio.connected:
                await self._connect(device)
            answer = await self._subscribe(device)
            if user in self.members:
                assert answer["ok"] is True, answer
                assert answer["recovered"] is True, answer
            else:
                assert answer["error"]["code"] == "not_member", answer
            await self._settle()

        self.world.loop.run(go())

    @rule(user=st.sampled_from([0, 1, 2]))
    def disconnect(self, user: int) -> None:
        device = self.devices[user]

        async def go() -> None:
            if device.sio is not None and device.sio.connected:
                await device.sio.disconnect()
            device.sio, device.subscribed = None, False

        self.world.loop.run(go())

    @rule(user=st.sampled_from([0, 1, 2]), resend=st.booleans())
    def send(self, user: int, resend: bool) -> None:
        device = self.devices[user]

        async def go() -> None:
            if device.sio is None or not device.sio.connected:
                await self._connect(device)
            assert device.sio is not None
            mine = self.sent[user]
            client_msg_id = next(iter(mine)) if resend and mine else f"u{user}-{uuid.uuid4().hex[:10]}"
            answer = await device.sio.call(
                "message:send", {"room_id": self.room, "client_msg_id": client_msg_id, "body": "x"}, timeout=15
            )
            if user not in self.members:
                assert answer["error"]["code"] == "not_member", answer
                return
            assert answer["ok"] is True, answer
            if client_msg_id in mine:
                assert answer["seq"] == mine[client_msg_id], "a resend returns the original seq"
            else:
                assert answer["seq"] == len(self.seqs) + 1, "seq is dense and increasing"
                mine[client_msg_id] = answer["seq"]
                self.seqs.append(answer["seq"])
            await self._settle()

        self.world.loop.run(go())

    @invariant()
    def nobody_saw_what_they_should_not(self) -> None:
        for device in self.devices:
            assert device.violations == [], device.violations

    def teardown(self) -> None:
        async def go() -> None:
            for device in self.devices:
                if device.sio is not None and device.sio.connected:
                    await device.sio.disconnect()

        self.world.loop.run(go())


def test_random_programs_keep_seq_order_and_membership(world: World) -> None:
    ChatModel.world = world
    run_state_machine_as_test(
        ChatModel,
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=15,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
            derandomize=os.environ.get("CHAT_MODEL_SEED") is None,
        ),
    )
