"""Reliability, reduced size: every service of the split deployment is replaced in turn (stop the instance, start
the new one) while clients keep sending: auth, rooms, messages, then each gateway. Nothing acked is lost, nothing
is stored or shown twice, seq stays dense, and every socket ends with exactly the room's history. Clients only
retry with the same client_msg_id and reconnect to whichever gateway answers, as real clients do.
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

ORDER = ("auth", "rooms", "messages", "gateway-a", "gateway-b")


async def test_rolling_every_service_under_load_loses_nothing(split: Split) -> None:
    per_sender = int(os.environ.get("CHAT_CHAOS_MESSAGES", "25"))
    seed = random.SystemRandom().randrange(2**32)
    rng = random.Random(seed)
    users = [await split.sign_up(name) for name in ("ada", "bob")]
    owner = {"Authorization": f"Bearer {users[0]['access_token']}"}
    created = await split.http_for(0).post("/api/rooms", json={"kind": "public", "name": "rolling"}, headers=owner)
    room_id = created.json()["id"]
    joined = await split.http_for(1).post(
        f"/api/rooms/{room_id}/join", headers={"Authorization": f"Bearer {users[1]['access_token']}"}
    )
    assert joined.status_code == 200
    clients = [
        Resilient(f"{u['user_id'][:4]}-{n}", u["access_token"], room_id, split.gateways, random.Random(rng.random()))
        for u in users
        for n in range(3)
    ]
    for client in clients:
        await client.start()
    senders = [clients[0], clients[3]]
    replaced: dict[str, float] = {}
    done = asyncio.Event()

    async def chat(sender: Resilient) -> list[int]:
        seqs = []
        n = 0
        while n < per_sender or not done.is_set():
            seqs.append(await sender.send(f"{sender.name}-{n}", f"#{n}"))
            n += 1
            await asyncio.sleep(rng.uniform(0.02, 0.1))
        return seqs

    async def roll() -> None:
        for name in ORDER:
            await asyncio.sleep(0.5)
            replaced[name] = await split.restart(name)
        done.set()

    began = time.perf_counter()
    sent, _ = await asyncio.gather(asyncio.gather(*(chat(s) for s in senders)), roll())
    acked = sorted(seq for seqs in sent for seq in seqs)
    total = len(acked)
    assert acked == list(range(1, total + 1)), "every acked message has its own seq, gap-free"

    history = await stored_seqs(split.gateways[0], users[0]["access_token"], room_id)
    assert history == acked, "stored exactly what was acked"
    try:
        await until(lambda: all(c.shown == history for c in clients), timeout=30)
    finally:
        for client in clients:
            await client.close()
        print(
            f"rolling restarts: {total} messages in {time.perf_counter() - began:.1f}s while replacing "
            + ", ".join(f"{name} ({seconds:.1f}s)" for name, seconds in replaced.items())
            + f"; seed {seed}"
        )
    assert all(c.duplicates == 0 and c.gaps == 0 for c in clients)
