"""The whole product in one process (the all-in-one composition served by uvicorn) on real PostgreSQL, the
Mongo-wire server and real SMTP, for end-to-end tests: the ``product`` fixture, sign-up through email codes, and
python-socketio clients that record every event they receive."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import socketio
import uvicorn
from sqlalchemy import make_url

from chat_app.compose import build_asgi
from chat_localinfra.smtp import SmtpInbox
from chat_runtime.serving import server_config
from chat_runtime.settings import ChatSettings, load_settings

PASSWORD = "correct horse battery staple"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Product:
    base: str
    http: httpx.AsyncClient
    inbox: SmtpInbox

    async def sign_up(self, name: str) -> dict[str, Any]:
        email = f"{name}@example.com"
        body = {"email": email, "username": name, "password": PASSWORD}
        assert (await self.http.post("/api/auth/register", json=body)).status_code == 202
        code = await self.inbox.code_for(email, timeout=10)
        assert (await self.http.post("/api/auth/email/verify", json={"email": email, "code": code})).status_code == 200
        tokens = (await self.http.post("/api/auth/login", json={"identifier": name, "password": PASSWORD})).json()
        assert "access_token" in tokens, tokens
        return dict(tokens)


@dataclass
class Client:
    sio: socketio.AsyncClient
    received: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def messages(self, room_id: str) -> list[int]:
        return [p["seq"] for e, p in self.received if e == "message:new" and p["room_id"] == room_id]

    def presence(self, user_id: str) -> list[str]:
        """The statuses of ``user_id`` received, from ``presence`` and ``presence:changes`` alike."""
        found: list[str] = []
        for event, data in self.received:
            changes = [data] if event == "presence" else data["changes"] if event == "presence:changes" else []
            found.extend(c["status"] for c in changes if c["user_id"] == user_id)
        return found


async def connect(product: Product, token: str) -> Client:
    client = Client(socketio.AsyncClient(reconnection=False))

    async def catch_all(event: str, data: Any = None) -> None:
        client.received.append((event, data))

    client.sio.on("*", catch_all)
    await client.sio.connect(product.base, auth={"token": token}, transports=["websocket"], wait_timeout=10)
    return client


async def until(condition: Any, timeout: float = 15) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.05)


def product_env(
    *,
    base: str,
    data_dir: Path,
    postgres_url: str,
    databases: tuple[str, str],
    mongo_url: str,
    smtp_server: tuple[str, int, SmtpInbox],
    **extra: str,
) -> dict[str, str]:
    """The environment of the whole product in one process on these servers, served at ``base``: the auth and
    rooms databases named by ``databases``, real SMTP, generous rate limits; ``extra`` adds or overrides."""
    pg = make_url(postgres_url).set(drivername="postgresql+psycopg")
    host, smtp_port, _inbox = smtp_server
    auth_db, rooms_db = databases
    return {
        "CHAT_DATA_DIR": str(data_dir),
        "CHAT_BUS": "inprocess",
        "CHAT_LOG_LEVEL": "warning",
        "CHAT_AUTH_DATABASE_URL": pg.set(database=auth_db).render_as_string(hide_password=False),
        "CHAT_ROOMS_DATABASE_URL": pg.set(database=rooms_db).render_as_string(hide_password=False),
        "CHAT_MESSAGES_MONGO_URL": mongo_url,
        "CHAT_AUTH_EMAIL_TRANSPORT": "smtp",
        "CHAT_AUTH_SMTP_HOST": host,
        "CHAT_AUTH_SMTP_PORT": str(smtp_port),
        "CHAT_AUTH_ISSUER": f"{base}/api/auth",
        "CHAT_GATEWAY_MESSAGES_URL": base,
        "CHAT_GATEWAY_ROOMS_URL": base,
        "CHAT_GATEWAY_EVENTS_BURST": "1000",
        "CHAT_MESSAGES_SEND_BURST": "1000",
        **extra,
    }


@pytest.fixture
async def product(
    tmp_path: Path,
    postgres_url: str,
    mongo_url: str,
    mongo_database_name: str,
    smtp_server: tuple[str, int, SmtpInbox],
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Product]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    suffix = uuid.uuid4().hex[:8]
    inbox = smtp_server[2]
    env = product_env(
        base=base,
        data_dir=tmp_path,
        postgres_url=postgres_url,
        databases=(f"e2e_auth_{suffix}", f"e2e_rooms_{suffix}"),
        mongo_url=mongo_url,
        smtp_server=smtp_server,
        CHAT_MESSAGES_MONGO_DATABASE=mongo_database_name,
        CHAT_GATEWAY_TYPING_TTL_SECONDS="1.5",
        CHAT_GATEWAY_TYPING_THROTTLE_SECONDS="0.5",
        CHAT_GATEWAY_PRESENCE_GRACE_SECONDS="1.5",
        CHAT_GATEWAY_HEARTBEAT_SECONDS="0.5",
        CHAT_GATEWAY_RECOVERY_LIMIT="50",
        CHAT_MESSAGES_SEND_PER_SECOND="100",
    )
    async with serving_product(port, env, inbox, monkeypatch) as running:
        yield running


@asynccontextmanager
async def serving_product(
    port: int, env: dict[str, str], inbox: SmtpInbox, monkeypatch: pytest.MonkeyPatch, *, log_level: str = "warning"
) -> AsyncIterator[Product]:
    """The all-in-one product configured by ``env`` (see ``product_env``), served by uvicorn on ``port``."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    app = build_asgi("all", load_settings(ChatSettings))
    server = uvicorn.Server(server_config(app, host="127.0.0.1", port=port, log_level=log_level))
    serving = asyncio.create_task(server.serve())
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=20) as http:
            await until(lambda: server.started, timeout=60)
            yield Product(base=base, http=http, inbox=inbox)
    finally:
        server.should_exit = True
        await serving
