"""Every way a session ends, and what must follow in every deployment mode: each token of the ended session is
refused by every service's REST API (401 problem+json, ``session_revoked``) and at the Socket.IO handshake of
every gateway (``connect_error`` with that code), within 2 seconds of the ending; tokens of sessions that did not
end keep working."""

from __future__ import annotations

import asyncio
import os
import re
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import socketio

from .product import PASSWORD, Product

WITHIN_SECONDS = 2.0
"""How soon after the ending every token of the session must be refused everywhere."""
PROBES = (("auth", "/api/auth/me"), ("rooms", "/api/rooms/mine"), ("messages", "/api/messages/unread"))
"""One authenticated endpoint of each service with a REST API (the gateway's is the Socket.IO handshake)."""


@dataclass
class Ending:
    """What one way of ending did: the tokens that must now fail, those that must still work, and when."""

    way: str
    gone: list[str]
    kept: list[str] = field(default_factory=list)
    at: float = 0.0
    """``time.monotonic()`` when the ending call returned."""


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def login(entry: Product, name: str) -> dict[str, Any]:
    """A new session of ``name`` (another device)."""
    response = await entry.http.post("/api/auth/login", json={"identifier": name, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return dict(response.json())


async def ok(response: Awaitable[httpx.Response], status: int = 204) -> None:
    answer = await response
    assert answer.status_code == status, answer.text


async def next_code(entry: Product, address: str, *, after: int) -> str:
    """The code in the first email to ``address`` beyond the ``after`` it had already received."""
    async with asyncio.timeout(10):
        while len(entry.inbox.to(address)) <= after:
            await asyncio.sleep(0.05)
    found = re.search(r"\b(\d{6})\b", str(entry.inbox.to(address)[after]["Subject"]))
    assert found, entry.inbox.to(address)[after]["Subject"]
    return found.group(1)


async def disable_with_the_cli(name: str, env: Mapping[str, str]) -> None:
    """``chat disable-account <name>``, as an operator runs it next to the running service."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "chat_app",
        "disable-account",
        name,
        env=dict(env),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    assert process.returncode == 0, output.decode(errors="replace")


class Ways:
    """Each way a session ends, on a fresh account signed up through ``entry``; ``working`` is awaited with the
    tokens about to end just before the ending (to show they worked until then)."""

    def __init__(
        self,
        entry: Product,
        *,
        tag: str,
        operator_env: Mapping[str, str],
        working: Callable[[list[str]], Awaitable[None]],
    ) -> None:
        self.entry = entry
        self.tag = tag
        self.operator_env = operator_env
        self.working = working

    async def _user(self, way: str) -> tuple[str, dict[str, Any]]:
        name = f"{way.replace('_', '')[:16]}{self.tag}"
        return name, await self.entry.sign_up(name)

    async def logout(self) -> Ending:
        name, laptop = await self._user("logout")
        phone = await login(self.entry, name)
        await self.working([laptop["access_token"]])
        await ok(self.entry.http.post("/api/auth/logout", headers=bearer(laptop["access_token"])))
        return Ending("logout", gone=[laptop["access_token"]], kept=[phone["access_token"]], at=time.monotonic())

    async def logout_all(self) -> Ending:
        name, laptop = await self._user("logout_all")
        phone = await login(self.entry, name)
        await self.working([laptop["access_token"], phone["access_token"]])
        await ok(self.entry.http.post("/api/auth/logout-all", headers=bearer(laptop["access_token"])))
        return Ending("logout-all", gone=[laptop["access_token"], phone["access_token"]], at=time.monotonic())

    async def end_one_session(self) -> Ending:
        name, laptop = await self._user("end_one")
        phone = await login(self.entry, name)
        await self.working([phone["access_token"]])
        await ok(
            self.entry.http.delete(f"/api/auth/sessions/{phone['session_id']}", headers=bearer(laptop["access_token"]))
        )
        return Ending(
            "end one session", gone=[phone["access_token"]], kept=[laptop["access_token"]], at=time.monotonic()
        )

    async def password_change(self) -> Ending:
        name, laptop = await self._user("pw_change")
        phone = await login(self.entry, name)
        body = {"current_password": PASSWORD, "new_password": "another long passphrase"}
        await self.working([phone["access_token"]])
        await ok(
            self.entry.http.post("/api/auth/password/change", json=body, headers=bearer(laptop["access_token"])),
            status=200,
        )
        gone, kept = [phone["access_token"]], [laptop["access_token"]]
        return Ending("password change", gone=gone, kept=kept, at=time.monotonic())

    async def password_reset(self) -> Ending:
        name, laptop = await self._user("pw_reset")
        address = f"{name}@example.com"
        before = len(self.entry.inbox.to(address))
        await ok(self.entry.http.post("/api/auth/password/forgot", json={"email": address}), status=202)
        code = await next_code(self.entry, address, after=before)
        verified = await self.entry.http.post("/api/auth/password/reset/verify", json={"email": address, "code": code})
        assert verified.status_code == 200, verified.text
        body = {"reset_token": verified.json()["reset_token"], "new_password": "another long passphrase"}
        await self.working([laptop["access_token"]])
        await ok(self.entry.http.post("/api/auth/password/reset", json=body))
        return Ending("password reset", gone=[laptop["access_token"]], at=time.monotonic())

    async def refresh_reuse(self) -> Ending:
        _, first = await self._user("reuse")
        rotated = await self.entry.http.post("/api/auth/token/refresh", json={"refresh_token": first["refresh_token"]})
        assert rotated.status_code == 200, rotated.text
        await self.working([first["access_token"], rotated.json()["access_token"]])
        reused = await self.entry.http.post("/api/auth/token/refresh", json={"refresh_token": first["refresh_token"]})
        assert reused.json()["code"] == "refresh_token_reused", reused.text
        return Ending(
            "refresh-token reuse", gone=[first["access_token"], rotated.json()["access_token"]], at=time.monotonic()
        )

    async def account_deleted(self) -> Ending:
        _, tokens = await self._user("deleted")
        await self.working([tokens["access_token"]])
        await ok(
            self.entry.http.post(
                "/api/auth/me/delete", json={"password": PASSWORD}, headers=bearer(tokens["access_token"])
            )
        )
        return Ending("account deleted", gone=[tokens["access_token"]], at=time.monotonic())

    async def account_disabled(self) -> Ending:
        name, laptop = await self._user("disabled")
        phone = await login(self.entry, name)
        await self.working([laptop["access_token"], phone["access_token"]])
        await disable_with_the_cli(name, self.operator_env)
        return Ending("account disabled", gone=[laptop["access_token"], phone["access_token"]], at=time.monotonic())

    def all(self) -> list[Callable[[], Awaitable[Ending]]]:
        return [
            self.logout,
            self.logout_all,
            self.end_one_session,
            self.password_change,
            self.password_reset,
            self.refresh_reuse,
            self.account_deleted,
            self.account_disabled,
        ]


async def refused_by_rest(
    entry: Product, path: str, token: str, *, deadline: float, code: str = "session_revoked"
) -> None:
    while True:
        answer = await entry.http.get(path, headers=bearer(token))
        if answer.status_code == 401 and answer.json().get("code") == code:
            assert answer.headers["content-type"].startswith("application/problem+json"), answer.headers
            return
        assert time.monotonic() < deadline, f"{path} still answers {answer.status_code} {answer.text[:200]}"
        await asyncio.sleep(0.05)


async def refused_at_handshake(entry: Product, token: str, *, deadline: float, code: str = "session_revoked") -> None:
    while True:
        client = socketio.AsyncClient(reconnection=False)
        refusals: list[dict[str, Any]] = []
        client.on("connect_error", refusals.append)
        try:
            await client.connect(entry.base, auth={"token": token}, transports=["websocket"], wait_timeout=10)
        except socketio.exceptions.ConnectionError:
            assert refusals, "refused without connect_error"
            refused_with = refusals[0]["data"]["code"]
            if refused_with == code:
                return
            assert refused_with == "unavailable", refusals  # the only other honest answer while a verifier starts
        else:
            await client.disconnect()
        assert time.monotonic() < deadline, f"the handshake at {entry.base} still accepts the token"
        await asyncio.sleep(0.05)


async def accepted_everywhere(entries: Sequence[Product], token: str) -> None:
    """Every service of every entry point accepts ``token``."""
    for entry in entries:
        for _service, path in PROBES:
            answer = await entry.http.get(path, headers=bearer(token))
            assert answer.status_code == 200, (path, answer.text)
        client = socketio.AsyncClient(reconnection=False)
        await client.connect(entry.base, auth={"token": token}, transports=["websocket"], wait_timeout=10)
        await client.disconnect()


async def refused_everywhere(
    entries: Sequence[Product], token: str, *, since: float, code: str = "session_revoked"
) -> None:
    """Every service of every entry point refuses ``token`` with ``code`` within ``WITHIN_SECONDS`` of ``since``."""
    deadline = since + WITHIN_SECONDS
    for entry in entries:
        for _service, path in PROBES:
            await refused_by_rest(entry, path, token, deadline=deadline, code=code)
        await refused_at_handshake(entry, token, deadline=deadline, code=code)


async def session_endings_scenario(entries: Sequence[Product], *, operator_env: Mapping[str, str]) -> list[str]:
    """Run every way of ending against ``entries`` (the first signs users up): the tokens work everywhere until
    the ending, then are refused everywhere within ``WITHIN_SECONDS``, and the tokens of sessions that did not end
    keep working. Returns how long each took to be refused everywhere, for the log."""

    async def working(tokens: list[str]) -> None:
        for token in tokens:
            await accepted_everywhere(entries, token)

    ways = Ways(entries[0], tag=os.urandom(3).hex(), operator_env=operator_env, working=working)
    timings: list[str] = []
    for way in ways.all():
        ending = await way()
        for token in ending.gone:
            try:
                await refused_everywhere(entries, token, since=ending.at)
            except AssertionError as exc:
                raise AssertionError(f"after {ending.way}: {exc}") from exc
        timings.append(f"{ending.way} {time.monotonic() - ending.at:.2f}s")
        for token in ending.kept:
            await accepted_everywhere(entries, token)
    return timings
