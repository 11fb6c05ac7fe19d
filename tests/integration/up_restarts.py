"""`chat up` stopped and started again by a test (its own servers, folders and ports, the same each time): the
``start_up`` fixture starts it and waits until it is ready, and ``sign_up_on`` registers a user with the code it
prints. Fast presence settings (1.5 s grace, 0.5 s heartbeats), as the in-process ``product`` fixture has."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from .chat_up import Up, own_infra_dir, running_up, up_environment
from .product import PASSWORD, until

StartUp = Callable[[], Awaitable[Up]]


@pytest.fixture
def up_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    with own_infra_dir() as infra:
        env = up_environment(tmp_path, infra=infra)
        env.update(
            {
                "CHAT_GATEWAY_PRESENCE_GRACE_SECONDS": "1.5",
                "CHAT_GATEWAY_HEARTBEAT_SECONDS": "0.5",
                "CHAT_GATEWAY_EVENTS_BURST": "1000",
            }
        )
        yield env


@pytest.fixture
async def start_up(up_env: dict[str, str]) -> AsyncIterator[StartUp]:
    async with running_up(up_env) as start:

        async def started() -> Up:
            up: Up = await start()
            await up.ready()
            return up

        yield started


async def sign_up_on(up: Up, http: httpx.AsyncClient, name: str) -> dict[str, Any]:
    """Register on a running `chat up` (the code is in its console output), verify and log in: the tokens."""
    email = f"{name}@example.com"
    body = {"email": email, "username": name, "password": PASSWORD}
    assert (await http.post("/api/auth/register", json=body)).status_code == 202
    await until(lambda: up.code_for(email), 10)
    verified = await http.post("/api/auth/email/verify", json={"email": email, "code": up.code_for(email)})
    assert verified.status_code == 200, verified.text
    tokens = (await http.post("/api/auth/login", json={"identifier": name, "password": PASSWORD})).json()
    assert "access_token" in tokens, tokens
    return dict(tokens)


async def room_of(http: httpx.AsyncClient, owner: dict[str, Any], members: list[dict[str, Any]], name: str) -> str:
    """A public room ``name`` made by ``owner`` and joined by ``members``: its id."""
    created = await http.post(
        "/api/rooms",
        json={"kind": "public", "name": name},
        headers={"Authorization": f"Bearer {owner['access_token']}"},
    )
    assert created.status_code in (200, 201), created.text
    room_id = str(created.json()["id"])
    for user in members:
        joined = await http.post(
            f"/api/rooms/{room_id}/join", headers={"Authorization": f"Bearer {user['access_token']}"}
        )
        assert joined.status_code == 200, joined.text
    return room_id
