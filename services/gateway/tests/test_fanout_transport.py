"""The contract of chat_gateway.adapters.fanout with the libraries it reaches into (python-engineio, uvicorn): on a
real server, each transport a client can use gets every packet once and in order, and the fast path is really
the one taken. When a library changes under the adapter, these tests fail before users notice."""

from __future__ import annotations

import asyncio
import json
import tomllib
import uuid
from importlib.metadata import version
from pathlib import Path
from typing import Any

import socketio
import websockets
from packaging.requirements import Requirement

from chat_contracts.topics import MESSAGES_EVENTS
from chat_gateway.adapters import fanout
from chat_runtime.bus.inprocess import InProcessBus
from chat_runtime.bus.port import Outgoing

from .harness import Client, Cluster, Gateway, until
from .test_live import ADA, BOB, ROOM, created, subscribed

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def engine_socket(gateway: Gateway, user: uuid.UUID) -> Any:
    hub = gateway.hub
    sid = next(sid for sid, c in hub.connections.by_sid.items() if c.user.sub == user)
    return hub.sio.eio.sockets[hub.sio.manager.eio_sid_from_sid(sid, "/")]


async def publish_messages(cluster: Cluster, seqs: range) -> None:
    await InProcessBus(cluster.broker).publish_all(
        [Outgoing(MESSAGES_EVENTS, created(seq)) for seq in seqs], source="messages"
    )


def test_the_installed_libraries_are_the_versions_the_adapter_was_checked_against() -> None:
    wanted = {
        Requirement(line).name: Requirement(line)
        for line in tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    }
    for name in ("python-engineio", "python-socketio", "uvicorn"):
        assert wanted[name].specifier.contains(version(name)), f"{name} {version(name)} is outside {wanted[name]}"


async def test_a_websocket_served_by_uvicorn_is_written_straight_to_its_connection(cluster: Cluster) -> None:
    gateway = await cluster.start("gw-a")
    await cluster.join(ROOM, ADA, BOB)
    ada = await cluster.connect(gateway, ADA)
    socket = engine_socket(gateway, ADA)
    assert isinstance(socket, fanout.FastSocket)
    assert socket.writer is not None, "uvicorn's protocol was not recognised: the adapter fell back"
    assert socket.writer.usable
    await subscribed(ada)
    await publish_messages(cluster, range(1, 301))
    await until(lambda: len(ada.events("message:new")) == 300)
    assert [m["seq"] for m in ada.events("message:new")] == list(range(1, 301))
    assert socket.backlog() >= 0


async def test_an_open_websocket_keeps_nothing_of_its_handshake(cluster: Cluster) -> None:
    gateway = await cluster.start("gw-a")
    await cluster.connect(gateway, ADA)
    protocol = engine_socket(gateway, ADA).writer._protocol

    assert (protocol.request, protocol.response) == (None, None)
    assert protocol.scope["headers"] == []
    # websockets' parser holds the request it parsed in a local of its generator while it parses frames.
    held = protocol.conn.parser.gi_frame.f_locals.get("request")
    assert held is not None, "websockets no longer keeps the handshake request: the clearing can go"
    assert list(held.headers.raw_items()) == []


async def test_acks_and_broadcasts_of_one_socket_arrive_once_and_in_order(cluster: Cluster) -> None:
    gateway = await cluster.start("gw-a")
    await cluster.join(ROOM, ADA, BOB)
    ada, bob = await cluster.connect(gateway, ADA), await cluster.connect(gateway, BOB)
    await subscribed(ada)
    await subscribed(bob)

    async def acked_calls() -> list[Any]:
        return [await ada.call("room:subscribe", {"room_id": str(ROOM)}) for _ in range(20)]

    answers, _ = await asyncio.gather(acked_calls(), publish_messages(cluster, range(1, 201)))
    assert all(a["ok"] for a in answers)
    await until(lambda: len(bob.events("message:new")) == 200 and len(ada.events("message:new")) == 200)
    for client in (ada, bob):
        assert [m["seq"] for m in client.events("message:new")] == list(range(1, 201))


async def test_an_event_waiting_for_its_answer_holds_up_nothing_the_socket_sends_after_it(cluster: Cluster) -> None:
    # The reader hands each message to python-socketio itself (no task per packet); python-socketio must still run
    # each event's handler in a task of its own. Nothing answers sends in this cluster, so the send waits.
    gateway = await cluster.start("gw-a")
    await cluster.join(ROOM, ADA)
    ada = await cluster.connect(gateway, ADA)
    await subscribed(ada)
    assert gateway.hub.sio.async_handlers
    pending = ada.sio.call(
        "message:send", {"room_id": str(ROOM), "client_msg_id": str(uuid.uuid4()), "body": "hi"}, timeout=30
    )
    send = asyncio.ensure_future(pending)
    try:
        answers = [await ada.call("room:subscribe", {"room_id": str(ROOM)}) for _ in range(3)]
        assert all(a["ok"] for a in answers)
        assert not send.done()
    finally:
        send.cancel()


async def test_a_long_polling_socket_keeps_engineios_own_path_and_gets_every_broadcast(cluster: Cluster) -> None:
    gateway = await cluster.start("gw-a")
    await cluster.join(ROOM, ADA)
    client = Client(socketio.AsyncClient(reconnection=False))

    async def record(event: str, data: Any = None) -> None:
        client.received.append((event, data))

    client.sio.on("*", record)
    await client.sio.connect(gateway.base, auth={"token": cluster.token(ADA)}, transports=["polling"])
    cluster.clients.append(client)
    socket = engine_socket(gateway, ADA)
    assert isinstance(socket, fanout.FastSocket)
    assert socket.writer is None
    await subscribed(client)
    # python-engineio's client refuses a poll answer of more than 16 packets: a few at a time.
    for first in range(1, 41, 8):
        await publish_messages(cluster, range(first, first + 8))
        await until(lambda end=first + 7: len(client.events("message:new")) == end)  # type: ignore[misc]
    assert [m["seq"] for m in client.events("message:new")] == list(range(1, 41))


async def test_a_socket_upgraded_from_polling_is_then_written_directly_and_loses_nothing(cluster: Cluster) -> None:
    gateway = await cluster.start("gw-a")
    await cluster.join(ROOM, ADA)
    client = Client(socketio.AsyncClient(reconnection=False))

    async def record(event: str, data: Any = None) -> None:
        client.received.append((event, data))

    client.sio.on("*", record)
    await client.sio.connect(gateway.base, auth={"token": cluster.token(ADA)}, transports=["polling", "websocket"])
    cluster.clients.append(client)
    socket = engine_socket(gateway, ADA)
    await subscribed(client)
    await publish_messages(cluster, range(1, 9))
    await until(lambda: socket.writer is not None)
    await publish_messages(cluster, range(9, 61))
    await until(lambda: len(client.events("message:new")) == 60)
    assert [m["seq"] for m in client.events("message:new")] == list(range(1, 61))
    assert client.sio.transport() == "websocket"


async def test_heartbeats_keep_an_idle_websocket_open(cluster: Cluster) -> None:
    gateway = await cluster.start("gw-a")
    gateway.hub.sio.eio.ping_interval = 0.2  # sent to clients in the OPEN packet of each new connection
    gateway.hub.sio.eio.ping_timeout = 1
    ada = await cluster.connect(gateway, ADA)
    socket = engine_socket(gateway, ADA)
    await asyncio.sleep(2.5)  # about a dozen ping/pong rounds
    assert ada.sio.connected
    assert not socket.closed
    assert socket.last_ping is None or socket.last_ping > 0


async def test_a_compressed_connection_gets_small_frames_plain_and_large_ones_deflated(cluster: Cluster) -> None:
    gateway = await cluster.start("gw-a", ws_compression=True, ws_compression_min_bytes=512)
    await cluster.join(ROOM, ADA)
    url = gateway.base.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
    async with websockets.connect(url, compression="deflate") as ws:

        async def text() -> str:
            packet = await asyncio.wait_for(ws.recv(), 10)
            assert isinstance(packet, str)
            return packet

        assert ws.protocol.extensions, "the client offered permessage-deflate and the server took it"
        assert (await text()).startswith("0")  # Engine.IO OPEN
        await ws.send("40" + json.dumps({"token": cluster.token(ADA)}))
        assert (await text()).startswith("40")  # Socket.IO CONNECT answered
        socket = engine_socket(gateway, ADA)
        assert socket.writer is not None
        assert socket.writer.compressing
        await ws.send('421["room:subscribe",' + json.dumps({"room_id": str(ROOM)}) + "]")
        assert (await text()).startswith("431")
        small, large = created(1), created(2).model_copy(update={"body": "x" * 3000})
        bus = InProcessBus(cluster.broker)
        await bus.publish_all([Outgoing(MESSAGES_EVENTS, small), Outgoing(MESSAGES_EVENTS, large)], source="messages")
        received: list[Any] = []
        while len(received) < 2:
            packet = await text()
            if packet.startswith("42"):
                received.append(json.loads(packet[2:]))
    assert [(event, body["seq"], len(body["body"])) for event, body in received] == [
        ("message:new", 1, 2),
        ("message:new", 2, 3000),
    ]
