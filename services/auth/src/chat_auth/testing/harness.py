"""What the auth scenario suite drives: an HTTP client on the auth API plus a way to read mail and events."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from chat_auth.service.ports import Email
from chat_auth.testing.fakes import FakeClock
from chat_contracts.envelope import Envelope

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
