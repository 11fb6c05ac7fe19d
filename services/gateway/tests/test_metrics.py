"""The gateway's metrics move with what its sockets do: connections, client events by ack code, ack latency,
deliveries and slow consumers (scraped from the instance's registry, as ``/metrics`` serves it)."""

from __future__ import annotations

import uuid

from chat_contracts import messages_events as mev
from chat_contracts.topics import MESSAGES_EVENTS
from chat_gateway.adapters import fanout
from chat_runtime.bus.inprocess import InProcessBus

from .harness import Client, Cluster, Gateway, message_created, until

ADA, BOB, EVE = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
ROOM = uuid.uuid4()


def scraped(gateway: Gateway, name: str, **labels: str) -> float:
    return gateway.registry.get_sample_value(name, labels) or 0.0


def events(gateway: Gateway, event: str, code: str) -> float:
    return scraped(gateway, "chat_gateway_client_events_total", event=event, code=code)


async def subscribed(client: Client) -> None:
    answer = await client.call("room:subscribe", {"room_id": str(ROOM)})
    assert answer["ok"] is True, answer


def created(seq: int) -> mev.MessageCreated:
    return message_created(ROOM, seq, ADA)


async def test_the_sockets_gauge_follows_connections_and_disconnections(cluster: Cluster) -> None:
    gateway = await cluster.start("gw-a")
    ada = await cluster.connect(gateway, ADA)
    await cluster.connect(gateway, BOB)
    assert scraped(gateway, "chat_gateway_sockets_connected") == 2
    await ada.sio.disconnect()
    await until(lambda: scraped(gateway, "chat_gateway_sockets_connected") == 1)


async def test_client_events_are_counted_by_ack_code_and_their_acks_timed(cluster: Cluster) -> None:
    gateway = await cluster.start("gw-a", ack_timeout_seconds=0.2)
    await cluster.join(ROOM, ADA)
    ada = await cluster.connect(gateway, ADA)
    await subscribed(ada)
    await subscribed(ada)
    assert (await ada.call("room:subscribe", {"room_id": "not-a-uuid"}))["error"]["code"] == "validation_failed"
    assert (await ada.call("no:such:event", {}))["error"]["code"] == "unknown_event"
    send = {"room_id": str(ROOM), "client_msg_id": "c-1", "body": "nobody answers"}
    assert (await ada.call("message:send", send))["error"]["code"] == "timeout"

    assert events(gateway, "room:subscribe", "ok") == 2
    assert events(gateway, "room:subscribe", "validation_failed") == 1
    assert events(gateway, "unknown", "unknown_event") == 1
    assert events(gateway, "message:send", "timeout") == 1
    assert scraped(gateway, "chat_gateway_ack_seconds_count", event="room:subscribe") == 3
    assert scraped(gateway, "chat_gateway_ack_seconds_count", event="message:send") == 1
    assert scraped(gateway, "chat_gateway_ack_seconds_sum", event="message:send") > 0


async def test_deliveries_count_each_socket_written_and_slow_consumers_each_socket_ended(cluster: Cluster) -> None:
    gateway = await cluster.start("gw-a", buffer_soft_limit_bytes=10_000, buffer_hard_limit_bytes=100_000)
    await cluster.join(ROOM, ADA, BOB, EVE)
    clients = [await cluster.connect(gateway, user) for user in (ADA, BOB, EVE)]
    for client in clients:
        await subscribed(client)
    bus = InProcessBus(cluster.broker)
    await bus.publish(MESSAGES_EVENTS, created(1), source="messages")
    await until(lambda: all(client.events("message:new") for client in clients))
    assert scraped(gateway, "chat_gateway_deliveries_total") == 3

    hub = gateway.hub
    bob_sid = next(sid for sid, c in hub.connections.by_sid.items() if c.user.sub == BOB)
    bob_eio = hub.sio.manager.eio_sid_from_sid(bob_sid, "/")
    bob_socket = fanout.socket_of(hub.sio.eio, bob_eio)
    assert bob_socket is not None
    bob_socket.backlog = lambda: 100_000  # type: ignore[method-assign]  # its client reads no more
    await bus.publish(MESSAGES_EVENTS, created(2), source="messages")
    await until(lambda: not clients[1].sio.connected)
    assert scraped(gateway, "chat_gateway_slow_consumers_total") == 1
    assert scraped(gateway, "chat_gateway_deliveries_total") == 5
