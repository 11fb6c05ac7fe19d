"""Reliability, reduced size: a gateway restarts three times while clients chat and some drop and reconnect at
random. Every client ends showing exactly the room's history (compared with a fresh fetch), in seq order, with no
message shown twice and no gap — reconnecting to whichever gateway answers and resubscribing with its last seq.
``CHAT_CHAOS_MESSAGES`` scales the number of messages per sender (default 25; `make chaos` runs more).
"""

from __future__ import annotations

import asyncio
import os
import random
import time

from .product import until
from .resilient import Resilient, stored_seqs
from .split import Split, split

__all__ = ["split"]


async def test_gateway_restarts_and_flaky_clients_end_with_exactly_the_history(split: Split) -> None:
    per_sender = int(os.environ.get("CHAT_CHAOS_MESSAGES", "25"))
    seed = random.SystemRandom().randrange(2**32)
    rng = random.Random(seed)
    print(f"gateway restarts: {per_sender} messages per sender, seed {seed}")
    users = [await split.sign_up(name) for name in ("ada", "bob", "cyd")]
    owner = {"Authorization": f"Bearer {users[0]['access_token']}"}
    room_id = (
        await split.http_for(0).post("/api/rooms", json={"kind": "public", "name": "storm"}, headers=owner)
    ).json()["id"]
    for user in users[1:]:
        joined = await split.http_for(1).post(
            f"/api/rooms/{room_id}/join", headers={"Authorization": f"Bearer {user['access_token']}"}
        )
        assert joined.status_code == 200

    clients = [
        Resilient(
            f"{user['user_id'][:4]}-{n}", user["access_token"], room_id, split.gateways, random.Random(rng.random())
        )
        for user in users
        for n in range(4)
    ]
    # One socket of each user only ever connects to gateway B: after each restart, how long until all of them are
    # subscribed again on it is the restart's cost to its clients.
    pinned = [
        Resilient(f"{user['user_id'][:4]}-b", user["access_token"], room_id, [split.gateways[1]], rng) for user in users
    ]
    for client in [*clients, *pinned]:
        await client.start()
    senders = clients[::4]  # one socket of each user sends
    restarts: list[tuple[float, float, float]] = []
    """Per restart of gateway B, seconds from its start to: "listening", ready, every pinned socket subscribed."""

    async def chat(sender: Resilient) -> list[int]:
        seqs = []
        for n in range(per_sender):
            seqs.append(await sender.send(f"{sender.name}-{n}", f"{sender.name} #{n}"))
            await asyncio.sleep(rng.uniform(0.01, 0.08))
        return seqs

    async def restart_gateway_b() -> None:
        for _ in range(3):
            await asyncio.sleep(rng.uniform(0.5, 1.5))
            ready = await split.restart("gateway-b")
            spawned = time.perf_counter() - ready
            await until(
                lambda after=spawned: all(c.subscribed_at > after and c.ready.is_set() for c in pinned), timeout=30
            )
            resubscribed = max(c.subscribed_at for c in pinned) - spawned
            restarts.append((split.children["gateway-b"].listening_after or 0.0, ready, resubscribed))

    async def flaky_network() -> None:
        for _ in range(6):
            await asyncio.sleep(rng.uniform(0.3, 1.0))
            await rng.choice([c for c in clients if c not in senders]).drop()  # about 10% at a time

    began = time.perf_counter()
    sent, _, _ = await asyncio.gather(asyncio.gather(*(chat(s) for s in senders)), restart_gateway_b(), flaky_network())
    acked = sorted(seq for seqs in sent for seq in seqs)
    total = per_sender * len(senders)
    assert acked == list(range(1, total + 1)), "every acked message has its own seq, gap-free"

    history = await stored_seqs(split.gateways[0], users[0]["access_token"], room_id)
    assert history == list(range(1, total + 1))
    clients += pinned
    try:
        await until(lambda: all(c.shown == history for c in clients), timeout=30)
    finally:
        for client in clients:
            await client.close()
        print(
            f"gateway restarts: {total} messages in {time.perf_counter() - began:.1f}s; "
            f"{sum(c.reconnects for c in clients)} forced drops, {sum(c.reloads for c in clients)} reloads"
        )
        for n, (listening, ready, resubscribed) in enumerate(restarts, start=1):
            print(
                f"  restart {n}: all sockets resubscribed after {resubscribed:.2f} s "
                f"(listening after {listening:.2f} s, ready after {ready:.2f} s)"
            )
        for client in clients:
            print(f"  {client.name}: shown {len(client.shown)}, duplicates {client.duplicates}, gaps {client.gaps}")
    assert all(c.duplicates == 0 for c in clients), "no message shown twice"
    assert all(c.gaps == 0 for c in clients), "no message skipped then filled in"
