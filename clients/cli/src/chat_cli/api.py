"""HTTP access to the server: problem documents become ``Refused``, and access tokens are refreshed (and the
rotated refresh token stored) without the caller noticing."""

from __future__ import annotations

import asyncio
import contextlib
import platform
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx

from chat_cli.config import Config, locked
from chat_cli.errors import Refused, Unreachable

# Refresh this long before the access token's expiry, so a request never races it.
EXPIRY_MARGIN_SECONDS = 30.0
USER_AGENT = f"chat-cli/0.1 ({platform.system() or 'unknown system'})"
"""Sent with every request; the sessions list shows it as the device (``chat-cli on Linux``)."""


def problem(response: httpx.Response) -> Refused:
    """The ``Refused`` an error response stands for (RFC 9457 body, or just the status)."""
    body: Any = None
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("code"), str):
        message = str(body.get("detail") or body.get("title") or body["code"])
        return Refused(body["code"], message, status=response.status_code, body=body)
    return Refused(f"http_{response.status_code}", response.reason_phrase or "error", status=response.status_code)


class Api:
    """One server and, when signed in, one session (kept in ``config``)."""

    def __init__(
        self,
        server: str,
        config: Config,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.time,
        timeout: float = 20.0,
    ) -> None:
        self.server = server
        self.config = config
        self.clock = clock
        self._refreshing = asyncio.Lock()  # one refresh at a time within this process, too
        self.http = httpx.AsyncClient(
            base_url=server, timeout=timeout, transport=transport, headers={"User-Agent": USER_AGENT}
        )

    async def aclose(self) -> None:
        await self.http.aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        authenticated: bool = True,
    ) -> Any:
        """Send one request; answer the decoded JSON body (``None`` for 204)."""
        headers = {"X-Correlation-ID": f"cli-{uuid.uuid4().hex[:16]}"}
        if authenticated:
            headers["Authorization"] = f"Bearer {await self.access_token()}"
        response = await self._send(method, path, json=json, params=params, headers=headers)
        if authenticated and response.status_code == 401 and problem(response).code.startswith("token_"):
            # The cached token went stale early (key rotation, clock skew): one refresh, one retry.
            headers["Authorization"] = f"Bearer {await self.access_token(force=True)}"
            response = await self._send(method, path, json=json, params=params, headers=headers)
        if response.status_code >= 400:
            raise problem(response)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    @contextlib.asynccontextmanager
    async def stream(
        self, method: str, path: str, *, content: bytes | None = None, headers: dict[str, str] | None = None
    ) -> AsyncIterator[httpx.Response]:
        """An authenticated request whose answer is read as it comes (files): the response, once its status says
        it succeeded; a problem document becomes ``Refused`` as with ``request``."""
        for attempt in range(2):
            sent = {
                **(headers or {}),
                "X-Correlation-ID": f"cli-{uuid.uuid4().hex[:16]}",
                "Authorization": f"Bearer {await self.access_token(force=attempt > 0)}",
            }
            try:
                response = await self.http.send(
                    self.http.build_request(method, path, content=content, headers=sent), stream=True
                )
            except httpx.TransportError as exc:
                raise Unreachable(f"cannot reach {self.server}: {exc.__class__.__name__}: {exc}") from exc
            try:
                if response.status_code >= 400:
                    await response.aread()
                    refused = problem(response)
                    if attempt == 0 and response.status_code == 401 and refused.code.startswith("token_"):
                        continue  # a stale cached token: one refresh, one retry, as ``request`` does
                    raise refused
                yield response
                return
            finally:
                await response.aclose()

    async def _send(
        self, method: str, path: str, *, json: Any, params: dict[str, Any] | None, headers: dict[str, str]
    ) -> httpx.Response:
        clean = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            return await self.http.request(method, path, json=json, params=clean, headers=headers)
        except httpx.TransportError as exc:
            raise Unreachable(f"cannot reach {self.server}: {exc.__class__.__name__}: {exc}") from exc

    # -- the session -------------------------------------------------------------------------------------------

    def _session_matches(self) -> bool:
        return self.config.server is None or self.config.server.rstrip("/") == self.server

    async def access_token(self, *, force: bool = False) -> str:
        """A valid access token, refreshed (and the new refresh token saved) when needed."""
        if not force and self._cached_token():
            return str(self.config.access_token)
        async with self._refreshing, locked(self.config.path):
            # Another chat-cli process may have rotated the tokens while we waited for the lock.
            fresh = Config.load(self.config.path)
            if fresh.refresh_token != self.config.refresh_token or not force:
                self.config = fresh
                if self._cached_token():
                    return str(self.config.access_token)
            if not self.config.refresh_token:
                raise Refused("not_signed_in", "not signed in: run `chat-cli login` first")
            if not self._session_matches():
                raise Refused(
                    "not_signed_in",
                    f"the stored session belongs to {self.config.server}: run `chat-cli login` for {self.server}",
                )
            response = await self._send(
                "POST",
                "/api/auth/token/refresh",
                json={"refresh_token": self.config.refresh_token},
                params=None,
                headers={},
            )
            if response.status_code >= 400:
                refused = problem(response)
                if response.status_code == 401:
                    # Spent, reused or revoked: the stored session is over, keep no dead secret.
                    self.config.forget_session()
                    self.config.save()
                raise refused
            self.store_tokens(response.json())
            return str(self.config.access_token)

    def _cached_token(self) -> bool:
        return (
            bool(self.config.access_token)
            and self.config.access_expires_at is not None
            and self.config.access_expires_at - EXPIRY_MARGIN_SECONDS > self.clock()
            and self._session_matches()
        )

    def store_tokens(self, tokens: dict[str, Any]) -> None:
        """Keep a ``TokenResponse`` in the config file (0600)."""
        self.config.server = self.server
        self.config.refresh_token = str(tokens["refresh_token"])
        self.config.access_token = str(tokens["access_token"])
        self.config.access_expires_at = _expiry(tokens, self.clock())
        if tokens.get("user_id"):
            self.config.user_id = str(tokens["user_id"])
        self.config.save()


def _expiry(tokens: dict[str, Any], now: float) -> float:
    if isinstance(tokens.get("expires_in"), int | float):
        return now + float(tokens["expires_in"])
    try:
        return datetime.fromisoformat(str(tokens["expires_at"])).timestamp()
    except (KeyError, ValueError):
        return now + 60.0


USER_LOOKUP_BATCH = 100
"""``GET /api/rooms/users`` takes at most this many ids."""


async def user_profiles(api: Api, user_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """User id → public profile (``user_id``, ``username``, ``display_name``) for the ids the server knows
    (``GET /api/rooms/users``, 100 ids per call); ids it does not know (or a refused call) are left out: best
    effort, names are a convenience."""
    wanted = list(dict.fromkeys(u for u in user_ids if _is_uuid(u)))
    profiles: dict[str, dict[str, Any]] = {}
    for start in range(0, len(wanted), USER_LOOKUP_BATCH):
        batch = wanted[start : start + USER_LOOKUP_BATCH]
        try:
            found = await api.request("GET", "/api/rooms/users", params={"ids": ",".join(batch)})
        except Refused:
            continue
        profiles.update({str(u["user_id"]): dict(u) for u in found})
    return profiles


async def user_names(api: Api, user_ids: Iterable[str]) -> dict[str, str]:
    """User id → username, as ``user_profiles`` finds them."""
    return {user_id: str(p["username"]) for user_id, p in (await user_profiles(api, user_ids)).items()}


def shown_name(profile: dict[str, Any]) -> str:
    """What to call a person: the display name, else the username."""
    return str(profile.get("display_name") or "").strip() or str(profile.get("username") or "?")


async def user_by_username(api: Api, username: str) -> dict[str, Any]:
    """The user with this username, in any case (a leading ``@`` is ignored); ``Refused("user_not_found")``."""
    name = username.strip().removeprefix("@")
    if not name:
        raise Refused("user_not_found", "give a username")
    found: dict[str, Any] = await api.request("GET", f"/api/rooms/users/by-username/{quote(name, safe='')}")
    return found


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True
