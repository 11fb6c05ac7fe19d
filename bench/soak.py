"""Soak benchmark of the Mongo-wire server: the messages service's write pattern at a fixed rate, long enough to
see whether the server slows down as its data ages.

uv run python -m bench.soak                                           # both shapes, the make-bench size
BENCH_SOAK_MESSAGES=1000000 BENCH_SOAK_SHAPES=batched uv run python -m bench.soak

Each shape runs on a fresh SecantusDB of its own, started by chat_localinfra exactly as `make run` and
`make infra-up` start it (same flags), in a temporary folder removed at the end. The client is the messages
service's own (``chat_messages.adapters.mongo.client``: its write concern, its retryable-writes choice).

Shapes (the commands the service sends per message):

- ``batched``: one consumer per partition collects what arrived during a linger period (at most
  ``BENCH_SOAK_BATCH``) and writes it with one ordered ``insert_many`` and one ``bulk_write`` of head updates;
  room, membership and send budget live in the consumer's memory.
- ``per-send``: the service before batching, one message at a time: the client_msg_id pre-read, the room read,
  the membership read, the token-bucket findAndModify, the insert, the head update.

Output per window (BENCH_SOAK_WINDOWS of them): the rate reached, p50/p99 of each command, the server's CPU per
message (utime + stime from /proc/<pid>/stat), its resident memory, its data folder's size and the machine's load
average. Then one message is changed by ``_id`` on the aged server with ``update_one`` and with
``find_one_and_update`` (which this server answers with a scan of the collection). Then the aged-versus-fresh
probe: a second, brand-new server is started and the same load goes to the aged server and to the fresh one in
turns (BENCH_SOAK_PROBE_ROUNDS rounds of BENCH_SOAK_PROBE_SECONDS each), so both see the same machine: on a shared
machine the windows above also measure the neighbours, the probe mostly does not. Writes bench/results/soak.json.

Environment:
    BENCH_SOAK_MESSAGES           messages of the batched shape (default 45,000)
    BENCH_SOAK_PER_SEND_MESSAGES  messages of the per-send shape (default 2,000: it cannot keep 300/s up)
    BENCH_SOAK_RATE               messages per second (default 300)
    BENCH_SOAK_SHAPES             comma-separated, from batched, per-send (default both)
    BENCH_SOAK_WINDOWS            report windows (default 10)
    BENCH_SOAK_ROOMS              rooms the messages go to (default 100, 20 members each)
    BENCH_SOAK_PARTITIONS         consumers (batched, default 2) or sends in flight (per-send, default 16)
    BENCH_SOAK_LINGER_MS          batched: how long a consumer collects before writing (default 100)
    BENCH_SOAK_BATCH              batched: most messages per write (default 50)
    BENCH_SOAK_PROBE_ROUNDS       aged/fresh turns after the soak (default 6, per-send 1; 0 skips the probe)
    BENCH_SOAK_PROBE_SECONDS      seconds of load per turn (default 8)
    BENCH_SOAK_RESTART            1: then restart the aged server on its data and compare it with the fresh again
    BENCH_SOAK_CLIENT             client options over the service's, "name=value,..." (e.g. retryWrites=true)
    BENCH_SOAK_SERVER_ARGS        more secantusd-py flags (CHAT_INFRA_MONGO_ARGS of the servers it starts)
    BENCH_SOAK_FLAMEGRAPHS        a folder: py-spy records the server during the second and the next-to-last
                                  windows (SVG), so the first and the last windows stay unobserved
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient, ReturnDocument, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from bench.serving import cpu_seconds, free_port, rss_kib
from chat_localinfra import InfraConfig, ensure_started, status, stop
from chat_localinfra.mongo import MongoServer
from chat_messages.adapters import mongo
from chat_messages.adapters.mongo_documents import message_document, to_us
from chat_messages.adapters.mongo_store import MongoMessageStore
from chat_messages.domain import text
from chat_messages.domain.model import Message, message_id_for

Document = dict[str, Any]
RESULTS = Path(__file__).parent / "results"
SHAPES = ("batched", "per-send")
MEMBERS = 20
WORDS = [
    "deploy",
    "review",
    "lunch",
    "meeting",
    "release",
    "ticket",
    "coffee",
    "design",
    "schedule",
    "budget",
    "customer",
    "issue",
    "patch",
    "build",
    "server",
    "metrics",
    "dashboard",
    "weekend",
    "holiday",
    "question",
    "answer",
]


def _stored_bucket_update(*, capacity: float, refill_per_second: float, now_us: int) -> list[Document]:
    """The send budget as the service kept it in the store before decisions/0011 (the per-send shape replays it):
    refill for the time since the last take, then take one if there is one, in one aggregation-pipeline update."""
    elapsed = {"$max": [0, {"$subtract": [now_us, {"$ifNull": ["$at_us", now_us]}]}]}
    refill = {"$divide": [{"$multiply": [elapsed, refill_per_second]}, 1_000_000]}
    return [
        {
            "$set": {
                "tokens": {"$min": [capacity, {"$add": [{"$ifNull": ["$tokens", capacity]}, refill]}]},
                "at_us": {"$max": [{"$ifNull": ["$at_us", now_us]}, now_us]},
            }
        },
        {"$set": {"granted": {"$gte": ["$tokens", 1]}}},
        {"$set": {"tokens": {"$cond": ["$granted", {"$subtract": ["$tokens", 1]}, "$tokens"]}}},
    ]


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, str(default)).replace("_", "").replace(",", ""))


@dataclass(frozen=True)
class Plan:
    shape: str
    messages: int
    rate: float
    windows: int
    rooms: int
    partitions: int
    linger: float
    batch: int
    probe_rounds: int
    probe_seconds: float
    flamegraphs: Path | None

    @classmethod
    def from_env(cls, shape: str) -> Plan:
        folder = os.environ.get("BENCH_SOAK_FLAMEGRAPHS")
        batched = shape == "batched"
        return cls(
            shape=shape,
            messages=_env_int("BENCH_SOAK_MESSAGES", 45_000)
            if batched
            else _env_int("BENCH_SOAK_PER_SEND_MESSAGES", 2_000),
            rate=float(os.environ.get("BENCH_SOAK_RATE", "300")),
            windows=_env_int("BENCH_SOAK_WINDOWS", 10),
            rooms=_env_int("BENCH_SOAK_ROOMS", 100),
            partitions=_env_int("BENCH_SOAK_PARTITIONS", 2 if batched else 16),
            linger=_env_int("BENCH_SOAK_LINGER_MS", 100) / 1000,
            batch=_env_int("BENCH_SOAK_BATCH", 50),
            probe_rounds=_env_int("BENCH_SOAK_PROBE_ROUNDS", 6 if batched else 1),
            probe_seconds=float(os.environ.get("BENCH_SOAK_PROBE_SECONDS", "8")),
            flamegraphs=Path(folder) if folder else None,
        )


@dataclass
class Server:
    """A running Mongo-wire server of this benchmark's own."""

    url: str
    pid: int
    data_dir: Path
    config: InfraConfig

    async def restart(self) -> None:
        """Stop the server and start it again on the same data, as the next `make run` does."""
        await asyncio.to_thread(stop, "mongo", config=self.config)
        await asyncio.to_thread(ensure_started, "mongo", config=self.config)
        self.pid = await _pid(self.config)


async def _pid(config: InfraConfig) -> int:
    running = await asyncio.to_thread(status, "mongo", config=config)
    pid = running[0].pid
    if pid is None:
        raise SystemExit("soak benchmark: the Mongo-wire server did not start")
    return pid


@contextlib.asynccontextmanager
async def fresh_server(label: str, args: str | None = None) -> AsyncIterator[Server]:
    """A brand-new SecantusDB started as `make run` starts it (plus ``args``, by default BENCH_SOAK_SERVER_ARGS), in
    a temporary folder removed afterwards."""
    with tempfile.TemporaryDirectory(prefix=f"chat-bench-soak-{label}-") as folder:
        own = InfraConfig.from_env(
            {
                "CHAT_INFRA_DIR": folder,
                "CHAT_INFRA_MONGO_PORT": str(free_port()),
                "CHAT_INFRA_MONGO_ARGS": os.environ.get("BENCH_SOAK_SERVER_ARGS", "") if args is None else args,
            }
        )
        try:
            urls = await asyncio.to_thread(ensure_started, "mongo", config=own)
            if not urls.mongo_url:
                raise SystemExit("soak benchmark: the Mongo-wire server did not start")
            yield Server(urls.mongo_url, await _pid(own), MongoServer(own).data_dir, own)
        finally:
            await asyncio.to_thread(stop, "mongo", config=own)


@dataclass
class Room:
    id: uuid.UUID
    members: list[uuid.UUID]
    next_seq: int = 1


def _pct(values: list[float], fraction: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def _ms(values: list[float], fraction: float) -> float:
    return round(_pct(values, fraction) * 1000, 2)


def _folder_bytes(path: Path) -> int:
    total = 0
    for entry in path.rglob("*"):
        with contextlib.suppress(FileNotFoundError):
            if entry.is_file():
                total += entry.stat().st_size
    return total


def _load_average() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


@dataclass
class Window:
    """What one stretch of the soak cost."""

    first: int
    last: int
    began: float
    cpu_began: float
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    lag: list[float] = field(default_factory=list)
    batch_sizes: list[int] = field(default_factory=list)

    def close(self, server: Server) -> dict[str, Any]:
        count = self.last - self.first + 1
        seconds = time.perf_counter() - self.began
        cpu = cpu_seconds(server.pid) - self.cpu_began
        row: dict[str, Any] = {
            "messages": [self.first, self.last],
            "seconds": round(seconds, 1),
            "rate": round(count / seconds, 1),
            "lag_p99_ms": round(_pct(self.lag, 0.99) * 1000, 1),
            "server_cpu_ms_per_message": round(cpu * 1000 / count, 3),
            "server_cpu_share": round(cpu / seconds, 3),
            "server_rss_mib": round(rss_kib(server.pid) / 1024, 1),
            "data_mib": round(_folder_bytes(server.data_dir) / 2**20, 1),
            "load_average": _load_average(),
            "commands": {
                name: {"n": len(values), "p50_ms": _ms(values, 0.50), "p99_ms": _ms(values, 0.99)}
                for name, values in sorted(self.latencies.items())
            },
        }
        if self.batch_sizes:
            row["mean_batch"] = round(sum(self.batch_sizes) / len(self.batch_sizes), 1)
        return row


class Recorder:
    """Command latencies by window; a window closes when its last message is written."""

    def __init__(
        self, server: Server, *, messages: int, windows: int, on_window: Callable[[int, dict[str, Any]], None]
    ) -> None:
        self.server, self.messages, self.on_window = server, messages, on_window
        self.size = max(1, messages // windows)
        self.done = 0
        self.rows: list[dict[str, Any]] = []
        self.window = self._open(1)

    def _open(self, first: int) -> Window:
        last = min(self.messages, first + self.size - 1)
        if self.messages - last < self.size:
            last = self.messages  # no short window at the end
        return Window(first=first, last=last, began=time.perf_counter(), cpu_began=cpu_seconds(self.server.pid))

    @contextlib.contextmanager
    def command(self, name: str) -> Iterator[None]:
        began = time.perf_counter()
        yield
        self.window.latencies[name].append(time.perf_counter() - began)

    def written(self, count: int) -> None:
        self.done += count
        while self.window.last <= self.messages and self.done >= self.window.last:
            row = self.window.close(self.server)
            self.rows.append(row)
            self.on_window(len(self.rows), row)
            if self.window.last >= self.messages:
                self.window.last = self.messages + 1  # finished: nothing more to close
                return
            self.window = self._open(self.window.last + 1)


class Load:
    """The messages of one server: its rooms (with their next seq) and the client that writes them."""

    def __init__(self, plan: Plan, server: Server, seed: int) -> None:
        self.plan, self.server = plan, server
        rng = random.Random(seed)
        self.rooms = [
            Room(
                id=uuid.UUID(int=rng.getrandbits(128)),
                members=[uuid.UUID(int=rng.getrandbits(128)) for _ in range(MEMBERS)],
            )
            for _ in range(plan.rooms)
        ]
        self.rng = rng
        self.sent = 0
        self.client = _client(server.url)
        self.db: AsyncDatabase[Document] = self.client["chat_messages"]

    async def seed(self) -> None:
        await MongoMessageStore(self.db).ensure_indexes()
        await self.db.rooms.insert_many(
            [
                {"_id": r.id, "version": 1, "kind": "group", "archived": False, "history": "shared", "deleted": False}
                for r in self.rooms
            ]
        )
        await self.db.members.insert_many(
            [
                {"_id": f"{r.id}:{u}", "room_id": r.id, "user_id": u, "role": "member", "joined_after_seq": 0}
                for r in self.rooms
                for u in r.members
            ]
        )

    async def close(self) -> None:
        await self.client.close()

    def message(self) -> Message:
        room = self.rng.choice(self.rooms)
        self.sent += 1
        body = f"message {self.sent} " + " ".join(self.rng.choices(WORDS, k=8))
        seq, room.next_seq = room.next_seq, room.next_seq + 1
        return Message(
            id=message_id_for(room.id, f"soak-{self.sent}"),
            room_id=room.id,
            seq=seq,
            sender_id=self.rng.choice(room.members),
            client_msg_id=f"soak-{self.sent}",
            body=body,
            created_at=datetime.now(UTC),
            tokens=text.tokens(body),
        )

    async def run(self, count: int, rec: Recorder) -> None:
        runner = batched if self.plan.shape == "batched" else per_send
        await runner(self, count, rec)


async def _paced(load: Load, count: int, emit: Callable[[Message, float], Awaitable[None]]) -> None:
    """Hand each message over at its due time (``i / rate`` after the start), never earlier."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    for index in range(count):
        due = start + index / load.plan.rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        await emit(load.message(), due)


async def per_send(load: Load, count: int, rec: Recorder) -> None:
    """Each message alone, with the six commands the service sent per message before batching."""
    db = load.db
    loop = asyncio.get_running_loop()
    slots = asyncio.Semaphore(load.plan.partitions)
    tasks: set[asyncio.Task[None]] = set()
    no_applied = {"applied": 0}

    async def one(message: Message) -> None:
        try:
            with rec.command("pre-read client_msg_id"):
                await db.messages.find_one(
                    {"room_id": message.room_id, "client_msg_id": message.client_msg_id}, no_applied
                )
            with rec.command("room read"):
                await db.rooms.find_one({"_id": message.room_id})
            with rec.command("membership read"):
                await db.members.find_one({"_id": f"{message.room_id}:{message.sender_id}"})
            with rec.command("token bucket findAndModify"):
                bucket = f"send:{message.room_id}:{message.sender_id}"
                update = _stored_bucket_update(capacity=10, refill_per_second=1.0, now_us=to_us(datetime.now(UTC)))
                try:
                    await db.buckets.find_one_and_update(
                        {"_id": bucket}, update, upsert=True, return_document=ReturnDocument.AFTER
                    )
                except DuplicateKeyError:
                    await db.buckets.find_one_and_update({"_id": bucket}, update)
            with rec.command("insert_one"):
                await db.messages.insert_one(message_document(message))
            with rec.command("head update"):
                behind = {"_id": message.room_id, "seq": {"$lt": message.seq}}
                try:
                    await db.heads.update_one(behind, {"$set": {"seq": message.seq}}, upsert=True)
                except DuplicateKeyError:
                    await db.heads.update_one(behind, {"$set": {"seq": message.seq}})
            rec.written(1)
        finally:
            slots.release()

    async def emit(message: Message, due: float) -> None:
        await slots.acquire()
        rec.window.lag.append(loop.time() - due)
        task = asyncio.create_task(one(message))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    try:
        await _paced(load, count, emit)
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()


async def batched(load: Load, count: int, rec: Recorder) -> None:
    """One consumer per partition: collect for the linger period, then one insert_many and one bulk_write."""
    db, plan = load.db, load.plan
    loop = asyncio.get_running_loop()
    queues: list[asyncio.Queue[tuple[Message, float] | None]] = [asyncio.Queue() for _ in range(plan.partitions)]
    partition_of = {room.id: i % plan.partitions for i, room in enumerate(load.rooms)}

    async def consume(queue: asyncio.Queue[tuple[Message, float] | None]) -> None:
        finished = False
        while not finished:
            first = await queue.get()
            if first is None:
                return
            await asyncio.sleep(plan.linger)
            pending = [first]
            while not queue.empty():
                item = queue.get_nowait()
                if item is None:
                    finished = True
                    break
                pending.append(item)
            for start in range(0, len(pending), plan.batch):
                chunk = pending[start : start + plan.batch]
                now = loop.time()
                rec.window.lag.extend(now - due for _, due in chunk)
                rec.window.batch_sizes.append(len(chunk))
                with rec.command("insert_many"):
                    await db.messages.insert_many([message_document(m) for m, _ in chunk], ordered=True)
                heads: dict[uuid.UUID, int] = {}
                for m, _ in chunk:
                    heads[m.room_id] = max(heads.get(m.room_id, 0), m.seq)
                with rec.command("bulk_write heads"):
                    await db.heads.bulk_write(
                        [UpdateOne({"_id": r}, {"$max": {"seq": s}}, upsert=True) for r, s in heads.items()],
                        ordered=False,
                    )
                rec.written(len(chunk))

    consumers = [asyncio.create_task(consume(q)) for q in queues]

    async def emit(message: Message, due: float) -> None:
        queues[partition_of[message.room_id]].put_nowait((message, due))

    try:
        await _paced(load, count, emit)
        for q in queues:
            q.put_nowait(None)
        await asyncio.gather(*consumers)
    finally:
        for consumer in consumers:
            consumer.cancel()


def _client(url: str) -> AsyncMongoClient[Document]:
    """The messages service's client, with BENCH_SOAK_CLIENT's options over its own."""
    options: dict[str, Any] = {}
    for pair in os.environ.get("BENCH_SOAK_CLIENT", "").split(","):
        name, _, raw = (part.strip() for part in pair.partition("="))
        if name:
            value: Any = {"true": True, "false": False}.get(raw.lower(), raw)
            with contextlib.suppress(ValueError):
                value = int(raw)
            options[name] = value
    return mongo.client(url, **options)


class Flamegraph:
    """py-spy recording the server for a while, in the background (nonblocking: the server is not paused)."""

    def __init__(self, pid: int, out: Path, seconds: int) -> None:
        out.parent.mkdir(parents=True, exist_ok=True)
        spy = shutil.which("py-spy")
        base = [spy] if spy else [os.environ.get("UV", "uv"), "run", "--with", "py-spy", "py-spy"]
        argv = [*base, "record", "--nonblocking", "-r", "50", "-d", str(seconds), "-o", str(out), "--pid", str(pid)]
        self.out = out
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # noqa: S603

    def wait(self) -> None:
        _, err = self.process.communicate()
        if self.process.returncode != 0:
            print(f"  py-spy failed ({self.process.returncode}): {err.decode(errors='replace')[-500:]}", flush=True)
        else:
            print(f"  flame graph: {self.out}", flush=True)


def _print_window(label: str, number: int, total: int, row: dict[str, Any]) -> None:
    commands = "  ".join(f"{n} {c['p50_ms']}/{c['p99_ms']}" for n, c in row["commands"].items())
    print(
        f"  {label} {number:2}/{total} msgs {row['messages'][1]:>9,}  {row['rate']:6.1f}/s"
        f"  lag p99 {row['lag_p99_ms']:8.1f} ms  server {row['server_cpu_ms_per_message']:.3f} ms CPU/msg"
        f" ({row['server_cpu_share']:.2f} core)  rss {row['server_rss_mib']} MiB  data {row['data_mib']} MiB"
        f"  load {row['load_average']:.1f}  p50/p99 ms: {commands}",
        flush=True,
    )


async def soak(plan: Plan, aged: Server) -> dict[str, Any]:
    """The soak itself: ``plan.messages`` at ``plan.rate``, reported per window."""
    load = Load(plan, aged, seed=7)
    spies: list[Flamegraph] = []
    window_seconds = plan.messages / plan.windows / plan.rate

    def on_window(number: int, row: dict[str, Any]) -> None:
        _print_window(f"{plan.shape} window", number, plan.windows, row)
        if plan.flamegraphs is not None and number in (1, plan.windows - 2):
            label = "fresh" if number == 1 else "aged"
            out = plan.flamegraphs / f"soak-{plan.shape}-{label}-{plan.messages}.svg"
            spies.append(Flamegraph(aged.pid, out, max(5, min(60, int(window_seconds * 0.8)))))

    print(
        f"soak {plan.shape}: {plan.messages:,} messages at {plan.rate:g}/s into {plan.rooms} rooms "
        f"({plan.partitions} {'consumers' if plan.shape == 'batched' else 'sends in flight'}) on {aged.url}",
        flush=True,
    )
    began = time.perf_counter()
    try:
        await load.seed()
        rec = Recorder(aged, messages=plan.messages, windows=plan.windows, on_window=on_window)
        await load.run(plan.messages, rec)
        seconds = time.perf_counter() - began
        for spy in spies:
            await asyncio.to_thread(spy.wait)
        point = await point_writes(load)
        probe = await aged_versus_fresh(plan, load) if plan.probe_rounds > 0 else None
    finally:
        await load.close()
    rows = rec.rows
    return {
        "shape": plan.shape,
        "messages": plan.messages,
        "rate": plan.rate,
        "seconds": round(seconds, 1),
        "windows": rows,
        "last_window_vs_first": _ratios(rows[-1], rows[0]),
        "point_writes_ms": point,
        "probe": probe,
    }


async def point_writes(load: Load, tries: int = 3) -> dict[str, float]:
    """One message changed by ``_id`` on the aged server: ``update_one`` against ``find_one_and_update``, which
    this server answers by scanning the whole collection (it re-checks the filter as ``{_id, $and: [filter]}``)."""
    doc = await load.db.messages.find_one({}, {"_id": 1})
    if doc is None:
        return {}
    by_id = {"_id": doc["_id"]}
    found: dict[str, float] = {}
    for name, write in (
        ("update_one", lambda: load.db.messages.update_one(by_id, {"$inc": {"version": 0}})),
        ("find_one_and_update", lambda: load.db.messages.find_one_and_update(by_id, {"$inc": {"version": 0}})),
    ):
        began = time.perf_counter()
        for _ in range(tries):
            await write()
        found[name] = round((time.perf_counter() - began) / tries * 1000, 2)
    count = await load.db.messages.estimated_document_count()
    print(
        f"soak {load.plan.shape}: one message changed by _id among {count:,}: update_one {found['update_one']} ms, "
        f"find_one_and_update {found['find_one_and_update']} ms",
        flush=True,
    )
    return found | {"documents": float(count)}


async def aged_versus_fresh(plan: Plan, aged: Load) -> dict[str, Any]:
    """The same load to the aged server and to a brand-new one, in turns, so both share the machine's state; with
    BENCH_SOAK_RESTART=1 again after restarting the aged server on its data (in-memory state or data?)."""
    async with fresh_server(f"{plan.shape}-probe") as server:
        fresh = Load(plan, server, seed=11)
        try:
            await fresh.seed()
            found = {"aged": await _in_turns(plan, ("aged", aged), ("fresh", fresh))}
            if os.environ.get("BENCH_SOAK_RESTART") == "1":
                await aged.server.restart()
                found["restarted"] = await _in_turns(plan, ("restarted", aged), ("fresh", fresh))
        finally:
            await fresh.close()
    return found


async def _in_turns(plan: Plan, first: tuple[str, Load], second: tuple[str, Load]) -> dict[str, Any]:
    count = max(1, int(plan.rate * plan.probe_seconds))
    rows: dict[str, list[dict[str, Any]]] = {first[0]: [], second[0]: []}
    for turn in range(plan.probe_rounds):
        for label, load in (first, second) if turn % 2 == 0 else (second, first):

            def keep(_: int, row: dict[str, Any], label: str = label, turn: int = turn) -> None:
                rows[label].append(row)
                _print_window(f"{plan.shape} probe {label:9}", turn + 1, plan.probe_rounds, row)

            await load.run(count, Recorder(load.server, messages=count, windows=1, on_window=keep))
    summary = {label: _median_row(found) for label, found in rows.items()}
    ratios = _ratios(summary[first[0]], summary[second[0]])
    print(f"soak {plan.shape}: {first[0]} / {second[0]}, median of {plan.probe_rounds} turns each:")
    for name, ratio in ratios.items():
        print(f"  {name:40} x{ratio}")
    return {"rounds": rows, "median": summary, "ratios": ratios}


def _median_row(rows: list[dict[str, Any]]) -> dict[str, Any]:
    names = sorted({name for row in rows for name in row["commands"]})
    return {
        "server_cpu_ms_per_message": round(statistics.median(r["server_cpu_ms_per_message"] for r in rows), 3),
        "commands": {
            name: {
                q: round(statistics.median(r["commands"][name][q] for r in rows if name in r["commands"]), 2)
                for q in ("p50_ms", "p99_ms")
            }
            for name in names
        },
    }


def _ratios(later: dict[str, Any], earlier: dict[str, Any]) -> dict[str, float]:
    def ratio(a: float, b: float) -> float:
        return round(a / b, 2) if b else 0.0

    found = {"server CPU per message": ratio(later["server_cpu_ms_per_message"], earlier["server_cpu_ms_per_message"])}
    for name, c in earlier["commands"].items():
        if name in later["commands"]:
            for q in ("p50_ms", "p99_ms"):
                found[f"{name} {q[:3]}"] = ratio(later["commands"][name][q], c[q])
    return found


async def run_shape(shape: str) -> dict[str, Any]:
    plan = Plan.from_env(shape)
    async with fresh_server(shape) as server:
        result = await soak(plan, server)
    print(f"soak {shape}: {plan.messages:,} messages in {result['seconds']} s; last window / first window:")
    for name, ratio in result["last_window_vs_first"].items():
        print(f"  {name:40} x{ratio}")
    return result


async def main() -> dict[str, Any]:
    shapes = [s.strip() for s in os.environ.get("BENCH_SOAK_SHAPES", ",".join(SHAPES)).split(",") if s.strip()]
    unknown = set(shapes) - set(SHAPES)
    if unknown:
        raise SystemExit(f"soak benchmark: unknown shape(s) {sorted(unknown)}; choose from {SHAPES}")
    began = time.perf_counter()
    results: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "client_overrides": os.environ.get("BENCH_SOAK_CLIENT", ""),
        "server_args": os.environ.get("BENCH_SOAK_SERVER_ARGS", ""),
        "shapes": [await run_shape(shape) for shape in shapes],
    }
    results["seconds"] = round(time.perf_counter() - began, 1)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "soak.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"soak: {results['seconds']} s in all; bench/results/soak.json")
    return results


if __name__ == "__main__":
    sys.exit(0 if asyncio.run(main()) else 1)
