"""Full pipeline benchmark in split mode: ``message:send`` → gateway → Kafka command → messages service (stored
on the Mongo-wire server) → Kafka event → both gateways → every member's socket, with real Kafka, PostgreSQL and
the Mongo-wire server, and every service in its own process (``chat serve --target …``, the deployment the
integration tests start: tests/integration/split.py).

    uv run python -m bench.pipeline

Users sign up and verify by email (a local SMTP server), create and join public rooms over HTTP through the
gateway, and the load generator (bench/loadgen.py) holds one Socket.IO connection per (user, room), half on each
gateway, each subscribed to its room. Then, for each rate in turn, the connections send ``message:send`` at that
many messages per second (each from the next connection, with the send time in the body) and every delivery's
send → receive latency is recorded, as is each send → ack latency. The reference load is the first rate; the
steps go on until p99 reaches 100 ms or deliveries are lost, and the highest rate before that is reported.

Sizes come from the environment:

    BENCH_PIPELINE_USERS=200              users (each has connections ÷ users sockets, one per room)
    BENCH_PIPELINE_CONNECTIONS=2000       sockets in all
    BENCH_PIPELINE_ROOM_SIZE=20           members (and sockets) per room
    BENCH_PIPELINE_RATES=10,20,30,40,50,60,80,100,130,160   messages per second in, one step each
    BENCH_PIPELINE_REFERENCE=200          the reference load
    BENCH_PIPELINE_SECONDS=15             sending time per step
    BENCH_WORKERS=2                       load generator processes
    BENCH_RESULTS=bench/results           pipeline.json, pipeline.md, pipeline.png

PostgreSQL and the Mongo-wire server are fresh ones of the run's own (in a temporary folder, stopped and removed
at the end): the Mongo-wire server slows down as it accumulates data, and a long-lived development server
that has served many test runs answers writes 2–4 times slower than a fresh one. Kafka is the local one (`make
infra-up`, or started here as the integration tests do), with topics of the run's own, deleted at the end.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import secrets
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from aiosmtpd.controller import Controller
from pymongo import AsyncMongoClient

from bench.loadgen import LoadGen
from bench.meter import settle
from bench.scenarios import Sources, latency_axis, machine, percentile, save_plot
from bench.serving import Seat, cpu_seconds, free_port
from chat_localinfra import InfraConfig, ensure_started, status, stop
from chat_localinfra.smtp import SmtpInbox
from tests.integration.split import Split, run_split

PASSWORD = "correct horse battery staple 42"
P99_LIMIT_MS = 100.0

ENV = {
    # Every user keeps one socket per room, and the steps send up to several messages per second per user.
    "CHAT_GATEWAY_MAX_CONNECTIONS_PER_USER": "100",
    "CHAT_GATEWAY_EVENTS_BURST": "1000",
    "CHAT_MESSAGES_SEND_BURST": "1000",
    "CHAT_MESSAGES_SEND_PER_SECOND": "100",
    "CHAT_ROOMS_ROOMS_PER_USER_PER_HOUR": "1000",
    "CHAT_AUTH_REGISTRATIONS_PER_WINDOW": "100000",
    "CHAT_AUTH_ACCESS_TOKEN_TTL_SECONDS": "3600",
    # The logs at the production default (info): the messages service writes a line per stored message.
}


@dataclass(frozen=True)
class Sizes:
    users: int = int(os.environ.get("BENCH_PIPELINE_USERS", "200"))
    connections: int = int(os.environ.get("BENCH_PIPELINE_CONNECTIONS", "2000"))
    room_size: int = int(os.environ.get("BENCH_PIPELINE_ROOM_SIZE", "20"))
    rates: tuple[int, ...] = tuple(
        int(x) for x in os.environ.get("BENCH_PIPELINE_RATES", "10,20,30,40,50,60,80,100,130,160").split(",")
    )
    reference: int = int(os.environ.get("BENCH_PIPELINE_REFERENCE", "200"))
    seconds: float = float(os.environ.get("BENCH_PIPELINE_SECONDS", "15"))
    workers: int = int(os.environ.get("BENCH_WORKERS", "2"))
    results: Path = Path(os.environ.get("BENCH_RESULTS", "bench/results"))

    @property
    def rooms_per_user(self) -> int:
        return self.connections // self.users

    @property
    def rooms(self) -> int:
        return self.connections // self.room_size


# --- people and rooms, through the gateways like any client ---------------------------------------------------


def _source(n: int) -> str:
    """A source address of its own per user: auth limits sign-ups and logins per client address."""
    return f"127.1.{n // 250}.{1 + n % 250}"


async def _sign_up(split: Split, inbox: SmtpInbox, n: int, tag: str) -> dict[str, Any]:
    name = f"b{tag}{n}"
    email = f"{name}@example.com"
    transport = httpx.AsyncHTTPTransport(local_address=_source(n))
    async with httpx.AsyncClient(base_url=split.gateways[n % 2], transport=transport, timeout=60) as http:
        registered = await http.post(
            "/api/auth/register", json={"email": email, "username": name, "password": PASSWORD}
        )
        if registered.status_code != 202:
            raise RuntimeError(f"register {name}: {registered.status_code} {registered.text}")
        code = await inbox.code_for(email, timeout=60)
        verified = await http.post("/api/auth/email/verify", json={"email": email, "code": code})
        if verified.status_code != 200:
            raise RuntimeError(f"verify {name}: {verified.status_code} {verified.text}")
        tokens = await http.post("/api/auth/login", json={"identifier": name, "password": PASSWORD})
        if tokens.status_code != 200:
            raise RuntimeError(f"login {name}: {tokens.status_code} {tokens.text}")
        return dict(tokens.json())


async def _gather_limited(jobs: list[Any], limit: int) -> list[Any]:
    gate = asyncio.Semaphore(limit)

    async def run(job: Any) -> Any:
        async with gate:
            return await job

    return list(await asyncio.gather(*(run(job) for job in jobs)))


async def _people(split: Split, inbox: SmtpInbox, sizes: Sizes) -> list[Seat]:
    """Users in blocks of ``room_size``; each block shares ``rooms_per_user`` rooms, so every room has
    ``room_size`` members and every user ``rooms_per_user`` sockets, one per room, on alternating gateways."""
    tag = secrets.token_hex(2)
    began = time.perf_counter()
    users = await _gather_limited([_sign_up(split, inbox, n, tag) for n in range(sizes.users)], 6)
    print(f"  {len(users)} users signed up, verified and signed in in {time.perf_counter() - began:.1f} s", flush=True)
    began = time.perf_counter()
    seats: list[Seat] = []
    async with httpx.AsyncClient(timeout=60) as http:

        async def room_for(block: list[int], k: int) -> list[Seat]:
            owner = users[block[0]]
            created = await http.post(
                f"{split.gateways[k % 2]}/api/rooms",
                json={"kind": "public", "name": f"bench {tag} {block[0]}-{k}"},
                headers={"Authorization": f"Bearer {owner['access_token']}"},
            )
            if created.status_code != 201:
                raise RuntimeError(f"create room: {created.status_code} {created.text}")
            room = str(created.json()["id"])
            for member in block[1:]:
                joined = await http.post(
                    f"{split.gateways[member % 2]}/api/rooms/{room}/join",
                    headers={"Authorization": f"Bearer {users[member]['access_token']}"},
                )
                if joined.status_code != 200:
                    raise RuntimeError(f"join: {joined.status_code} {joined.text}")
            return [Seat(token=users[m]["access_token"], room=room, url=split.gateways[(m + k) % 2]) for m in block]

        blocks = [list(range(b, min(b + sizes.room_size, sizes.users))) for b in range(0, sizes.users, sizes.room_size)]
        made = await _gather_limited([room_for(block, k) for block in blocks for k in range(sizes.rooms_per_user)], 8)
        seats = [seat for room in made for seat in room]
    print(f"  {len(made)} rooms of {sizes.room_size} made in {time.perf_counter() - began:.1f} s", flush=True)
    random.Random(7).shuffle(seats)  # consecutive sends come from different users and rooms
    return seats


# --- measuring -------------------------------------------------------------------------------------------------


def _children_of() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            tree.setdefault(parent, []).append(int(entry.name))
    return tree


def _tree_cpu(pid: int, tree: dict[int, list[int]]) -> float:
    """CPU seconds of a process and every descendant still running (PostgreSQL's backends, for one)."""
    total = 0.0
    stack = [pid]
    while stack:
        current = stack.pop()
        try:
            total += cpu_seconds(current)
        except (OSError, IndexError, ValueError):
            continue
        stack.extend(tree.get(current, []))
    return total


def _machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all cores since boot, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


class Meter:
    """CPU seconds of each process of the deployment, the servers and the load generator, between two reads."""

    def __init__(self, split: Split, loadgen: LoadGen, infra: dict[str, int]) -> None:
        self.pids = {name: child.process.pid for name, child in split.children.items()}
        self.pids.update(infra)
        self.pids["load generator"] = 0
        self.loadgen = loadgen

    def read(self) -> dict[str, float]:
        tree = _children_of()
        found = {name: _tree_cpu(pid, tree) for name, pid in self.pids.items() if pid}
        found["load generator"] = sum(_tree_cpu(pid, tree) for pid in self.loadgen.pids())
        busy, total = _machine_busy()
        found["_busy"], found["_total"] = busy, total
        return found


def _infra_pids(*configs: InfraConfig) -> dict[str, int]:
    found: dict[str, int] = {}
    for config in configs:
        for server in status(config=config):
            if server.running and server.pid is not None:
                found[f"{server.service} server"] = server.pid
    return found


async def _settle(meter: Meter, *, limit: float = 900.0) -> float:
    """Wait until every process is quiet (bench/meter.py's rule), 3 seconds in a row; returns the wait."""
    return await settle(meter.read, limit=limit)


async def _step(loadgen: LoadGen, meter: Meter, rate: int, sizes: Sizes, connections: int) -> dict[str, Any]:
    before_deliveries, _ = await asyncio.to_thread(loadgen.record, True)
    cpu_before = meter.read()
    began = time.perf_counter()
    sent = await asyncio.to_thread(loadgen.send, rate, sizes.seconds)
    acked = len(sent["acks"])
    expected = before_deliveries + acked * sizes.room_size
    await asyncio.to_thread(loadgen.drain, expected, quiet=5.0, limit=300.0)
    elapsed = time.perf_counter() - began
    cpu_after = meter.read()
    delivered, latencies = await asyncio.to_thread(loadgen.record, False)
    delivered -= before_deliveries
    ms = sorted(x * 1000 for x in latencies)
    stored = sorted(x * 1000 for x in loadgen.upstream)
    after = sorted((total - before) * 1000 for total, before in zip(latencies, loadgen.upstream, strict=True))
    acks = sorted(x * 1000 for x in sent["acks"])
    cores = (cpu_after["_total"] - cpu_before["_total"]) / max(1.0, elapsed) / 100  # jiffies per second per core
    spent = {name: cpu_after[name] - cpu_before.get(name, 0.0) for name in cpu_after if not name.startswith("_")}
    cpu = {name: round(seconds / elapsed * 100, 1) for name, seconds in spent.items()}
    per_message = {name: round(seconds / max(1, acked) * 1000, 2) for name, seconds in spent.items()}
    row = {
        "rate": rate,
        "seconds": round(sent["seconds"], 2),
        "sent": sent["sent"],
        "acked": acked,
        "refused": sent["refused"],
        "expected_deliveries": acked * sizes.room_size,
        "delivered": delivered,
        "lost": max(0, acked * sizes.room_size - delivered),
        "connections": connections,
        "p50_ms": round(percentile(ms, 0.50), 2),
        "p90_ms": round(percentile(ms, 0.90), 2),
        "p99_ms": round(percentile(ms, 0.99), 2),
        "p999_ms": round(percentile(ms, 0.999), 2),
        "max_ms": round(ms[-1], 2) if ms else None,
        "send_to_stored_p50_ms": round(percentile(stored, 0.50), 2),
        "send_to_stored_p99_ms": round(percentile(stored, 0.99), 2),
        "stored_to_received_p50_ms": round(percentile(after, 0.50), 2),
        "stored_to_received_p99_ms": round(percentile(after, 0.99), 2),
        "ack_p50_ms": round(percentile(acks, 0.50), 2),
        "ack_p99_ms": round(percentile(acks, 0.99), 2),
        "machine_busy": round(
            (cpu_after["_busy"] - cpu_before["_busy"]) / max(1, cpu_after["_total"] - cpu_before["_total"]) * 100, 1
        ),
        "cores": round(cores, 2),
        "cpu_percent_of_a_core": cpu,
        "cpu_ms_per_message": per_message,
        "elapsed_seconds": round(elapsed, 2),
        "load_average": list(os.getloadavg()),
    }
    print(
        f"  {rate:>5}/s: sent {row['sent']}, acked {acked}, delivered {delivered}/{row['expected_deliveries']}, "
        f"p50 {row['p50_ms']} p99 {row['p99_ms']} p99.9 {row['p999_ms']} ms, ack p50 {row['ack_p50_ms']} "
        f"p99 {row['ack_p99_ms']} ms, machine {row['machine_busy']}% busy",
        flush=True,
    )
    return row


# --- the run ---------------------------------------------------------------------------------------------------


async def run(sizes: Sizes) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="chat-bench-stores-") as stores:
        own = InfraConfig.from_env(
            {
                "CHAT_INFRA_DIR": stores,
                "CHAT_INFRA_PG_PORT": str(free_port()),
                "CHAT_INFRA_MONGO_PORT": str(free_port()),
            }
        )
        try:
            return await _run(sizes, own)
        finally:
            await asyncio.to_thread(stop, "postgres,mongo", config=own)


async def _run(sizes: Sizes, own: InfraConfig) -> dict[str, Any]:
    shared = await asyncio.to_thread(ensure_started, "kafka")
    urls = await asyncio.to_thread(ensure_started, "postgres,mongo", config=own)
    if not (urls.postgres_url and shared.kafka_bootstrap and urls.mongo_url):
        raise RuntimeError(f"the servers did not all start: {urls}, {shared}")
    inbox = SmtpInbox()
    smtp_port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    database = f"bench_{secrets.token_hex(6)}"
    rows: list[dict[str, Any]] = []
    setup: dict[str, Any] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="chat-bench-pipeline-") as tmp:
            async with run_split(
                Path(tmp),
                urls.postgres_url,
                shared.kafka_bootstrap,
                urls.mongo_url,
                database,
                ("127.0.0.1", smtp_port, inbox),
                extra_env=ENV,
            ) as split:
                setup["startup_seconds"] = round(split.startup["total"], 2)
                seats = await _people(split, inbox, sizes)
                loadgen = LoadGen.start(
                    split.gateways[0],
                    seats,
                    workers=sizes.workers,
                    protocol="gateway",
                    cpu=None,
                    sources=Sources().take(len(seats), sizes.workers),
                )
                try:
                    opened = await asyncio.to_thread(loadgen.connect)
                    print(f"  {opened['connected']} sockets connected and subscribed in {opened['seconds']:.1f} s")
                    if opened["failed"]:
                        raise RuntimeError(f"{opened['failed']} connections failed, e.g. {opened['errors'][:2]}")
                    setup.update(connected=opened["connected"], connect_seconds=round(opened["seconds"], 1))
                    meter = Meter(split, loadgen, _infra_pids(InfraConfig.from_env(), own))
                    # The messages service's projection of every join, and the presence of everyone who connected,
                    # must be through before anything is measured.
                    setup["settle_seconds"] = await _settle(meter)
                    print(f"  everything quiet after {setup['settle_seconds']} s", flush=True)
                    for rate in sizes.rates:
                        row = await _step(loadgen, meter, rate, sizes, opened["connected"])
                        rows.append(row)
                        if not _within(row):
                            break
                        await asyncio.sleep(2)
                    if sizes.reference not in {r["rate"] for r in rows}:
                        await asyncio.sleep(2)
                        rows.append(await _step(loadgen, meter, sizes.reference, sizes, opened["connected"]))
                finally:
                    await asyncio.to_thread(loadgen.close)
    finally:
        controller.stop()
        mongo: AsyncMongoClient[dict[str, Any]]
        async with AsyncMongoClient(urls.mongo_url) as mongo:
            await mongo.drop_database(database)
    within = [r["rate"] for r in rows if _within(r)]
    return {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "sizes": {
            "users": sizes.users,
            "connections": sizes.connections,
            "room_size": sizes.room_size,
            "rooms": sizes.rooms,
            "seconds_per_step": sizes.seconds,
        },
        "setup": setup,
        "steps": rows,
        "highest_rate_with_p99_under_100ms": max(within) if within else None,
    }


def _within(row: dict[str, Any]) -> bool:
    return bool(row["p99_ms"] < P99_LIMIT_MS and not row["lost"] and row["acked"] == row["sent"])


def table(report: dict[str, Any]) -> str:
    lines = [
        "| messages/s in | sent | acked | deliveries | lost | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms "
        "| ack p50 ms | ack p99 ms | machine busy | load avg |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in sorted(report["steps"], key=lambda r: r["rate"]):
        lines.append(
            f"| {r['rate']} | {r['sent']} | {r['acked']} | {r['delivered']} | {r['lost']} | {r['p50_ms']} "
            f"| {r['p90_ms']} | {r['p99_ms']} | {r['p999_ms']} | {r['max_ms']} | {r['ack_p50_ms']} "
            f"| {r['ack_p99_ms']} | {r['machine_busy']}% | {' '.join(str(round(x, 2)) for x in r['load_average'])} |"
        )
    lines += [
        "",
        "Where the time goes, split at the message's `created_at` (the messages service stamps it after the "
        "membership checks, before the rate limit and the insert): send → stamped (gateway, Kafka, the messages "
        "service's checks) and stamped → received (insert, Kafka, gateway fan-out, socket), p50 / p99 ms:",
        "",
        "| messages/s in | send → stamped p50 | p99 | stamped → received p50 | p99 |",
        "| ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in sorted(report["steps"], key=lambda r: r["rate"]):
        lines.append(
            f"| {r['rate']} | {r['send_to_stored_p50_ms']} | {r['send_to_stored_p99_ms']} "
            f"| {r['stored_to_received_p50_ms']} | {r['stored_to_received_p99_ms']} |"
        )
    names = sorted({n for r in report["steps"] for n in r["cpu_ms_per_message"]})
    lines += ["", "CPU milliseconds per message by process (from the first send until every delivery arrived):", ""]
    lines.append("| messages/s in | " + " | ".join(names) + " | all |")
    lines.append("| ---: | " + " | ".join("---:" for _ in names) + " | ---: |")
    for r in sorted(report["steps"], key=lambda r: r["rate"]):
        cells = " | ".join(str(r["cpu_ms_per_message"].get(n, "")) for n in names)
        lines.append(f"| {r['rate']} | {cells} | {round(sum(r['cpu_ms_per_message'].values()), 1)} |")
    best = report["highest_rate_with_p99_under_100ms"]
    lines.append("")
    lines.append(f"Highest rate with p99 < 100 ms, nothing lost: {best if best else 'none of the steps'} messages/s.")
    return "\n".join(lines)


def plot(report: dict[str, Any], out: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    steps = sorted(report["steps"], key=lambda r: r["rate"])
    figure, axis = plt.subplots(figsize=(7, 4.5))
    x = [r["rate"] for r in steps]
    for key, style in (("p50_ms", "-"), ("p99_ms", "--"), ("p999_ms", "-."), ("max_ms", ":")):
        axis.plot(x, [r[key] for r in steps], style, marker="o", label=key[:-3].replace("p999", "p99.9"))
    axis.axhline(P99_LIMIT_MS, color="grey", linewidth=0.8)
    sizes = report["sizes"]
    title = f"split mode, {sizes['connections']} sockets, rooms of {sizes['room_size']}"
    latency_axis(axis, title, "messages per second in")
    return save_plot(figure, out / "pipeline.png")


def main() -> None:
    sizes = Sizes()
    print(
        f"pipeline: {sizes.users} users, {sizes.connections} sockets in {sizes.rooms} rooms of {sizes.room_size}, "
        f"rates {','.join(map(str, sizes.rates))}/s for {sizes.seconds:.0f} s each",
        flush=True,
    )
    report = asyncio.run(run(sizes))
    sizes.results.mkdir(parents=True, exist_ok=True)
    (sizes.results / "pipeline.json").write_text(json.dumps(report, indent=2) + "\n")
    text = table(report)
    (sizes.results / "pipeline.md").write_text(text + "\n")
    print(text)
    path = plot(report, sizes.results)
    print(f"wrote {sizes.results / 'pipeline.json'}" + (f" and {path}" if path else ""))
    reference = next((r for r in report["steps"] if r["rate"] == sizes.reference), None)
    if reference is not None:
        print(
            f"reference load {reference['rate']}/s: p50 {reference['p50_ms']} ms (target ≤ 6), "
            f"p99 {reference['p99_ms']} ms (target ≤ 15); ack p50 {reference['ack_p50_ms']} ms"
        )


if __name__ == "__main__":
    main()
