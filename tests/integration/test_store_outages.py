"""Reliability, reduced size: the Mongo-wire server and then PostgreSQL stop for a while under a running product.

While the message store is down nothing is acked (the client keeps its messages and resends them with the same
client_msg_id); once it is back every message is stored exactly once, seq stays dense, and the time to recover is
printed. While PostgreSQL is down, members keep chatting (the message path does not need it) but authorization
fails closed: nobody can sign in and a stranger cannot get into a room. The servers are this test's own (private
ports and data folder), so stopping them disturbs nothing else. ``CHAT_OUTAGE_SECONDS`` sets each outage
(default 4; `make chaos` runs 30).
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from chat_localinfra import InfraConfig, ensure_started, stop
from chat_localinfra.smtp import SmtpInbox

from .product import PASSWORD, Client, Product, connect, free_port, product_env, serving_product, until

OUTAGE_SECONDS = float(os.environ.get("CHAT_OUTAGE_SECONDS", "4"))


class Private:
    """This test's own PostgreSQL and Mongo-wire servers."""

    def __init__(self, folder: Path) -> None:
        self.config = InfraConfig.from_env(
            {
                "CHAT_INFRA_DIR": str(folder),
                "CHAT_INFRA_PG_PORT": str(free_port()),
                "CHAT_INFRA_MONGO_PORT": str(free_port()),
            }
        )

    async def up(self, services: str = "postgres,mongo") -> dict[str, str]:
        urls = await asyncio.to_thread(ensure_started, services, config=self.config)
        return {"postgres": urls.postgres_url or "", "mongo": urls.mongo_url or ""}

    async def down(self, service: str) -> None:
        await asyncio.to_thread(stop, service, config=self.config)


@pytest.fixture
async def outage_product(
    tmp_path: Path, smtp_server: tuple[str, int, SmtpInbox], monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Product, Private]]:
    servers = Private(tmp_path / "infra")
    urls = await servers.up()
    try:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = product_env(
            base=base,
            data_dir=tmp_path / "data",
            postgres_url=urls["postgres"],
            databases=("chat_auth", "chat_rooms"),
            mongo_url=urls["mongo"],
            smtp_server=smtp_server,
            CHAT_GATEWAY_ACK_TIMEOUT_SECONDS="2",
        )
        async with serving_product(port, env, smtp_server[2], monkeypatch, log_level="critical") as running:
            yield running, servers
    finally:
        await asyncio.to_thread(stop, None, config=servers.config)


async def _send(client: Client, room_id: str, client_msg_id: str) -> dict[str, Any]:
    try:
        answer = await client.sio.call(
            "message:send", {"room_id": room_id, "client_msg_id": client_msg_id, "body": client_msg_id}, timeout=10
        )
    except TimeoutError:
        return {"ok": False, "error": {"code": "<no ack>"}}
    return dict(answer)


async def test_store_outages_ack_nothing_lose_nothing_and_fail_closed(
    outage_product: tuple[Product, Private],
) -> None:
    product, servers = outage_product
    ada, bob, eve = [await product.sign_up(n) for n in ("ada", "bob", "eve")]
    auth = {"Authorization": f"Bearer {ada['access_token']}"}
    room_id = (await product.http.post("/api/rooms", json={"kind": "private", "name": "vault"}, headers=auth)).json()[
        "id"
    ]
    invited = await product.http.post(
        f"/api/rooms/{room_id}/invitations", json={"user_id": bob["user_id"]}, headers=auth
    )
    assert invited.status_code == 204, invited.text
    accepted = await product.http.post(
        f"/api/rooms/{room_id}/invitation/accept", headers={"Authorization": f"Bearer {bob['access_token']}"}
    )
    assert accepted.status_code == 200, accepted.text
    a, b = await connect(product, ada["access_token"]), await connect(product, bob["access_token"])
    e = await connect(product, eve["access_token"])
    try:
        for client in (a, b):
            assert (await client.sio.call("room:subscribe", {"room_id": room_id}, timeout=15))["ok"] is True
        acked: dict[str, int] = {}
        for n in range(10):
            answer = await _send(a, room_id, f"before-{n}")
            assert answer["ok"] is True, answer
            acked[f"before-{n}"] = answer["seq"]

        # --- the message store goes away --------------------------------------------------------------------
        await servers.down("mongo")
        down_at = time.monotonic()
        during = [await _send(a, room_id, f"during-{n}") for n in range(5)]
        assert [d["ok"] for d in during] == [False] * 5, f"nothing is acked while the store is down: {during}"
        history = await product.http.get(f"/api/messages/rooms/{room_id}/messages", headers=auth)
        assert history.status_code == 503, "reads fail, clearly, while the store is down"
        await asyncio.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - down_at)))
        await servers.up("mongo")
        back_at = time.monotonic()
        for n in range(5):  # the client resends what was never acked, with the same ids
            while True:
                answer = await _send(a, room_id, f"during-{n}")
                if answer["ok"]:
                    acked[f"during-{n}"] = answer["seq"]
                    break
                await asyncio.sleep(0.2)
            if n == 0:
                mongo_recovery = time.monotonic() - back_at
        page = (
            await product.http.get(f"/api/messages/rooms/{room_id}/messages", headers=auth, params={"limit": 100})
        ).json()
        stored = {m["client_msg_id"]: m["seq"] for m in page["items"]}
        assert stored == acked, "every acked message is stored, once, with the seq its ack gave"
        assert sorted(stored.values()) == list(range(1, 16)), "seq stays dense across the outage"
        await until(lambda: sorted(b.messages(room_id)) == list(range(1, 16)))
        assert b.messages(room_id) == list(range(1, 16)), "the other member got each message once, in order"

        # --- PostgreSQL goes away: chatting goes on, authorization fails closed -----------------------------
        await servers.down("postgres")
        down_at = time.monotonic()
        login = await product.http.post("/api/auth/login", json={"identifier": "ada", "password": PASSWORD})
        assert login.status_code == 503, login.text
        stranger = await e.sio.call("room:subscribe", {"room_id": str(room_id)}, timeout=15)
        assert stranger["ok"] is False
        assert stranger["error"]["code"] in ("unavailable", "not_member")
        still = await _send(a, room_id, "while-pg-down")
        assert still["ok"] is True, f"members keep chatting: the message path does not need PostgreSQL ({still})"
        await asyncio.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - down_at)))
        await servers.up("postgres")
        back_at = time.monotonic()
        while (
            await product.http.post("/api/auth/login", json={"identifier": "ada", "password": PASSWORD})
        ).status_code != 200:
            await asyncio.sleep(0.2)
        pg_recovery = time.monotonic() - back_at
        stranger = await e.sio.call("room:subscribe", {"room_id": str(room_id)}, timeout=15)
        assert stranger["error"]["code"] == "not_member", "after the outage the answer is the real one"
        print(
            f"store outages of {OUTAGE_SECONDS:.0f}s: Mongo-wire server back -> first ack {mongo_recovery:.2f}s; "
            f"PostgreSQL back -> first sign-in {pg_recovery:.2f}s"
        )
    finally:
        for client in (a, b, e):
            if client.sio.connected:
                await client.sio.disconnect()
    assert uuid.UUID(room_id)
