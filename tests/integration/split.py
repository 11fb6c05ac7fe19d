"""The product in split mode for end-to-end tests: auth, rooms, messages and two gateways (A and B), each its own
OS process (``python -m chat_app serve --target …``, i.e. ``chat serve``), on real Kafka, PostgreSQL, the
Mongo-wire server and SMTP. Clients only ever talk to the gateways, which proxy ``/api/<service>/…``.

Each process logs to ``<tmp_path>/<name>.log``. The tail of every log is printed at teardown, so pytest shows it
with any failure (captured output of a passing test is not shown); a process that dies while starting fails the
fixture with its log, and one that dies during the test fails it at teardown. Every child gets SIGTERM, then
SIGKILL after a grace period, even when the test fails.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
import psycopg
import pytest
from psycopg import sql
from sqlalchemy import make_url

from chat_app.compose import create_topics
from chat_localinfra.smtp import SmtpInbox
from chat_runtime.settings import ChatSettings

from .product import Product, free_port

START_TIMEOUT_SECONDS = 90.0
STOP_GRACE_SECONDS = 5.0
GATEWAYS = ("gateway-a", "gateway-b")


@dataclass
class Child:
    """One service process."""

    name: str
    target: str
    port: int
    log_path: Path
    process: subprocess.Popen[bytes]
    log_file: IO[bytes]
    env: dict[str, str] = field(default_factory=dict, repr=False)
    tmp_path: Path | None = None
    cpu_samples: Path | None = None
    """Where the process's CPU-time sampler writes (bench/cpu_profile.py), when it runs under one."""
    stopped_on_purpose: bool = False
    killed: bool = False
    listening_after: float | None = None
    """Seconds from spawn to the launcher's "listening" line: interpreter, imports and bootstrap."""
    ready_after: float | None = None
    """Seconds from spawn to the first 200 from /readyz: the above plus the lifespan (migrations, Kafka joins)."""

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def running(self) -> bool:
        return self.process.poll() is None

    def tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    async def stop(self, grace: float = STOP_GRACE_SECONDS) -> int:
        """SIGTERM, then SIGKILL if it is still running after ``grace`` seconds; returns the exit code."""
        self.stopped_on_purpose = True
        if self.running():
            self.process.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + grace
            while self.running() and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            if self.running():
                self.killed = True
                self.process.kill()
        code = await asyncio.to_thread(self.process.wait)
        self.log_file.close()
        return code


@dataclass
class Split:
    """The running split deployment, seen from outside: only the gateways are meant for clients."""

    children: dict[str, Child]
    inbox: SmtpInbox
    startup: dict[str, float]
    """Seconds spent on each start-up step and in total."""
    _http: list[httpx.AsyncClient] = field(default_factory=list)

    @property
    def gateways(self) -> list[str]:
        """Base URLs of gateway A and gateway B."""
        return [self.children[name].base for name in GATEWAYS]

    def http_for(self, i: int) -> httpx.AsyncClient:
        """An HTTP client on gateway ``i`` (0 = A, 1 = B)."""
        return self._http[i]

    def at(self, i: int) -> Product:
        """Gateway ``i`` as a ``Product`` (for ``product.connect`` and sign-up)."""
        return Product(base=self.gateways[i], http=self._http[i], inbox=self.inbox)

    async def sign_up(self, name: str) -> dict[str, Any]:
        """Register, verify by the emailed code and log in, all through gateway A's proxy; returns the tokens."""
        return await self.at(0).sign_up(name)

    async def stop(self, name: str) -> int:
        """Stop one process (``"rooms"``, ``"gateway-b"``…) as an operator would; returns its exit code."""
        return await self.children[name].stop()

    async def restart(self, name: str) -> float:
        """Stop one process and start it again on the same port (a gateway with a new instance id, as a new
        process gets by default); returns the seconds until it was ready again."""
        old = self.children[name]
        await old.stop()
        env = dict(old.env)
        if name in GATEWAYS:
            env["CHAT_GATEWAY_INSTANCE_ID"] = f"{name}-{uuid.uuid4().hex[:8]}"
        assert old.tmp_path is not None
        old.log_path.rename(old.log_path.with_suffix(f".{int(time.time() * 1000)}.log"))
        began = time.perf_counter()
        child = _spawn(name, old.target, old.port, env, old.tmp_path, cpu_samples=old.cpu_samples)
        self.children[name] = child
        async with httpx.AsyncClient(timeout=2) as probe, asyncio.timeout(START_TIMEOUT_SECONDS):
            await _ready(child, probe, began)
        return time.perf_counter() - began

    def logs(self, lines: int = 40) -> str:
        """The tail of every process's log."""
        return _logs(self.children.values(), lines)


def _logs(children: Iterable[Child], lines: int = 40) -> str:
    parts = []
    for child in children:
        code = child.process.poll()
        state = "running" if code is None else f"exited {code}" + (" (killed)" if child.killed else "")
        parts.append(f"----- {child.name} ({child.base}, {state}) {child.log_path}\n{child.tail(lines)}")
    return "\n".join(parts)


def _distinct_ports(count: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


def _spawn(
    name: str, target: str, port: int, env: dict[str, str], tmp_path: Path, *, cpu_samples: Path | None = None
) -> Child:
    log_path = tmp_path / f"{name}.log"
    log_file = log_path.open("wb")
    module = ["bench.cpu_profile", str(cpu_samples)] if cpu_samples is not None else ["chat_app"]
    command = [sys.executable, "-m", *module, "serve", "--target", target, "--host", "127.0.0.1"]
    process = subprocess.Popen(
        [*command, "--port", str(port)],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # a Ctrl-C in the terminal reaches pytest, which then stops the children itself
    )
    return Child(
        name=name,
        target=target,
        port=port,
        log_path=log_path,
        process=process,
        log_file=log_file,
        env=env,
        tmp_path=tmp_path,
        cpu_samples=cpu_samples,
    )


class ChildDied(Exception):
    pass


async def _ready(child: Child, probe: httpx.AsyncClient, started: float) -> None:
    while True:
        if not child.running():
            raise ChildDied(f"{child.name} exited with code {child.process.returncode} while starting")
        if child.listening_after is None and b"listening on" in child.log_path.read_bytes()[:4096]:
            child.listening_after = time.perf_counter() - started
        try:
            if (await probe.get(f"{child.base}/readyz")).status_code == 200:
                child.ready_after = time.perf_counter() - started
                return
        except httpx.TransportError:
            pass  # not listening yet
        await asyncio.sleep(0.1)


def _drop_databases(postgres_url: str, names: list[str]) -> None:
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        for name in names:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


async def _delete_topics(bootstrap: str, prefix: str) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        mine = [topic for topic in await admin.list_topics() if topic.startswith(prefix)]
        if mine:
            await admin.delete_topics(mine)
    finally:
        await admin.close()


@pytest.fixture
async def split(
    tmp_path: Path,
    postgres_url: str,
    kafka_bootstrap: str,
    mongo_url: str,
    mongo_database_name: str,
    smtp_server: tuple[str, int, SmtpInbox],
) -> AsyncIterator[Split]:
    async with run_split(
        tmp_path, postgres_url, kafka_bootstrap, mongo_url, mongo_database_name, smtp_server
    ) as running:
        yield running


@asynccontextmanager
async def run_split(
    tmp_path: Path,
    postgres_url: str,
    kafka_bootstrap: str,
    mongo_url: str,
    mongo_database_name: str,
    smtp_server: tuple[str, int, SmtpInbox],
    extra_env: Mapping[str, str] | None = None,
    cpu_samples: Path | None = None,
) -> AsyncIterator[Split]:
    """The split deployment on the given servers (the ``split`` fixture, or a test's own Kafka broker); ``extra_env``
    adds to or overrides the services' configuration (the pipeline benchmark's limits). With ``cpu_samples`` (a
    directory), each service runs under the CPU-time sampler of bench/cpu_profile.py, which writes
    ``<name>.txt`` there when told to (the throughput benchmark's profiles)."""
    suffix = secrets.token_hex(4)
    names = ["auth", "rooms", "messages", *GATEWAYS]
    ports = dict(zip(names, _distinct_ports(len(names)), strict=True))
    base = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    public = base["gateway-a"]  # the clients' origin; the issuer names it
    issuer = f"{public}/api/auth"
    jwks = f"{base['auth']}/api/auth/.well-known/jwks.json"  # verifiers read keys from auth directly
    pg = make_url(postgres_url).set(drivername="postgresql+psycopg")
    databases = {"auth": f"split_auth_{suffix}", "rooms": f"split_rooms_{suffix}"}
    smtp_host, smtp_port, inbox = smtp_server
    topic_prefix = f"split-{suffix}."
    inherited = {name: value for name, value in os.environ.items() if not name.startswith("CHAT_")}
    env = {
        **inherited,
        "PYTHONUNBUFFERED": "1",
        "CHAT_MODE": "dev",
        "CHAT_BUS": "kafka",
        "CHAT_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "CHAT_KAFKA_TOPIC_PREFIX": topic_prefix,
        # Heartbeats every 0.1 s (a sixtieth of the session, floored at 0.1 s: compose.kafka_config) instead of
        # 1/6 s: the messages service's consumers share one group, and each one that joins at start-up costs the
        # others a rebalance they only notice at their next heartbeat.
        "CHAT_KAFKA_SESSION_TIMEOUT_MS": "4000",
        "CHAT_LOG_FORMAT": "json",
        "CHAT_LOG_LEVEL": "info",
        # auth
        "CHAT_AUTH_DATABASE_URL": pg.set(database=databases["auth"]).render_as_string(hide_password=False),
        "CHAT_AUTH_ISSUER": issuer,
        "CHAT_AUTH_EMAIL_TRANSPORT": "smtp",
        "CHAT_AUTH_SMTP_HOST": smtp_host,
        "CHAT_AUTH_SMTP_PORT": str(smtp_port),
        "CHAT_AUTH_TRUST_FORWARDED_FOR": "true",  # behind the gateway, which sets X-Forwarded-For itself
        # rooms
        "CHAT_ROOMS_DATABASE_URL": pg.set(database=databases["rooms"]).render_as_string(hide_password=False),
        "CHAT_ROOMS_AUTH_ISSUER": issuer,
        "CHAT_ROOMS_AUTH_JWKS_URL": jwks,
        # messages
        "CHAT_MESSAGES_MONGO_URL": mongo_url,
        "CHAT_MESSAGES_MONGO_DATABASE": mongo_database_name,
        "CHAT_MESSAGES_AUTH_ISSUER": issuer,
        "CHAT_MESSAGES_AUTH_JWKS_URL": jwks,
        "CHAT_MESSAGES_SEND_BURST": "1000",
        "CHAT_MESSAGES_SEND_PER_SECOND": "100",
        # gateways
        "CHAT_GATEWAY_AUTH_ISSUER": issuer,
        "CHAT_GATEWAY_AUTH_JWKS_URL": jwks,
        "CHAT_GATEWAY_AUTH_URL": base["auth"],
        "CHAT_GATEWAY_ROOMS_URL": base["rooms"],
        "CHAT_GATEWAY_MESSAGES_URL": base["messages"],
        "CHAT_GATEWAY_PROXY_TIMEOUT_SECONDS": "10",
        "CHAT_GATEWAY_EVENTS_BURST": "1000",
        "CHAT_GATEWAY_RECOVERY_LIMIT": "50",
        "CHAT_GATEWAY_TYPING_TTL_SECONDS": "1.5",
        "CHAT_GATEWAY_TYPING_THROTTLE_SECONDS": "0.5",
        "CHAT_GATEWAY_PRESENCE_GRACE_SECONDS": "1.5",
        "CHAT_GATEWAY_HEARTBEAT_SECONDS": "1",
        **(extra_env or {}),
    }
    instance_ids = {name: f"{name}-{suffix}" for name in GATEWAYS}
    children: dict[str, Child] = {}
    clients: list[httpx.AsyncClient] = []
    startup: dict[str, float] = {}
    crashed: list[str] = []
    began = time.perf_counter()
    try:
        await create_topics(ChatSettings(bus="kafka", kafka_bootstrap=kafka_bootstrap, kafka_topic_prefix=topic_prefix))
        startup["topics"] = time.perf_counter() - began
        if cpu_samples is not None:
            await asyncio.to_thread(cpu_samples.mkdir, parents=True, exist_ok=True)
        for name in names:
            # A lasting name per process, as a pod's name: a restarted service takes its place in its consumer
            # groups at once (static membership, docs/reliability.md).
            own = {**env, "CHAT_DATA_DIR": str(tmp_path / name), "CHAT_KAFKA_GROUP_INSTANCE_ID": f"{name}-{suffix}"}
            if name in GATEWAYS:
                own["CHAT_GATEWAY_INSTANCE_ID"] = instance_ids[name]
            target = "gateway" if name in GATEWAYS else name
            samples = cpu_samples / f"{name}.txt" if cpu_samples is not None else None
            children[name] = _spawn(name, target, ports[name], own, tmp_path, cpu_samples=samples)
        spawned = time.perf_counter()
        async with httpx.AsyncClient(timeout=2) as probe:
            try:
                async with asyncio.timeout(START_TIMEOUT_SECONDS):
                    # Ready means started: each Kafka consumer has had its first partition assignment by then
                    # (a gateway's fan-out groups start at the log's end, so earlier events would pass it by).
                    await asyncio.gather(*(_ready(child, probe, spawned) for child in children.values()))
                    startup["ready"] = time.perf_counter() - spawned
            except (ChildDied, TimeoutError) as exc:
                pytest.fail(f"split mode did not start: {exc!r}\n{_logs(children.values(), 80)}", pytrace=False)
        for child in children.values():
            startup[f"{child.name} listening"] = child.listening_after or 0.0
            startup[f"{child.name} ready"] = child.ready_after or 0.0
        startup["total"] = time.perf_counter() - began
        clients = [httpx.AsyncClient(base_url=base[name], timeout=20) for name in GATEWAYS]
        print("split started in " + ", ".join(f"{step} {seconds:.2f}s" for step, seconds in startup.items()))
        yield Split(children=children, inbox=inbox, startup=startup, _http=clients)
    finally:
        crashed = [c.name for c in children.values() if not c.running() and not c.stopped_on_purpose]
        await asyncio.gather(*(child.stop() for child in children.values()), return_exceptions=True)
        for client in clients:
            await client.aclose()
        print(_logs(children.values()))
        await asyncio.to_thread(_drop_databases, postgres_url, list(databases.values()))
        await _delete_topics(kafka_bootstrap, topic_prefix)
    if crashed:
        pytest.fail(f"{', '.join(crashed)} exited during the test:\n{_logs(children.values(), 80)}", pytrace=False)
