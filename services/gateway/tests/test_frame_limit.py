"""A Socket.IO frame over the size limit ends that socket only, with a code the client can read, on both
transports: ``session:ended {reason: frame_too_large}``, then a websocket close frame 1009 or a 413 problem for the
long-polling POST. Before, a websocket was closed with the normal code 1000 and a POST got a bare 400, and a text
frame within the limit in characters but over it in bytes was let through."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from chat_contracts.fields import MAX_FRAME_BYTES

from .harness import Cluster, Gateway, until
from .raw_socket import SEPARATOR, TRANSPORTS, RawSocket, Transport, still_served, until_gone

ADA, BOB = uuid.uuid4(), uuid.uuid4()
ROOM = uuid.uuid4()
LIMIT = 2048


def send_of(body: str, id: int = 1) -> str:
    """An Engine.IO frame carrying ``message:send`` with ``body``."""
    payload = json.dumps({"room_id": str(ROOM), "client_msg_id": "c", "body": body}, ensure_ascii=False)
    return f'42{id}["message:send",{payload}]'


def frame_of_bytes(size: int, char: str = "x") -> str:
    """A ``message:send`` frame of exactly ``size`` bytes of UTF-8, its body made of ``char``."""
    room = size - len(send_of("").encode())
    fitting = room // len(char.encode())
    frame = send_of(char * fitting + "x" * (room - fitting * len(char.encode())))
    assert len(frame.encode()) == size
    return frame


async def started(cluster: Cluster) -> tuple[Gateway, RawSocket]:
    gateway = await cluster.start("gw-a", max_message_bytes=LIMIT)
    bystander = await RawSocket.open(gateway.base, cluster.token(BOB), "websocket")
    return gateway, bystander


def ended_for_frame_size(raw: RawSocket) -> bool:
    return ("session:ended", {"reason": "frame_too_large"}) in raw.events


@pytest.mark.parametrize("char", ["x", "é"], ids=["ascii", "two-byte"])
async def test_an_oversize_websocket_frame_ends_that_socket_with_session_ended_and_close_code_1009(
    cluster: Cluster, char: str
) -> None:
    gateway, bystander = await started(cluster)
    ada = await RawSocket.open(gateway.base, cluster.token(ADA), "websocket")
    try:
        frame = frame_of_bytes(LIMIT + 1, char)
        assert len(frame) <= LIMIT or char == "x", "in characters it would pass: the limit counts bytes"
        await ada.send(frame)
        await until(lambda: ada.closed)
        assert ended_for_frame_size(ada), ada.packets
        assert (ada.close_code, ada.close_reason) == (1009, "frame_too_large")
        assert 1 not in ada.acks, "the frame was not handled"
        await until(lambda: ADA not in gateway.hub.connections.by_user)
        await still_served(bystander)
    finally:
        await ada.close()
        await bystander.close()


async def test_an_oversize_long_polling_post_is_answered_413_and_ends_that_socket(cluster: Cluster) -> None:
    gateway, bystander = await started(cluster)
    ada = await RawSocket.open(gateway.base, cluster.token(ADA), "polling")
    try:
        assert await ada.send(frame_of_bytes(LIMIT + 1)) == 413
        assert ada.last_post is not None
        assert ada.last_post.headers["content-type"] == "application/problem+json"
        problem = ada.last_post.json()
        assert (problem["status"], problem["code"], problem["limit"]) == (413, "frame_too_large", LIMIT)
        await until(lambda: ended_for_frame_size(ada) and ada.closed)
        assert ada.packets.index('42["session:ended",{"reason":"frame_too_large"}]') < ada.packets.index("41")
        assert 1 not in ada.acks
        await until_gone(gateway, ADA, ada)
        await still_served(bystander)
    finally:
        await ada.close()
        await bystander.close()


async def test_an_oversize_post_from_a_client_holding_no_poll_is_answered_after_its_next_poll_carries_session_ended(
    cluster: Cluster,
) -> None:
    """The JS client's race: its poll had just been answered when it posted the frame. Its POST must not be answered
    413 before a poll has carried ``session:ended``, or the client closes its transport on the 413 and never reads
    why (the answer once went out at once)."""
    gateway, bystander = await started(cluster)
    params = {"EIO": "4", "transport": "polling"}
    finished: list[str] = []
    try:
        async with httpx.AsyncClient(base_url=gateway.base, timeout=30) as http:
            opened = (await http.get("/socket.io/", params=params)).text
            params["sid"] = json.loads(opened[1:])["sid"]
            connect = "40" + json.dumps({"token": cluster.token(ADA)})
            assert (await http.post("/socket.io/", params=params, content=connect.encode())).status_code == 200
            assert (await http.get("/socket.io/", params=params)).text.startswith("40{"), "connected; no poll held"

            async def post() -> httpx.Response:
                answer = await http.post("/socket.io/", params=params, content=frame_of_bytes(LIMIT + 1).encode())
                finished.append("post")
                return answer

            posting = asyncio.create_task(post())
            await until(lambda: ADA not in gateway.hub.connections.by_user)
            assert not posting.done(), "the POST waits for a poll to carry session:ended"
            polled = await http.get("/socket.io/", params=params)
            finished.append("poll")
            refused = await posting
        assert finished == ["poll", "post"]
        assert '42["session:ended",{"reason":"frame_too_large"}]' in polled.text.split(SEPARATOR), polled.text
        assert (refused.status_code, refused.json()["code"]) == (413, "frame_too_large")
        await still_served(bystander)
    finally:
        await bystander.close()


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_frame_of_exactly_the_limit_is_handled(cluster: Cluster, transport: Transport) -> None:
    gateway, bystander = await started(cluster)
    ada = await RawSocket.open(gateway.base, cluster.token(ADA), transport)
    try:
        assert await ada.send(frame_of_bytes(LIMIT)) == 200
        answer = await ada.ack(1)
        assert answer["error"]["code"] == "not_member", answer
        assert not ended_for_frame_size(ada)
    finally:
        await gateway.hub.sio.eio.disconnect(ada.eio_sid)
        await ada.close()
        await bystander.close()


async def test_a_long_polling_post_without_content_length_is_handled_or_refused_by_its_size(cluster: Cluster) -> None:
    gateway, bystander = await started(cluster)
    ada = await RawSocket.open(gateway.base, cluster.token(ADA), "polling")
    url = "/socket.io/"
    params = {"EIO": "4", "transport": "polling", "sid": ada.eio_sid}

    async def chunks(frame: str) -> AsyncIterator[bytes]:
        encoded = frame.encode()
        for start in range(0, len(encoded), 512):
            yield encoded[start : start + 512]

    try:
        async with httpx.AsyncClient(base_url=gateway.base) as http:
            fits = await http.post(url, params=params, content=chunks(frame_of_bytes(LIMIT)))
            assert fits.status_code == 200, fits.text
            assert (await ada.ack(1))["error"]["code"] == "not_member", "python-engineio read the chunked body"
            too_large = await http.post(url, params=params, content=chunks(frame_of_bytes(LIMIT + 1)))
            assert (too_large.status_code, too_large.json()["code"]) == (413, "frame_too_large")
        await until(lambda: ended_for_frame_size(ada) and ada.closed)
    finally:
        await ada.close()
        await bystander.close()


def test_the_default_limit_is_the_contracts_frame_limit() -> None:
    from chat_gateway.settings import GatewaySettings
    from chat_runtime.settings import load_settings

    assert load_settings(GatewaySettings).max_message_bytes == MAX_FRAME_BYTES
