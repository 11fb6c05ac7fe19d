"""Every client event whose packet cannot be used (JSON nested far too deep, not JSON, not an event) gets exactly
one ack ``validation_failed`` on either transport, and the socket goes on working; without an ack id it is
dropped and nothing breaks. Before, python-socketio's decoder raised (RecursionError at ~1,500 levels), the
packet was dropped and the client never heard back."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from chat_contracts.fields import MAX_JSON_DEPTH
from chat_gateway.service.protocol import CLIENT_EVENTS

from .harness import Cluster
from .raw_socket import TRANSPORTS, RawSocket, Transport

ADA = uuid.uuid4()
ROOM = uuid.uuid4()
DEEP_ARRAY = "[" * 1500 + "]" * 1500
DEEP_OBJECT = '{"a":' * 1500 + "1" + "}" * 1500


@asynccontextmanager
async def connected(cluster: Cluster, transport: Transport) -> AsyncIterator[RawSocket]:
    gateway = await cluster.start("gw-a")
    raw = await RawSocket.open(gateway.base, cluster.token(ADA), transport)
    try:
        yield raw
    finally:
        # Ended by the server, which answers the poll it holds: a client's own close would leave that poll open
        # until the ping interval ran out, and the server's shutdown waiting for it.
        await gateway.hub.sio.eio.disconnect(raw.eio_sid)
        await raw.close()


def probe(id: int) -> str:
    """A well-formed event that is always answered ``ok``: the socket still works."""
    return f'42{id}["room:unsubscribe",{{"room_id":"{ROOM}"}}]'


def nested(levels: int) -> str:
    """A payload of ``levels`` nested arrays (the event's argument array adds one more)."""
    return "[" * levels + "]" * levels


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_every_client_event_with_a_deeply_nested_payload_gets_exactly_one_validation_failed_ack(
    cluster: Cluster, transport: Transport
) -> None:
    async with connected(cluster, transport) as raw:
        sent: dict[int, str] = {}
        for n, event in enumerate(CLIENT_EVENTS, start=1):
            sent[2 * n] = event
            sent[2 * n + 1] = event
            await raw.send(f'42{2 * n}["{event}",{DEEP_ARRAY}]', f'42{2 * n + 1}["{event}",{DEEP_OBJECT}]')
        last = 2 * len(CLIENT_EVENTS) + 2
        await raw.send(probe(last))
        assert (await raw.ack(last))["ok"] is True
        for id, event in sent.items():
            assert len(raw.acks.get(id, [])) == 1, f"{event} (ack id {id}) got {raw.acks.get(id)}"
            [answer] = raw.acks[id]
            assert answer["ok"] is False, answer
            assert answer["error"]["code"] == "validation_failed", (event, answer)
            assert f"more than {MAX_JSON_DEPTH} levels" in answer["error"]["message"], answer
        assert not raw.closed


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize(
    ("packet", "why"),
    [
        (f'421["message:send",{nested(MAX_JSON_DEPTH)}]', f"more than {MAX_JSON_DEPTH} levels"),
        ('421["message:send",{"room_id":', "not valid JSON"),
        ('421["message:send",NaN]', "not valid JSON"),
        ('421{"message:send":{}}', "array"),
        ("421[]", "array"),
        ('421[5,{"room_id":"x"}]', "array"),
        ("421", "array"),
    ],
)
async def test_a_packet_that_is_not_a_usable_event_is_answered_validation_failed(
    cluster: Cluster, transport: Transport, packet: str, why: str
) -> None:
    async with connected(cluster, transport) as raw:
        await raw.send(packet, probe(2))
        assert (await raw.ack(2))["ok"] is True
        [answer] = raw.acks[1]
        assert answer["error"]["code"] == "validation_failed", answer
        assert why in answer["error"]["message"], answer


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_payload_at_the_depth_limit_is_decoded_and_judged_by_the_event_schema(
    cluster: Cluster, transport: Transport
) -> None:
    async with connected(cluster, transport) as raw:
        await raw.send(f'421["message:send",{nested(MAX_JSON_DEPTH - 1)}]', probe(2))
        await raw.ack(2)
        [answer] = raw.acks[1]
        assert answer["error"]["code"] == "validation_failed", answer
        assert "levels" not in answer["error"]["message"], "the payload's own schema refused it"


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_an_unusable_event_without_an_ack_id_is_dropped_and_the_socket_goes_on(
    cluster: Cluster, transport: Transport
) -> None:
    async with connected(cluster, transport) as raw:
        await raw.send(f'42["message:send",{DEEP_ARRAY}]', '42["typing:start",{"room_id":', "42[]", probe(1))
        assert (await raw.ack(1))["ok"] is True
        assert set(raw.acks) == {1}
        assert not raw.closed
