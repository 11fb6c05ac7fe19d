"""Message throughput, end to end, in both ways to run the product: the highest rate of ``message:send`` that every
member still receives with p99 send → receive ≤ 100 ms and nothing lost, the idle latency of one message at a time,
and what each message costs: CPU milliseconds per process (stores included), store commands and bus records.

    uv run python -m bench.throughput

- **all-in-one**: ``chat up --external`` (one process, the in-process bus) on a fresh PostgreSQL and Mongo-wire
  server of the run's own.
- **split**: auth, rooms, messages and two gateways, each ``chat serve --target …`` in its own process, on the local
  Kafka broker (topics of the run's own) and the same kind of fresh stores; sockets alternate between the gateways.

The load is the official JavaScript ``socket.io-client`` in a Node process of its own (tests/js/load.mjs): one
socket per seat, subscribed to its room. For each rate in turn it sends for ``BENCH_TP_SECONDS`` on an absolute
schedule (rooms in turn, each room's members in turn) and waits for every delivery; a rate passes when every send
was acked, every member received every message exactly once and in order, and p99 send → receive ≤ 100 ms. The
rates rise until one fails.

Shapes: ``1x50`` (one room, 50 members, one socket each) and ``20x20`` (20 rooms of the same 20 users, each user a
socket per room). Sizes from the environment:

    BENCH_TP_MODES=all,split
    BENCH_TP_SHAPES=1x50,20x20
    BENCH_TP_RATES_1x50=25,50,100,200,300,400,500,600,800,1000,1200,1600,2000
    BENCH_TP_RATES_20x20=25,50,100,200,300,400,600,800,1000,1200,1600,2000
    BENCH_TP_SECONDS=8                    sending time per step
    BENCH_TP_IDLE=200                     sequential messages for the idle latency, between two people in a
                                          room of their own (0: skip)
    BENCH_TP_SETTLE_SECONDS=600           at most this long, after connecting, for every process to go quiet:
                                          under 5 % of a core for 3 s; the shared Kafka broker (split mode)
                                          under 1.5 × its share with the deployment idle, + 1 % of a core
                                          (bench/meter.py; its CPU still counts in the figures)
    BENCH_TP_PROFILE=                     a rate at which to profile: the CPU-time sampler of bench/cpu_profile.py
                                          in each of the product's processes (both modes), and py-spy flame
                                          graphs of every Python process (wall clock: the product's and the
                                          Mongo-wire server)
    BENCH_TP_WALL_PROFILE=1               0: the CPU-time samplers only (py-spy on seven processes of split mode
                                          takes much of the machine, which distorts what it measures)
    BENCH_TP_BROKER_WARM_ROUNDS=10        split mode: at most this many unmeasured rounds of sends (5 s at 200 msg/s)
                                          before the first measurement (idle, or else the first shape), until the
                                          Kafka broker's JIT compiler threads take under a tenth of its CPU
                                          (``warm_broker``; 0: measure it as found)
    BENCH_TP_ENV=                         settings for the product's processes, "NAME=value,..." (A/B runs of
                                          a setting, e.g. CHAT_KAFKA_LINGER_MS=0)
    BENCH_RESULTS=bench/results           throughput.json, throughput.md
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from aiosmtpd.controller import Controller
from pymongo import AsyncMongoClient
from sqlalchemy import make_url

from bench import step_profile
from bench.broker_warm_up import BROKER, warm_broker_if_asked
from bench.meter import QUIET_SHARE, Meter, at_rest, machine_share, raised_floors, spent
from bench.scenarios import machine
from bench.serving import free_port
from chat_localinfra import InfraConfig, ensure_started, status, stop
from chat_localinfra.smtp import SmtpInbox

ROOT = Path(__file__).resolve().parents[1]
LOAD_SCRIPT = ROOT / "tests" / "js" / "load.mjs"
PASSWORD = "correct horse battery staple 42"
P99_LIMIT_MS = 100.0
SHAPES: dict[str, tuple[int, int]] = {"1x50": (1, 50), "20x20": (20, 20), "1x2": (1, 2)}
"""rooms × members; ``1x2`` is the idle latency's: two people, one socket each, nobody else listening."""
RESTING_SECONDS = 10
"""How long the shared servers' resting CPU (their settle floors) is sampled, with the deployment up and idle."""
DEFAULT_RATES = {
    "1x50": "25,50,100,200,300,400,500,600,800,1000,1200,1600,2000",
    "20x20": "25,50,100,200,300,400,600,800,1000,1200,1600,2000",
}

LIMITS = {
    # The benchmark's users send far faster than a person: lift the per-user budgets for the run only.
    "CHAT_GATEWAY_MAX_CONNECTIONS_PER_USER": "100",
    "CHAT_GATEWAY_EVENTS_PER_SECOND": "1000",
    "CHAT_GATEWAY_EVENTS_BURST": "2000",
    "CHAT_MESSAGES_SEND_BURST": "1000",
    "CHAT_MESSAGES_SEND_PER_SECOND": "100",
    "CHAT_ROOMS_ROOMS_PER_USER_PER_HOUR": "1000",
    "CHAT_AUTH_REGISTRATIONS_PER_WINDOW": "100000",
    "CHAT_AUTH_ACCESS_TOKEN_TTL_SECONDS": "3600",
    "CHAT_LOG_LEVEL": "info",  # the production default
}


def _product_env() -> dict[str, str]:
    """The run's settings for the product: the lifted budgets, then ``BENCH_TP_ENV``."""
    chosen = dict(LIMITS)
    for pair in _list("BENCH_TP_ENV", ""):
        name, _, value = pair.partition("=")
        if not name.startswith("CHAT_") or not _:
            raise SystemExit(f"BENCH_TP_ENV: {pair!r} is not CHAT_NAME=value")
        chosen[name] = value
    return chosen


def _list(name: str, default: str) -> list[str]:
    return [x.strip() for x in os.environ.get(name, default).split(",") if x.strip()]


@dataclass(frozen=True)
class Sizes:
    modes: list[str] = field(default_factory=lambda: _list("BENCH_TP_MODES", "all,split"))
    shapes: list[str] = field(default_factory=lambda: _list("BENCH_TP_SHAPES", "1x50,20x20"))
    seconds: float = field(default_factory=lambda: float(os.environ.get("BENCH_TP_SECONDS", "8")))
    idle: int = field(default_factory=lambda: int(os.environ.get("BENCH_TP_IDLE", "200")))
    settle: float = field(default_factory=lambda: float(os.environ.get("BENCH_TP_SETTLE_SECONDS", "600")))
    results: Path = field(default_factory=lambda: Path(os.environ.get("BENCH_RESULTS", "bench/results")))
    profile_rate: int | None = field(
        default_factory=lambda: int(os.environ["BENCH_TP_PROFILE"]) if os.environ.get("BENCH_TP_PROFILE") else None
    )
    wall_profile: bool = field(default_factory=lambda: os.environ.get("BENCH_TP_WALL_PROFILE", "1") != "0")
    broker_warm_rounds: int = field(default_factory=lambda: int(os.environ.get("BENCH_TP_BROKER_WARM_ROUNDS", "10")))

    def rates(self, shape: str) -> list[int]:
        return [int(x) for x in _list(f"BENCH_TP_RATES_{shape}", DEFAULT_RATES[shape])]

    @property
    def users(self) -> int:
        return max([SHAPES["1x2"][1], *(SHAPES[s][1] for s in self.shapes)])


# --- the load generator ----------------------------------------------------------------------------------------


class Load:
    """tests/js/load.mjs in a Node process, one command at a time."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def start(cls) -> Load:
        node = shutil.which("node")
        if node is None:
            raise RuntimeError("node is needed for the load generator (Node.js 20+; make js-deps installs its client)")
        process = await asyncio.create_subprocess_exec(
            node,
            str(LOAD_SCRIPT),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=LOAD_SCRIPT.parent,
            limit=16 * 1024 * 1024,
        )
        return cls(process)

    @property
    def pid(self) -> int:
        return self.process.pid

    async def call(self, command: Mapping[str, Any], timeout: float = 900) -> dict[str, Any]:
        stdin, stdout = self.process.stdin, self.process.stdout
        if stdin is None or stdout is None:
            raise RuntimeError("the load generator has no pipes")
        stdin.write((json.dumps(command) + "\n").encode())
        await stdin.drain()
        line = await asyncio.wait_for(stdout.readline(), timeout)
        if not line:
            raise RuntimeError(f"the load generator exited ({await self.process.wait()})")
        answer: dict[str, Any] = json.loads(line)
        if answer.get("type") == "error":
            raise RuntimeError(f"load generator: {answer['message']}")
        return answer

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.call({"op": "close"}, timeout=30)
        if self.process.returncode is None:
            self.process.kill()
        await self.process.wait()


# --- the product -----------------------------------------------------------------------------------------------


@dataclass
class Deployment:
    gateways: list[str]
    pids: dict[str, int]
    inbox: SmtpInbox
    mongo_url: str
    logs: list[Path]
    metrics: list[str]
    """Base URLs of every process that serves /metrics."""
    cpu_samples: dict[str, Path] = field(default_factory=dict)
    """Process name → where its CPU-time sampler writes (bench/cpu_profile.py), for the processes run under one."""


def _spawn(
    args: list[str], env: Mapping[str, str], log: Path, *, sampled: Path | None = None
) -> subprocess.Popen[bytes]:
    """``chat`` with ``args``; under the CPU-time sampler (bench/cpu_profile.py) writing to ``sampled`` if given."""
    module = ["bench.cpu_profile", str(sampled)] if sampled is not None else ["chat_app"]
    with log.open("wb") as out:
        return subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", *module, *args],
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


async def _ready(base: str, process: subprocess.Popen[bytes], log: Path) -> None:
    async with httpx.AsyncClient(timeout=2) as probe, asyncio.timeout(120):
        while True:
            if process.poll() is not None:
                tail = await asyncio.to_thread(log.read_text, errors="replace")
                raise RuntimeError(f"{base} exited {process.returncode}:\n{tail[-3000:]}")
            with contextlib.suppress(httpx.TransportError):
                if (await probe.get(f"{base}/readyz")).status_code == 200:
                    return
            await asyncio.sleep(0.1)


async def _terminate(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        for _ in range(100):
            if process.poll() is not None:
                return
            await asyncio.sleep(0.1)
        process.kill()
    await asyncio.to_thread(process.wait)


@asynccontextmanager
async def all_in_one(
    tmp: Path, postgres_url: str, mongo_url: str, smtp: tuple[str, int, SmtpInbox], *, sampled: Path | None = None
) -> AsyncIterator[Deployment]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    suffix = secrets.token_hex(4)
    pg = make_url(postgres_url).set(drivername="postgresql+psycopg")
    host, smtp_port, inbox = smtp
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CHAT_")},
        "PYTHONUNBUFFERED": "1",
        "CHAT_DATA_DIR": str(tmp / "data"),
        "CHAT_BUS": "inprocess",
        "CHAT_AUTH_DATABASE_URL": pg.set(database=f"tp_auth_{suffix}").render_as_string(hide_password=False),
        "CHAT_ROOMS_DATABASE_URL": pg.set(database=f"tp_rooms_{suffix}").render_as_string(hide_password=False),
        "CHAT_MESSAGES_MONGO_URL": mongo_url,
        "CHAT_MESSAGES_MONGO_DATABASE": f"tp_{suffix}",
        "CHAT_AUTH_EMAIL_TRANSPORT": "smtp",
        "CHAT_AUTH_SMTP_HOST": host,
        "CHAT_AUTH_SMTP_PORT": str(smtp_port),
        "CHAT_AUTH_ISSUER": f"{base}/api/auth",
        **_product_env(),
    }
    log = tmp / "chat-up.log"
    args = ["up", "--external", "--host", "127.0.0.1", "--port", str(port)]
    process = _spawn(args, env, log, sampled=sampled)
    try:
        await _ready(base, process, log)
        yield Deployment(
            gateways=[base],
            pids={"chat up": process.pid},
            inbox=inbox,
            mongo_url=mongo_url,
            logs=[log],
            metrics=[base],
            cpu_samples={"chat up": sampled} if sampled is not None else {},
        )
    finally:
        await _terminate(process)


@asynccontextmanager
async def split_mode(
    tmp: Path,
    postgres_url: str,
    kafka: str,
    mongo_url: str,
    smtp: tuple[str, int, SmtpInbox],
    *,
    sampled: Path | None = None,
) -> AsyncIterator[Deployment]:
    """The split deployment; with ``sampled`` (a directory), each service under the CPU-time sampler."""
    from tests.integration.split import run_split

    database = f"tp_{secrets.token_hex(4)}"
    async with run_split(
        tmp, postgres_url, kafka, mongo_url, database, smtp, extra_env=_product_env(), cpu_samples=sampled
    ) as split:
        yield Deployment(
            gateways=split.gateways,
            pids={name: child.process.pid for name, child in split.children.items()},
            inbox=split.inbox,
            mongo_url=mongo_url,
            logs=[child.log_path for child in split.children.values()],
            metrics=[child.base for child in split.children.values()],
            cpu_samples={
                name: child.cpu_samples for name, child in split.children.items() if child.cpu_samples is not None
            },
        )


# --- people and rooms ------------------------------------------------------------------------------------------


async def _gather_limited(jobs: list[Any], limit: int) -> list[Any]:
    gate = asyncio.Semaphore(limit)

    async def run(job: Any) -> Any:
        async with gate:
            return await job

    return list(await asyncio.gather(*(run(job) for job in jobs)))


async def sign_up(deployment: Deployment, count: int) -> list[str]:
    """``count`` users signed up, verified by email and signed in; their access tokens."""
    tag = secrets.token_hex(2)

    async def one(n: int) -> str:
        name = f"t{tag}{n}"
        email = f"{name}@example.com"
        # A source address per user: auth limits sign-ups and sign-ins per client address.
        transport = httpx.AsyncHTTPTransport(local_address=f"127.1.{n // 250}.{1 + n % 250}")
        async with httpx.AsyncClient(base_url=deployment.gateways[0], transport=transport, timeout=60) as http:
            body = {"email": email, "username": name, "password": PASSWORD}
            registered = await http.post("/api/auth/register", json=body)
            if registered.status_code != 202:
                raise RuntimeError(f"register {name}: {registered.status_code} {registered.text}")
            code = await deployment.inbox.code_for(email, timeout=60)
            verified = await http.post("/api/auth/email/verify", json={"email": email, "code": code})
            if verified.status_code != 200:
                raise RuntimeError(f"verify {name}: {verified.status_code} {verified.text}")
            tokens = await http.post("/api/auth/login", json={"identifier": name, "password": PASSWORD})
            if tokens.status_code != 200:
                raise RuntimeError(f"login {name}: {tokens.status_code} {tokens.text}")
            return str(tokens.json()["access_token"])

    return await _gather_limited([one(n) for n in range(count)], 4)


async def seats_for(deployment: Deployment, tokens: list[str], shape: str) -> list[dict[str, str]]:
    """The shape's rooms (public, made and joined over HTTP) and one seat per (member, room)."""
    rooms, size = SHAPES[shape]
    members = tokens[:size]
    gateways = deployment.gateways
    tag = secrets.token_hex(2)

    async def room(k: int) -> list[dict[str, str]]:
        async with httpx.AsyncClient(base_url=gateways[k % len(gateways)], timeout=60) as http:
            created = await http.post(
                "/api/rooms",
                json={"kind": "public", "name": f"tp {tag} {shape} {k}"},
                headers={"Authorization": f"Bearer {members[0]}"},
            )
            if created.status_code != 201:
                raise RuntimeError(f"create room: {created.status_code} {created.text}")
            room_id = str(created.json()["id"])
            for token in members[1:]:
                joined = await http.post(f"/api/rooms/{room_id}/join", headers={"Authorization": f"Bearer {token}"})
                if joined.status_code != 200:
                    raise RuntimeError(f"join: {joined.status_code} {joined.text}")
        return [
            {"url": gateways[(m + k) % len(gateways)], "token": token, "room": room_id}
            for m, token in enumerate(members)
        ]

    made = await _gather_limited([room(k) for k in range(rooms)], 4)
    return [seat for seats in made for seat in seats]


# --- measuring -------------------------------------------------------------------------------------------------


async def store_commands(mongo_url: str) -> dict[str, int]:
    """Commands the Mongo-wire server has answered, by kind (its opcounters; this read itself counts one
    ``command``)."""
    client: AsyncMongoClient[dict[str, Any]]
    async with AsyncMongoClient(mongo_url) as client:
        counters = (await client.admin.command("serverStatus"))["opcounters"]
    return {str(k): int(v) for k, v in counters.items()}


def commands_between(before: Mapping[str, int], after: Mapping[str, int]) -> dict[str, int]:
    """The commands answered between two readings, by kind, less the second reading's own."""
    delta = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    delta["command"] = delta.get("command", 0) - 1
    return {k: v for k, v in delta.items() if v}


async def bus_records(deployment: Deployment) -> int | None:
    """Records published on the bus by every process (chat_bus_published_total), when /metrics says so."""
    total = 0.0
    async with httpx.AsyncClient(timeout=10) as http:
        for base in deployment.metrics:
            try:
                text = (await http.get(f"{base}/metrics")).text
            except httpx.HTTPError:
                return None
            for line in text.splitlines():
                if line.startswith("chat_bus_published_total{"):
                    total += float(line.rsplit(" ", 1)[1])
    return int(total)


def _within(row: Mapping[str, Any]) -> bool:
    p99 = row["receive"]["p99"]
    return bool(
        row["acked"] == row["sent"]
        and row["lost"] == 0
        and row["duplicates"] == 0
        and row["out_of_order"] == 0
        and p99 is not None
        and p99 <= P99_LIMIT_MS
    )


async def run_idle(
    deployment: Deployment,
    load: Load,
    meter: Meter,
    tokens: list[str],
    sizes: Sizes,
    *,
    infra: Mapping[str, int],
    broker_rounds: int = 0,
) -> dict[str, Any]:
    """The idle latency: two people in a room of their own, one socket each, one message at a time; in split mode
    after the broker's warm-up (``warm_broker``), in that room."""
    opened = await load.call({"op": "connect", "seats": await seats_for(deployment, tokens, "1x2")})
    if opened["failed"]:
        raise RuntimeError(f"{opened['failed']} sockets failed to connect: {opened['errors']}")
    warmed = await warm_broker_if_asked(load, meter, infra, broker_rounds, "idle")
    print(f"  idle: quiet after {await meter.settle(limit=sizes.settle)} s", flush=True)
    idle: dict[str, Any] = await load.call({"op": "idle", "count": sizes.idle, "id": f"idle{secrets.token_hex(2)}"})
    idle["broker_warm_up"] = [asdict(r) for r in warmed]
    print(
        f"  idle, 2 clients, one message at a time: send→receive p50 {idle['receive']['p50']} ms, "
        f"p99 {idle['receive']['p99']} ms; ack p50 {idle['ack']['p50']} ms; send→stamped (gateway, bus, "
        f"checks) p50 {idle['stamped']['p50']} ms, p99 {idle['stamped']['p99']} ms",
        flush=True,
    )
    return idle


WARM_UP_RATE = 100
"""Messages a second of the unmeasured first step (``warm_up``)."""


async def warm_up(load: Load, sockets: int) -> None:
    """One message from every socket before anything is measured, at a low rate: the room owners learn each
    sender's membership once (a store read per room and sender), which a room that is in use has long done, and
    which would otherwise be counted in the first step's store commands and CPU as if it were per message."""
    await load.call(
        {
            "op": "step",
            "id": f"w{secrets.token_hex(3)}",
            "rate": WARM_UP_RATE,
            "seconds": sockets / WARM_UP_RATE,
            "quiet_ms": 1000,
            "limit_ms": 60000,
        }
    )


async def run_shape(
    deployment: Deployment,
    load: Load,
    meter: Meter,
    tokens: list[str],
    shape: str,
    sizes: Sizes,
    *,
    mode: str,
    infra: Mapping[str, int],
    broker_rounds: int = 0,
) -> dict[str, Any]:
    seats = await seats_for(deployment, tokens, shape)
    opened = await load.call({"op": "connect", "seats": seats, "concurrency": 20})
    if opened["failed"]:
        raise RuntimeError(f"{opened['failed']} sockets failed to connect: {opened['errors']}")
    print(f"  {shape}: {opened['connected']} sockets connected and subscribed in {opened['seconds']:.1f} s", flush=True)
    await warm_up(load, opened["connected"])
    warmed = await warm_broker_if_asked(load, meter, infra, broker_rounds, shape)
    settled = await meter.settle(limit=sizes.settle)
    print(f"  {shape}: quiet after {settled} s", flush=True)
    result: dict[str, Any] = {
        "shape": shape,
        "sockets": opened["connected"],
        "broker_warm_up": [asdict(r) for r in warmed],
        "settle_seconds": settled,
        "steps": [],
    }
    for rate in sizes.rates(shape):
        step_settled = await meter.settle(share=0.1, calm=1, limit=30)
        commands_before = await store_commands(deployment.mongo_url)
        records_before = await bus_records(deployment)
        cpu_before = meter.read()
        profiling = rate == sizes.profile_rate
        label = f"{mode}-{shape}-{rate}"
        # every Python process of the run: the product's and the Mongo-wire server
        profiled = {**deployment.pids, **{k: v for k, v in infra.items() if k == "mongo server"}}
        sampled = deployment.cpu_samples
        recordings = (
            await step_profile.start(
                profiled, sampled, results=sizes.results, label=label, seconds=sizes.seconds, wall=sizes.wall_profile
            )
            if profiling
            else []
        )
        began = time.perf_counter()
        row = await load.call(
            {
                "op": "step",
                "id": f"s{secrets.token_hex(3)}",
                "rate": rate,
                "seconds": sizes.seconds,
                "quiet_ms": 3000,
                "limit_ms": 60000,
            }
        )
        elapsed = time.perf_counter() - began
        cpu_after = meter.read()
        if profiling:
            title = f"{mode} {shape} at {rate} msg/s"
            await step_profile.finish(recordings, profiled, sampled, results=sizes.results, label=label, title=title)
        by_kind = commands_between(commands_before, await store_commands(deployment.mongo_url))
        commands = sum(by_kind.values())
        records_after = await bus_records(deployment)
        used = spent(cpu_before, cpu_after)
        acked = max(1, row["acked"])
        row["settle_seconds"] = step_settled
        row["elapsed_seconds"] = round(elapsed, 2)
        row["cpu_ms_per_message"] = {name: round(s / acked * 1000, 3) for name, s in used.items()}
        row["cpu_ms_per_message_all"] = round(
            sum(v for k, v in row["cpu_ms_per_message"].items() if k != "load generator") * 1.0, 3
        )
        row["cores_used"] = {name: round(s / elapsed, 2) for name, s in used.items()}
        row["machine_busy_percent"] = machine_share(cpu_before, cpu_after)
        row["store_commands_per_message"] = round(commands / acked, 3)
        row["store_commands_by_kind"] = by_kind
        if records_before is not None and records_after is not None:
            row["bus_records_per_message"] = round((records_after - records_before) / acked, 3)
        row["passed"] = _within(row)
        result["steps"].append(row)
        stamped = row.get("stamped") or {}
        print(
            f"  {shape} {rate:>5}/s: acked {row['acked']}/{row['sent']} {row['refused'] or ''} "
            f"delivered {row['delivered']}/{row['expected']} dup {row['duplicates']} ooo {row['out_of_order']} | "
            f"p50 {row['receive']['p50']} p99 {row['receive']['p99']} p99.9 {row['receive']['p999']} ms | "
            f"ack p50 {row['ack']['p50']} p99 {row['ack']['p99']} | "
            f"stamped p50 {stamped.get('p50')} p99 {stamped.get('p99')} | cpu/msg {row['cpu_ms_per_message_all']} ms "
            f"{row['cpu_ms_per_message']} | store cmds/msg {row['store_commands_per_message']} {by_kind} | "
            f"machine {row['machine_busy_percent']}% | quiet after {step_settled} s",
            flush=True,
        )
        if not row["passed"]:
            break
    passed = [r["rate"] for r in result["steps"] if r["passed"]]
    result["highest_rate"] = max(passed) if passed else None
    return result


async def run_mode(mode: str, sizes: Sizes) -> dict[str, Any]:
    # The product's processes run in sessions of their own (so a terminal's Ctrl-C reaches them only through
    # here): SIGTERM unwinds the run as Ctrl-C does, and every process and server it started is stopped.
    running = asyncio.current_task()
    if running is not None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, running.cancel)
    with tempfile.TemporaryDirectory(prefix="chat-bench-tp-") as tmpdir:
        tmp = Path(tmpdir)
        own = InfraConfig.from_env(
            {
                "CHAT_INFRA_DIR": str(tmp / "infra"),
                "CHAT_INFRA_PG_PORT": str(free_port()),
                "CHAT_INFRA_MONGO_PORT": str(free_port()),
            }
        )
        urls = await asyncio.to_thread(ensure_started, "postgres,mongo", config=own)
        inbox = SmtpInbox()
        smtp_port = free_port()
        controller = Controller(inbox, hostname="127.0.0.1", port=smtp_port)
        controller.start()
        smtp = ("127.0.0.1", smtp_port, inbox)
        infra_pids = {
            f"{server.service} server": server.pid
            for server in status(config=own)
            if server.running and server.pid is not None
        }
        try:
            if not (urls.postgres_url and urls.mongo_url):
                raise RuntimeError(f"the stores did not start: {urls}")
            shared_pids: dict[str, int] = {}
            if mode == "all":
                sampled = tmp / "cpu-samples.txt" if sizes.profile_rate is not None else None
                context = all_in_one(tmp, urls.postgres_url, urls.mongo_url, smtp, sampled=sampled)
            else:
                shared = await asyncio.to_thread(ensure_started, "kafka")
                if not shared.kafka_bootstrap:
                    raise RuntimeError("Kafka did not start")
                for server in status():
                    if server.service == "kafka" and server.running and server.pid is not None:
                        shared_pids[BROKER] = server.pid
                infra_pids.update(shared_pids)
                sampled = tmp / "cpu-samples" if sizes.profile_rate is not None else None
                context = split_mode(
                    tmp, urls.postgres_url, shared.kafka_bootstrap, urls.mongo_url, smtp, sampled=sampled
                )
            async with context as deployment:
                resting = await _resting(shared_pids)
                load = await Load.start()
                try:
                    meter = Meter(
                        lambda: {**deployment.pids, **infra_pids, "load generator": load.pid}, resting=resting
                    )
                    began = time.perf_counter()
                    tokens = await sign_up(deployment, sizes.users)
                    print(f"  {len(tokens)} users signed up in {time.perf_counter() - began:.1f} s", flush=True)
                    # the broker is warmed once, before the first measurement: the idle latency or else the
                    # first shape
                    idle = (
                        await run_idle(
                            deployment,
                            load,
                            meter,
                            tokens,
                            sizes,
                            infra=infra_pids,
                            broker_rounds=sizes.broker_warm_rounds,
                        )
                        if sizes.idle
                        else None
                    )
                    shapes = [
                        await run_shape(
                            deployment,
                            load,
                            meter,
                            tokens,
                            s,
                            sizes,
                            mode=mode,
                            infra=infra_pids,
                            broker_rounds=sizes.broker_warm_rounds if n == 0 and not sizes.idle else 0,
                        )
                        for n, s in enumerate(sizes.shapes)
                    ]
                finally:
                    await load.close()
            return {"mode": mode, "resting_shares": resting, "idle": idle, "shapes": shapes}
        finally:
            controller.stop()
            await asyncio.to_thread(stop, "postgres,mongo", config=own)


async def _resting(shared: Mapping[str, int]) -> dict[str, float]:
    """Each shared server's share of a core with the deployment up and idle, before anyone signed up; says which
    settle floors it raised. A shared Kafka broker serving the idle product's polls and heartbeats, and other
    work's topics, stays above the 5 % that counts as quiet for the product's own processes."""
    if not shared:
        return {}
    resting = await at_rest(Meter(lambda: shared).read, RESTING_SECONDS)
    floors = raised_floors(resting)
    for name, rest in resting.items():
        verdict = f"it counts as quiet under {floors[name]:.1%}" if name in floors else "no floor raised"
        print(
            f"  settle: {name} (shared, not started by the bench) used {rest:.1%} of a core with the deployment "
            f"idle (median of {RESTING_SECONDS} s); {verdict} (every other process: {QUIET_SHARE:.0%})",
            flush=True,
        )
    return resting


def table(report: Mapping[str, Any]) -> str:
    lines = []
    for mode in report["modes"]:
        idle = mode.get("idle")
        if idle:
            lines += [
                f"### {mode['mode']}, idle (2 clients in a room of their own)",
                "",
                f"{idle['count']} messages one at a time: send → receive p50 {idle['receive']['p50']} ms, "
                f"p99 {idle['receive']['p99']} ms; send → ack p50 {idle['ack']['p50']} ms, "
                f"p99 {idle['ack']['p99']} ms; send → stamped p50 {idle['stamped']['p50']} ms.",
                "",
            ]
        for shape in mode["shapes"]:
            lines += [
                f"### {mode['mode']}, {shape['shape']} ({shape['sockets']} sockets)",
                "",
                "| msg/s | acked | delivered | lost | dup | p50 ms | p99 ms | p99.9 ms | ack p50 | ack p99 "
                "| stamped p50 | stamped p99 | CPU ms/msg (all but load) | store cmds/msg | bus records/msg "
                "| machine busy |",
                "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
                "| ---: | ---: |",
            ]
            for r in shape["steps"]:
                stamped = r.get("stamped") or {}
                lines.append(
                    f"| {r['rate']} | {r['acked']}/{r['sent']} | {r['delivered']}/{r['expected']} | {r['lost']} "
                    f"| {r['duplicates']} | {r['receive']['p50']} | {r['receive']['p99']} | {r['receive']['p999']} "
                    f"| {r['ack']['p50']} | {r['ack']['p99']} | {stamped.get('p50', '')} | {stamped.get('p99', '')} "
                    f"| {r['cpu_ms_per_message_all']} "
                    f"| {r['store_commands_per_message']} | {r.get('bus_records_per_message', '')} "
                    f"| {r['machine_busy_percent']}% |"
                )
            names = sorted({n for r in shape["steps"] for n in r["cpu_ms_per_message"]})
            lines += ["", "CPU ms per message by process:", ""]
            lines.append("| msg/s | " + " | ".join(names) + " |")
            lines.append("| ---: | " + " | ".join("---:" for _ in names) + " |")
            for r in shape["steps"]:
                lines.append(
                    f"| {r['rate']} | " + " | ".join(str(r["cpu_ms_per_message"].get(n, "")) for n in names) + " |"
                )
            lines += ["", f"Highest rate passing: {shape['highest_rate']} msg/s.", ""]
    return "\n".join(lines)


def main() -> None:
    sizes = Sizes()
    report: dict[str, Any] = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "seconds_per_step": sizes.seconds,
        "modes": [],
    }
    for mode in sizes.modes:
        print(f"throughput, {mode}: shapes {', '.join(sizes.shapes)}", flush=True)
        try:
            report["modes"].append(asyncio.run(run_mode(mode, sizes)))
        except asyncio.CancelledError:
            raise SystemExit("throughput: stopped (SIGTERM); every process it started is stopped") from None
    sizes.results.mkdir(parents=True, exist_ok=True)
    (sizes.results / "throughput.json").write_text(json.dumps(report, indent=2) + "\n")
    text = table(report)
    (sizes.results / "throughput.md").write_text(text + "\n")
    print(text)
    summary = [f"{m['mode']} {s['shape']}: {s['highest_rate']} msg/s" for m in report["modes"] for s in m["shapes"]]
    print("highest rates: " + "; ".join(summary))


if __name__ == "__main__":
    main()
