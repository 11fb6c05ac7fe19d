"""A message whose Socket.IO packet cannot be read at all (empty, no packet type, a type a client never sends, more
attachments than a packet may announce) ends that socket with a code the client can read, ``session:ended
{reason: malformed_packet}``, on both transports, and closes the connection, as the Node server does. A binary
message that no binary packet waits for is dropped. Before, python-socketio raised in its message handler for
both: the packet was dropped without a word to the client, and python-engineio logged a traceback at ERROR for
every such message, as often as a client cared to send one."""

from __future__ import annotations

import logging
import uuid

import pytest

from .harness import Cluster, until
from .raw_socket import TRANSPORTS, RawSocket, Transport, still_served, until_gone

ADA, BOB = uuid.uuid4(), uuid.uuid4()

MALFORMED_TEXT = {
    "empty": "4",
    "no packet type": "4x",
    "an unknown packet type": '49["message:send",{}]',
    "connect_error, which only a server sends": '44{"message":"no"}',
    "too many attachments": '45123456789012-["message:send",{}]',
}


def ended_as_malformed(raw: RawSocket) -> bool:
    return ("session:ended", {"reason": "malformed_packet"}) in raw.events


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("packet", list(MALFORMED_TEXT.values()), ids=list(MALFORMED_TEXT))
async def test_a_packet_without_a_usable_type_ends_that_socket_with_malformed_packet(
    cluster: Cluster, transport: Transport, packet: str, caplog: pytest.LogCaptureFixture
) -> None:
    gateway = await cluster.start("gw-a")
    bystander = await RawSocket.open(gateway.base, cluster.token(BOB), "websocket")
    ada = await RawSocket.open(gateway.base, cluster.token(ADA), transport)
    try:
        with caplog.at_level(logging.ERROR):
            await ada.send(packet)
            await until(lambda: ended_as_malformed(ada) and ada.closed)
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
        if transport == "websocket":
            assert (ada.close_code, ada.close_reason) == (1002, "malformed_packet")
        await until_gone(gateway, ADA, ada)
        await still_served(bystander)
    finally:
        await ada.close()
        await bystander.close()


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_binary_message_no_binary_packet_waits_for_is_dropped(
    cluster: Cluster, transport: Transport, caplog: pytest.LogCaptureFixture
) -> None:
    # The attachment of a binary event whose JSON was refused (the event was answered at once), then stray bytes.
    gateway = await cluster.start("gw-a")
    ada = await RawSocket.open(gateway.base, cluster.token(ADA), transport)
    try:
        with caplog.at_level(logging.ERROR):
            await ada.send(f'451-3["message:send",{"[" * 40}{"]" * 40}]')
            assert (await ada.ack(3))["error"]["code"] == "validation_failed"
            await ada.send_binary(b"\x00\xff")
            await ada.send_binary(b"2-[]")
            await still_served(ada)
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
        assert not ended_as_malformed(ada)
    finally:
        await gateway.hub.sio.eio.disconnect(ada.eio_sid)
        await ada.close()


async def test_well_formed_packets_of_every_kind_a_client_sends_are_still_served(cluster: Cluster) -> None:
    gateway = await cluster.start("gw-a")
    ada = await RawSocket.open(gateway.base, cluster.token(ADA), "websocket")
    try:
        await ada.send('42["typing",{}]', '431[{"ok":true}]', '42["no such event"]')  # event, stray ack, unknown
        await still_served(ada, 7)
        assert not ended_as_malformed(ada)
        assert not ada.closed
    finally:
        await ada.close()
