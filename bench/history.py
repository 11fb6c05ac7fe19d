"""History benchmark: p50/p99 of a 50-message page from a room holding N messages (default 1,000,000) on the
Mongo-wire server, read (a) from the store and (b) through the messages service's HTTP route (in process, no
network), for the newest page and for pages at random depths.

uv run python -m bench.history                 # N from BENCH_HISTORY_MESSAGES (default 1,000,000)
BENCH_HISTORY_MESSAGES=100000 uv run python -m bench.history

The server is CHAT_TEST_MONGO_URL when set, else a fresh Mongo-wire server of the run's own, in a temporary
folder, stopped and removed at the end (a long-lived development server that has served many test runs is
several times slower). The data goes to a database of its own, dropped at the end. Prints a table and writes
bench/results/history.json.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import random
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from prometheus_client import CollectorRegistry
from pymongo import AsyncMongoClient

from bench.serving import free_port
from chat_localinfra import InfraConfig, ensure_started, stop
from chat_messages.adapters.mongo_documents import message_document
from chat_messages.adapters.mongo_store import MongoMessageStore
from chat_messages.bootstrap import bootstrap
from chat_messages.domain.model import Member, Message, RoomState, message_id_for
from chat_messages.settings import MessagesSettings
from chat_runtime.app import build_app
from chat_runtime.bus.inprocess import InProcessBroker, InProcessBus
from chat_runtime.settings import load_settings
from chat_runtime.testing.tokens import TokenMint

PAGE = 50
SAMPLES = int(os.environ.get("BENCH_HISTORY_SAMPLES", "400"))
BATCH = 5_000
RESULTS = Path(__file__).parent / "results"


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def _summary(values: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(_percentile(values, 0.50) * 1000, 3),
        "p99_ms": round(_percentile(values, 0.99) * 1000, 3),
        "mean_ms": round(statistics.fmean(values) * 1000, 3),
    }


async def _fill(store: MongoMessageStore, db: Any, room: uuid.UUID, sender: uuid.UUID, count: int) -> float:
    began = time.perf_counter()
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for first in range(1, count + 1, BATCH):
        documents = [
            message_document(
                Message(
                    id=message_id_for(room, f"b-{seq}"),
                    room_id=room,
                    seq=seq,
                    sender_id=sender,
                    client_msg_id=f"b-{seq}",
                    body=f"message number {seq} of the history benchmark",
                    created_at=start + timedelta(milliseconds=seq),
                    tokens=("message", "number", "history", "benchmark"),
                )
            )
            for seq in range(first, min(count, first + BATCH - 1) + 1)
        ]
        await db.messages.insert_many(documents, ordered=False)
        if first // BATCH % 20 == 0:
            print(f"  stored {min(count, first + BATCH - 1):,} of {count:,}", flush=True)
    return time.perf_counter() - began


async def main() -> dict[str, Any]:
    given = os.environ.get("CHAT_TEST_MONGO_URL")
    if given:
        return await measure(given, drop=True)
    with tempfile.TemporaryDirectory(prefix="chat-bench-history-") as folder:
        own = InfraConfig.from_env({"CHAT_INFRA_DIR": folder, "CHAT_INFRA_MONGO_PORT": str(free_port())})
        try:
            urls = await asyncio.to_thread(ensure_started, "mongo", config=own)
            if not urls.mongo_url:
                raise SystemExit("history benchmark: the Mongo-wire server did not start")
            return await measure(urls.mongo_url, drop=False)  # the whole server goes; dropping 1M takes minutes
        finally:
            await asyncio.to_thread(stop, "mongo", config=own)


async def measure(url: str, *, drop: bool) -> dict[str, Any]:
    count = int(os.environ.get("BENCH_HISTORY_MESSAGES", "1000000"))
    name = f"bench_history_{uuid.uuid4().hex[:8]}"
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(url, tz_aware=True, uuidRepresentation="standard")
    db = client[name]
    store = MongoMessageStore(db)
    room, reader = uuid.uuid4(), uuid.uuid4()
    try:
        await store.ensure_indexes()
        await store.apply_room(RoomState(room_id=room, version=1))
        await store.put_member(Member(room_id=room, user_id=reader, role="member", joined_after_seq=0))
        print(f"history benchmark: storing {count:,} messages in one room on {url}", flush=True)
        fill_seconds = await _fill(store, db, room, reader, count)
        # Written in bulk, around the store: its head (the room's highest seq) is built by the first read.
        began = time.perf_counter()
        last = await store.last_seq(room)
        first_read = time.perf_counter() - began
        _check(last == count, f"the room's last seq is {last}, not {count}")
        rng = random.Random(20261121)
        depths = [None] + [rng.randint(PAGE + 1, count) for _ in range(SAMPLES - 1)]

        store_times: dict[str, list[float]] = {"newest": [], "random depth": []}
        for before in depths:
            began = time.perf_counter()
            page = await store.history(room, before_seq=before, limit=PAGE, newest_first=True)
            store_times["newest" if before is None else "random depth"].append(time.perf_counter() - began)
            _check(len(page) == PAGE, f"a store page had {len(page)} messages")
        for _ in range(SAMPLES // 4):
            began = time.perf_counter()
            await store.history(room, limit=PAGE, newest_first=True)
            store_times["newest"].append(time.perf_counter() - began)

        mint = TokenMint(issuer="http://bench/api/auth", audience="chat", clock=lambda: datetime.now(UTC))
        settings = load_settings(
            MessagesSettings,
            mongo_url=url,
            mongo_database=name,
            auth_issuer="http://bench/api/auth",
            data_dir=Path(tempfile.mkdtemp(prefix="bench-history-")),
        )
        module = bootstrap(settings, bus=InProcessBus(InProcessBroker()), jwks=mint.jwks)  # its own client
        app = build_app([module], bus=InProcessBus(InProcessBroker()), registry=CollectorRegistry())
        headers = {"Authorization": f"Bearer {mint.access_token(reader, 'reader')}"}
        http_times: dict[str, list[float]] = {"newest": [], "random depth": []}
        async with LifespanManager(app) as manager:
            transport = httpx.ASGITransport(app=manager.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
                for before in depths:
                    params: dict[str, Any] = {"limit": PAGE} | ({"before_seq": before} if before else {})
                    began = time.perf_counter()
                    response = await http.get(f"/api/messages/rooms/{room}/messages", params=params, headers=headers)
                    http_times["newest" if before is None else "random depth"].append(time.perf_counter() - began)
                    _check(response.status_code == 200, response.text)
                    _check(len(response.json()["items"]) == PAGE, "an HTTP page was short")
                for _ in range(SAMPLES // 4):
                    began = time.perf_counter()
                    response = await http.get(
                        f"/api/messages/rooms/{room}/messages", params={"limit": PAGE}, headers=headers
                    )
                    http_times["newest"].append(time.perf_counter() - began)
    finally:
        if drop:
            await client.drop_database(name)
        await client.close()

    result = {
        "scenario": "history page",
        "messages_in_room": count,
        "page": PAGE,
        "fill_seconds": round(fill_seconds, 1),
        "first_read_seconds": round(first_read, 2),
        "store": {k: _summary(v) | {"samples": len(v)} for k, v in store_times.items()},
        "http": {k: _summary(v) | {"samples": len(v)} for k, v in http_times.items()},
        "target_p99_ms": 5.0,
        "machine": {
            "cpus": os.cpu_count(),
            "cpu": _cpu_model(),
            "python": platform.python_version(),
            "load_average": os.getloadavg(),
        },
    }
    print(f"\nhistory: {count:,} messages in one room (stored in {fill_seconds:.0f}s); 50-message pages")
    print(f"{'read':<6} {'page':<14} {'p50 ms':>8} {'p99 ms':>8} {'samples':>8}")
    for layer in ("store", "http"):
        for kind, figures in result[layer].items():  # type: ignore[attr-defined]
            print(f"{layer:<6} {kind:<14} {figures['p50_ms']:>8.2f} {figures['p99_ms']:>8.2f} {figures['samples']:>8}")
    print(f"target: p99 <= 5 ms; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "history.json").write_text(json.dumps(result, indent=2))
    return result


def _check(condition: bool, problem: str) -> None:
    if not condition:
        raise SystemExit(f"history benchmark: {problem}")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


if __name__ == "__main__":
    asyncio.run(main())
