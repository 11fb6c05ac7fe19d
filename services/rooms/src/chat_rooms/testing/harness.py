"""What the rooms scenario suite drives: an HTTP client on the rooms API, signed-in users and the events."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from prometheus_client import CollectorRegistry

from chat_contracts.envelope import Envelope
from chat_contracts.users import UserDeleted, UserRegistered, UserUpdated
from chat_rooms.bootstrap import RoomsModule
from chat_rooms.entrypoints.bus import BusEntrypoints
from chat_rooms.settings import RoomsSettings
from chat_rooms.testing.fakes import FakeClock
from chat_runtime.app import build_app
from chat_runtime.bus.inprocess import InProcessBroker, InProcessBus
from chat_runtime.testing.tokens import TokenMint as RuntimeTokenMint


def TokenMint(settings: RoomsSettings, clock: FakeClock) -> RuntimeTokenMint:
    """A token mint for the rooms service's configured issuer and audience."""
    return RuntimeTokenMint(issuer=settings.auth_issuer, audience=settings.auth_audience, clock=clock)


@dataclass
class User:
    id: uuid.UUID
    username: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class RoomsHarness:
    http: httpx.AsyncClient
    clock: FakeClock
    module: RoomsModule
    mint: RuntimeTokenMint
    events: Callable[[], Awaitable[list[Envelope]]]
    _users: dict[str, User] = field(default_factory=dict)

    async def user(self, username: str, *, verified: bool = True) -> User:
        """A registered account (delivered to the service as chat.users.events would) and its token."""
        user_id = uuid.uuid4()
        await self.deliver(
            UserRegistered(
                user_id=user_id,
                username=username,
                display_name=username.title(),
                email_verified=verified,
                occurred_at=self.clock(),
            )
        )
        user = User(id=user_id, username=username, token=self.mint.access_token(user_id, username, verified=verified))
        self._users[username] = user
        return user

    async def deliver(self, data: UserRegistered | UserUpdated | UserDeleted) -> Envelope:
        envelope = Envelope.wrap(data, source="auth", key=str(data.user_id))
        await BusEntrypoints(self.module.context).on_user_event(envelope)
        return envelope

    async def create(
        self, owner: User, kind: str = "public", name: str | None = "general", **extra: Any
    ) -> dict[str, Any]:
        response = await self.http.post("/api/rooms", json={"kind": kind, "name": name, **extra}, headers=owner.headers)
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    async def join(self, user: User, room_id: str, **body: Any) -> httpx.Response:
        return await self.http.post(f"/api/rooms/{room_id}/join", json=body or None, headers=user.headers)


@asynccontextmanager
async def serve(
    module: RoomsModule, mint: RuntimeTokenMint, *, events: Callable[[], Awaitable[list[Envelope]]]
) -> AsyncIterator[RoomsHarness]:
    clock = module.context.clock
    if not isinstance(clock, FakeClock):
        raise TypeError("the scenarios drive time: build the context with a FakeClock")
    app = build_app([module], bus=InProcessBus(InProcessBroker()), registry=CollectorRegistry())
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app, client=("192.0.2.1", 1234))
        async with httpx.AsyncClient(transport=transport, base_url="http://rooms.test") as http:
            yield RoomsHarness(http=http, clock=clock, module=module, mint=mint, events=events)
