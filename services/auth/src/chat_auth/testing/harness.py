"""What the auth scenario suite drives: an HTTP client on the auth API plus a way to read mail and events."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from prometheus_client import CollectorRegistry

from chat_auth.bootstrap import AuthModule
from chat_auth.service import keys
from chat_auth.service.context import AuthContext
from chat_auth.service.ports import Email
from chat_auth.testing.context_tools import forger
from chat_auth.testing.fakes import FakeClock
from chat_contracts.envelope import Envelope
from chat_runtime.app import build_app
from chat_runtime.bus.inprocess import InProcessBroker, InProcessBus

PASSWORD = "correct horse battery staple"
_CODE = re.compile(r"\b(\d{6})\b")


@dataclass
class AuthHarness:
    """``mail(address)`` returns every email delivered to ``address`` so far (after queued sends finish)."""

    http: httpx.AsyncClient
    clock: FakeClock
    mail: Callable[[str], Awaitable[list[Email]]]
    events: Callable[[], Awaitable[list[Envelope]]]
    jwks: Callable[[], Awaitable[dict[str, Any]]]
    forge: Callable[[dict[str, Any]], Awaitable[str]]
    """Sign arbitrary claims with the service's active key (attack tests need validly signed bad tokens)."""
    settings: Any
    context: AuthContext
    """The use cases' dependencies, for operator actions that have no HTTP route."""
    _ips: int = field(default=0)

    async def last_code(self, address: str) -> str:
        messages = await self.mail(address)
        assert messages, f"no email reached {address}"
        found = _CODE.search(messages[-1].subject)
        assert found, messages[-1].subject
        return found.group(1)

    def from_ip(self, ip: str) -> dict[str, str]:
        return {"X-Forwarded-For": ip}

    async def register(self, email: str, username: str, password: str = PASSWORD, **extra: Any) -> httpx.Response:
        body = {"email": email, "username": username, "password": password, **extra}
        return await self.http.post("/api/auth/register", json=body)

    async def signed_up(self, email: str, username: str, password: str = PASSWORD) -> dict[str, Any]:
        """Register, verify and sign in; the token response."""
        assert (await self.register(email, username, password)).status_code == 202
        code = await self.last_code(email)
        verified = await self.http.post("/api/auth/email/verify", json={"email": email, "code": code})
        assert verified.status_code == 200, verified.text
        return await self.login(email, password)

    async def login(self, identifier: str, password: str = PASSWORD, **headers: str) -> dict[str, Any]:
        response = await self.http.post(
            "/api/auth/login", json={"identifier": identifier, "password": password}, headers=headers
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    @staticmethod
    def bearer(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}


@asynccontextmanager
async def serve(
    module: AuthModule,
    *,
    mail: Callable[[str], Awaitable[list[Email]]],
    events: Callable[[], Awaitable[list[Envelope]]],
) -> AsyncIterator[AuthHarness]:
    """Run ``module`` in an app (in-process bus) and hand out a harness on it; ``mail`` and ``events`` read what
    the store and mailer behind the module recorded."""
    ctx = module.context
    if not isinstance(ctx.clock, FakeClock):
        raise TypeError("the scenarios drive time: build the module's context with a FakeClock")

    async def delivered(address: str) -> list[Email]:
        await ctx.mail.drain()
        return await mail(address)

    async def jwks() -> dict[str, Any]:
        return await keys.published_keys(ctx)

    app = build_app([module], bus=InProcessBus(InProcessBroker()), registry=CollectorRegistry())
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app, client=("192.0.2.1", 1234))
        async with httpx.AsyncClient(transport=transport, base_url="http://auth.test") as http:
            yield AuthHarness(
                http=http,
                clock=ctx.clock,
                mail=delivered,
                events=events,
                jwks=jwks,
                forge=forger(ctx),
                settings=module.settings,
                context=ctx,
            )
