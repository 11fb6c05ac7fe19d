"""A fuzzing client against the whole product: malformed, oversized and out-of-order Socket.IO events.

Every event must be answered with a coded ack (never ``internal_error``, never silence) or, for a frame over the
64 KiB limit, a disconnect of that socket only; a bystander chatting at the same time is unaffected, and the
gateway is still ready at the end. ``CHAT_FUZZ_EVENTS`` sets the size (default 600 here; `make chaos` runs 10,000)
and ``CHAT_FUZZ_SEED`` replays a run (the seed is printed).
"""

from __future__ import annotations

import asyncio
import os
import random
import string
import time
import uuid
from collections import Counter
from typing import Any

import socketio

from chat_gateway.service.protocol import CLIENT_EVENTS

from .product import Client, Product, connect, product, until

__all__ = ["product"]

EVENTS = list(CLIENT_EVENTS)
FIELDS = ["room_id", "last_seq", "rooms", "client_msg_id", "body", "reply_to", "attachment_ids", "message_id",
          "emoji", "action", "seq", "status", "token", "x", ""]  # fmt: skip


class Fuzz:
    def __init__(self, rng: random.Random, room_id: str, message_id: str) -> None:
        self.rng = rng
        self.room_id = room_id
        self.message_id = message_id

    def scalar(self) -> Any:
        r = self.rng
        return r.choice(
            [
                None,
                True,
                -1,
                0,
                2**63,
                -(2**70),
                1.5e308,
                float("nan") if r.random() < 0.1 else 3.25,
                "",
                "x" * r.randint(1, 300),
                "".join(r.choice(string.printable) for _ in range(r.randint(1, 40))),
                "\u0000\ud7ff\ufffd🙂" * r.randint(1, 5),
                str(uuid.uuid4()),
                self.room_id,
                self.message_id,
                "online",
                "add",
                "👍",
            ]
        )

    def value(self, depth: int = 0) -> Any:
        r = self.rng
        roll = r.random()
        if depth < 3 and roll < 0.15:
            return [self.value(depth + 1) for _ in range(r.randint(0, 4))]
        if depth < 3 and roll < 0.3:
            return {r.choice(FIELDS): self.value(depth + 1) for _ in range(r.randint(0, 5))}
        return self.scalar()

    def payload(self) -> Any:
        r = self.rng
        roll = r.random()
        if roll < 0.5:  # plausible objects with a wrong part: what a buggy client sends
            base: dict[str, Any] = {
                "room_id": self.room_id,
                "message_id": self.message_id,
                "client_msg_id": f"fz-{r.randint(0, 10**6)}",
                "body": "fuzz",
                "seq": r.randint(-5, 10**9),
                "emoji": "👍",
                "action": r.choice(["add", "remove", "toggle"]),
                "status": r.choice(["online", "away", "gone"]),
                "rooms": [{"room_id": self.room_id}],
            }
            keys = r.sample(list(base), r.randint(0, len(base)))
            chosen = {k: base[k] for k in keys}
            for key in r.sample(FIELDS, r.randint(0, 2)):
                chosen[key] = self.value(1)
            return chosen
        if roll < 0.9:
            return self.value()
        return b"\x00\xff" * r.randint(1, 100)  # a binary attachment instead of JSON


async def test_malformed_oversized_and_out_of_order_events_get_coded_answers_and_harm_no_one(
    product: Product,
) -> None:
    size = int(os.environ.get("CHAT_FUZZ_EVENTS", "600"))
    seed = int(os.environ.get("CHAT_FUZZ_SEED", str(random.SystemRandom().randrange(2**32))))
    print(f"socket fuzz: {size} events, CHAT_FUZZ_SEED={seed}")
    rng = random.Random(seed)

    mallory, bob = [await product.sign_up(n) for n in ("mallory", "bob")]
    headers = {"Authorization": f"Bearer {bob['access_token']}"}
    room_id = (await product.http.post("/api/rooms", json={"kind": "public", "name": "calm"}, headers=headers)).json()[
        "id"
    ]
    joined = await product.http.post(
        f"/api/rooms/{room_id}/join", headers={"Authorization": f"Bearer {mallory['access_token']}"}
    )
    assert joined.status_code == 200
    bystander = await connect(product, bob["access_token"])
    assert (await bystander.sio.call("room:subscribe", {"room_id": room_id}, timeout=15))["ok"] is True
    first = await bystander.sio.call(
        "message:send", {"room_id": room_id, "client_msg_id": "b-0", "body": "target"}, timeout=15
    )
    fuzz = Fuzz(rng, room_id, first["message_id"])

    stop = asyncio.Event()
    bystander_sent: list[int] = []
    bystander_latency: list[float] = []

    async def chat_calmly() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            began = time.perf_counter()
            answer = await bystander.sio.call(
                "message:send", {"room_id": room_id, "client_msg_id": f"b-{n}", "body": f"calm {n}"}, timeout=15
            )
            assert answer["ok"] is True, answer
            bystander_latency.append(time.perf_counter() - began)
            bystander_sent.append(answer["seq"])
            await asyncio.sleep(0.1)

    calm = asyncio.create_task(chat_calmly())
    codes: Counter[str] = Counter()
    disconnects = 0
    attacker: Client = await connect(product, mallory["access_token"])
    try:
        for _ in range(size):
            if not attacker.sio.connected:
                disconnects += 1
                attacker = await connect(product, mallory["access_token"])
            roll = rng.random()
            event = rng.choice(EVENTS) if roll < 0.9 else rng.choice(["", "x" * 200, "connect", "message", "*", "room"])
            if rng.random() < 0.01:
                args: tuple[Any, ...] = ({"room_id": room_id, "body": "y" * 70_000},)  # over the 64 KiB frame limit
            elif rng.random() < 0.05:
                args = (fuzz.payload(), fuzz.payload())
            elif rng.random() < 0.03:
                args = ()
            else:
                args = (fuzz.payload(),)
            try:
                answer = await attacker.sio.call(event, args if len(args) != 1 else args[0], timeout=5)
            except socketio.exceptions.TimeoutError:
                if attacker.sio.connected:
                    codes["<no answer>"] += 1
                else:
                    codes["<disconnected>"] += 1
                continue
            except socketio.exceptions.BadNamespaceError:
                codes["<disconnected>"] += 1
                continue
            if isinstance(answer, dict) and answer.get("ok") is True:
                codes["ok"] += 1
            elif isinstance(answer, dict) and isinstance(answer.get("error"), dict):
                codes[str(answer["error"].get("code"))] += 1
            else:
                codes[f"<bad ack {type(answer).__name__}>"] += 1
    finally:
        stop.set()
        await calm
        for client in (attacker, bystander):
            if client.sio.connected:
                await client.sio.disconnect()

    print(f"socket fuzz: answers {dict(codes.most_common())}, reconnects after a disconnect {disconnects}")
    bystander_latency.sort()
    p99 = bystander_latency[int(len(bystander_latency) * 0.99) - 1] if bystander_latency else 0.0
    print(f"socket fuzz: bystander sent {len(bystander_sent)} messages, ack p99 {p99 * 1000:.1f} ms")
    assert codes["internal_error"] == 0, f"a handler failed (seed {seed}): {codes}"
    assert codes["<no answer>"] == 0, f"an event went unanswered (seed {seed}): {codes}"
    assert not [c for c in codes if c.startswith("<bad ack")], codes
    assert sum(codes.values()) == size
    assert bystander_sent == sorted(bystander_sent), "the bystander's sends kept their order"
    assert len(bystander_sent) >= 3
    assert (await product.http.get("/readyz")).status_code == 200, "the gateway still serves"
    await until(lambda: True)
