"""Where a verifier gets the issuer's JWKS document: over HTTP, in-process, or fixed (tests)."""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final, Protocol

import httpx

from chat_runtime.tokens.errors import JwksUnavailable

JWKS_PATH: Final = "/api/auth/.well-known/jwks.json"
MAX_JWKS_BYTES: Final = 64 * 1024


class JwksSource(Protocol):
    """Something that can produce the issuer's current JWKS document (RFC 7517)."""

    async def fetch(self) -> Mapping[str, Any]:
        """The current document; raise :class:`JwksUnavailable` when it cannot be had."""
        ...


class StaticJwksSource:
    """Always the same document: tests, and deployments that pin keys in configuration."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        self._document = document

    async def fetch(self) -> Mapping[str, Any]:
        return self._document


class CallableJwksSource:
    """Whatever a function returns now: the all-in-one mode, where the auth module hands in its keys."""

    def __init__(self, fn: Callable[[], Mapping[str, Any] | Awaitable[Mapping[str, Any]]]) -> None:
        self._fn = fn

    async def fetch(self) -> Mapping[str, Any]:
        result = self._fn()
        if inspect.isawaitable(result):
            return await result
        return result


class HttpJwksSource:
    """GET the auth service's JWKS endpoint; any failure becomes :class:`JwksUnavailable`.

    Redirects are not followed and the body is bounded, because whoever answers this URL decides which tokens
    every service accepts: point it at the auth service over TLS or a network you trust.
    """

    def __init__(
        self,
        url: str,
        *,
        client: httpx.AsyncClient | None = None,
        timeout: float = 5.0,
        max_bytes: int = MAX_JWKS_BYTES,
    ) -> None:
        if timeout <= 0 or max_bytes <= 0:
            raise ValueError("timeout and max_bytes must be positive")
        self.url = url
        self._client = client
        self._timeout = timeout
        self._max_bytes = max_bytes

    async def fetch(self) -> Mapping[str, Any]:
        try:
            # httpx's timeout bounds each read; this bounds the whole exchange, so a slow drip cannot stall.
            async with asyncio.timeout(self._timeout):
                if self._client is not None:
                    body = await self._get(self._client)
                else:
                    async with httpx.AsyncClient(follow_redirects=False) as client:
                        body = await self._get(client)
        except (httpx.HTTPError, TimeoutError) as exc:
            raise JwksUnavailable(f"JWKS request failed ({type(exc).__name__})") from exc
        try:
            document = json.loads(body)
        except (ValueError, RecursionError) as exc:
            raise JwksUnavailable("JWKS response is not JSON") from exc
        if not isinstance(document, dict):
            raise JwksUnavailable("JWKS response is not a JSON object")
        return document

    async def _get(self, client: httpx.AsyncClient) -> bytes:
        request = client.build_request("GET", self.url, headers={"Accept": "application/json"}, timeout=self._timeout)
        response = await client.send(request, stream=True, follow_redirects=False)
        try:
            if response.status_code != httpx.codes.OK:
                raise JwksUnavailable(f"JWKS endpoint answered {response.status_code}")
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > self._max_bytes:
                    raise JwksUnavailable(f"JWKS response exceeds {self._max_bytes} bytes")
            return bytes(body)
        finally:
            await response.aclose()
