"""The metrics of issue 16 after a short chat in the all-in-one product: every name is on ``/metrics`` and the
counts moved (HTTP requests, client events and their acks, deliveries, store operations)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from prometheus_client.parser import text_string_to_metric_families

from .product import Client, Product, connect, product

__all__ = ["product"]  # the fixture, imported for pytest

NAMES = (
    "chat_http_requests_total",
    "chat_http_request_duration_seconds_count",
    "chat_gateway_sockets_connected",
    "chat_gateway_client_events_total",
    "chat_gateway_ack_seconds_count",
    "chat_gateway_deliveries_total",
    "chat_gateway_slow_consumers_total",
    "chat_bus_consumer_lag",
    "chat_store_operation_seconds_count",
)

Samples = list[tuple[str, dict[str, str], float]]


async def scrape(product: Product) -> Samples:
    response = await product.http.get("/metrics")
    assert response.status_code == 200
    return [
        (sample.name, sample.labels, sample.value)
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    ]


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples carrying ``labels``."""
    return sum(value for found, have, value in samples if found == name and _carries(have, labels))


def _carries(have: Mapping[str, str], wanted: Mapping[str, str]) -> bool:
    return all(have.get(key) == value for key, value in wanted.items())


async def subscribe(client: Client, room_id: str) -> None:
    """Subscribe, retried while the gateway has not yet read the room's creation from the bus."""
    for _ in range(100):
        answer = await client.sio.call("room:subscribe", {"room_id": room_id}, timeout=15)
        if answer["ok"]:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"could not subscribe: {answer}")


async def test_every_metric_is_exposed_and_moves_with_a_chat(product: Product) -> None:
    before = await scrape(product)
    ada = await product.sign_up("ada")
    headers = {"Authorization": f"Bearer {ada['access_token']}"}
    created = await product.http.post("/api/rooms", json={"kind": "public", "name": "lobby"}, headers=headers)
    room_id = created.json()["id"]
    laptop, phone = [await connect(product, ada["access_token"]) for _ in range(2)]
    try:
        for client in (laptop, phone):
            await subscribe(client, room_id)
        for n in range(3):
            body = {"room_id": room_id, "client_msg_id": f"m-{n}", "body": f"#{n}"}
            assert (await laptop.sio.call("message:send", body, timeout=15))["ok"] is True
        unknown = await laptop.sio.call("room:explode", {}, timeout=15)
        assert unknown["error"]["code"] == "unknown_event"
        async with asyncio.timeout(15):
            while len(phone.messages(room_id)) < 3:
                await asyncio.sleep(0.05)
        after = await scrape(product)
    finally:
        for client in (laptop, phone):
            await client.sio.disconnect()

    assert [name for name in NAMES if not any(found == name for found, _, _ in after)] == []
    assert total(after, "chat_http_requests_total", service="auth", route="/api/auth/register", method="POST") == 1
    assert total(after, "chat_http_requests_total", service="rooms", route="/api/rooms", method="POST") == 1
    assert total(after, "chat_http_request_duration_seconds_count", service="app", route="/metrics") >= 1
    assert total(after, "chat_http_requests_total", route="unmatched") == total(
        before, "chat_http_requests_total", route="unmatched"
    ), "every request of the scenario matched a route"
    assert total(after, "chat_gateway_sockets_connected") == 2
    assert total(after, "chat_gateway_client_events_total", event="message:send", code="ok") == 3
    assert total(after, "chat_gateway_client_events_total", event="room:subscribe", code="ok") >= 2
    assert total(after, "chat_gateway_client_events_total", event="unknown", code="unknown_event") == 1
    assert total(after, "chat_gateway_ack_seconds_count", event="message:send") == 3
    assert total(after, "chat_gateway_deliveries_total") >= 6, "three messages to two sockets"
    for store in ("mongo", "postgres"):
        moved = total(after, "chat_store_operation_seconds_count", store=store)
        assert moved > total(before, "chat_store_operation_seconds_count", store=store), store
    assert total(after, "chat_store_operation_seconds_count", store="mongo", operation="insert") >= 1
    assert total(after, "chat_store_operation_seconds_count", store="postgres", operation="insert") >= 1
    lags = [labels for name, labels, _ in after if name == "chat_bus_consumer_lag"]
    assert {"group", "topic", "partition"} == set(lags[0]), lags[0]
