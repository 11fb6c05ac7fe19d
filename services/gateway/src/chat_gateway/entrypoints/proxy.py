"""Reverse proxy for split mode: the gateway stays the clients' single origin for ``/api/<service>/…``.

A request under ``/api/<service>`` for a service that runs in another process is forwarded to that service's base
URL with the same method, path, query, body and end-to-end headers, and the response is streamed back; neither
body is buffered, so each service keeps enforcing its own body limits. The forwarded path is the client's path
unchanged: one that is not plainly under the service's prefix (a ``.``/``..`` segment, once decoded, or a
backslash) is refused rather than normalised, so a request can never reach another service or another host.

Forwarding headers are the gateway's own: ``X-Forwarded-For`` is the client address as this process sees it
(uvicorn's ``--forwarded-allow-ips`` decides whether a load balancer in front of the gateway is believed), never
a value the client sent, so a service that trusts the first hop cannot be fooled by a client. ``Host`` is kept
(URLs a service builds from the request point at the gateway) and repeated as ``X-Forwarded-Host``.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping
from http.cookiejar import CookieJar, DefaultCookiePolicy
from types import TracebackType
from typing import Final, Self
from urllib.parse import quote

import httpx
import structlog
from starlette.types import ASGIApp, Receive, Scope, Send

from chat_runtime import tracing
from chat_runtime.logging import CORRELATION_HEADER, current_correlation_id
from chat_runtime.middleware import CorrelationIdMiddleware
from chat_runtime.problems import UnexpectedErrorMiddleware, problem_response

log = structlog.get_logger("chat.gateway.proxy")

HOP_BY_HOP: Final = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)
"""RFC 9110 §7.6.1: meaningful for one connection only, never forwarded (nor any header ``Connection`` names)."""

_CORRELATION: Final = CORRELATION_HEADER.lower().encode()
_FORWARDING: Final = frozenset(
    {b"forwarded", b"x-forwarded-for", b"x-forwarded-host", b"x-forwarded-proto", b"x-forwarded-port", b"x-real-ip"}
)
"""Set by the gateway itself; what a client sends under these names is dropped."""

# The gateway's own server adds these to every response; the upstream's copies would be duplicates.
_RESPONSE_DROPPED: Final = frozenset({_CORRELATION, b"date", b"server"})

_SERVICE_NAME = re.compile(r"^[a-z][a-z0-9-]{0,39}$")


class _ClientGone(Exception):
    """The client disconnected while its request body was being forwarded."""


class UpstreamBroken(Exception):
    """An upstream failed after its response had started: the client connection is dropped, not completed."""


class ServiceProxy:
    """Forwards ``/api/<service>`` and everything under it to the process that runs ``<service>``."""

    def __init__(
        self,
        upstreams: Mapping[str, str],
        *,
        timeout: float,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """``upstreams`` maps a service name to its base URL (``http://rooms:8000``); nothing connects yet."""
        self._upstreams = {name: _base_url(name, url) for name, url in upstreams.items()}
        self._timeout = httpx.Timeout(timeout)
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        # Outside the app's middleware (which would cap bodies at the gateway's own limit), so these two are
        # applied here: a correlation id to forward and echo, and a problem document for a bug.
        self._handle: ASGIApp = CorrelationIdMiddleware(UnexpectedErrorMiddleware(self._forward))

    @property
    def services(self) -> frozenset[str]:
        """The names of the services this proxy forwards to."""
        return frozenset(self._upstreams)

    def service_for(self, path: str) -> str | None:
        """The proxied service whose prefix ``path`` is under (``/api/rooms``, ``/api/rooms/…``), if any."""
        parts = path.split("/", 3)
        if len(parts) >= 3 and parts[0] == "" and parts[1] == "api" and parts[2] in self._upstreams:
            return parts[2]
        return None

    async def start(self) -> None:
        """Open the one HTTP client (and its connection pool) every forwarded request shares."""
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=self._timeout,
                transport=self._transport,
                follow_redirects=False,  # a redirect is the client's to follow, at the gateway's origin
                trust_env=False,  # no HTTP(S)_PROXY detour for service-to-service traffic
                # Never keep one user's cookies (refresh tokens) in a client that every user's requests share.
                cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
                limits=httpx.Limits(max_connections=512, max_keepalive_connections=64),
            )

    async def aclose(self) -> None:
        """Close the shared client; requests arriving afterwards get 503."""
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def in_front_of(self, app: ASGIApp) -> ASGIApp:
        """An ASGI app that forwards proxied paths and hands everything else (lifespan included) to ``app``."""

        async def dispatch(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http" and self.service_for(scope["path"]) is not None:
                await self._handle(scope, receive, send)
            else:
                await app(scope, receive, send)

        return dispatch

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Forward one HTTP request whose path is under a proxied service."""
        await self._handle(scope, receive, send)

    async def _forward(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        service = self.service_for(path)
        if service is None:
            await problem_response(404, "not_found", "No service answers here.", instance=path)(scope, receive, send)
            return
        if not _plainly_under_prefix(path):
            await problem_response(
                400, "bad_request", "The path must not contain '.' or '..' segments or backslashes.", instance=path
            )(scope, receive, send)
            return
        client = self._client
        if client is None:
            await problem_response(503, "unavailable", "The gateway is not serving yet.", instance=path)(
                scope, receive, send
            )
            return
        request = httpx.Request(
            scope["method"],
            self._target(service, scope),
            headers=_request_headers(scope),
            content=_body(receive) if _has_body(scope) else None,
        )
        try:
            response = await client.send(request, stream=True)
        except _ClientGone:
            return
        except httpx.TimeoutException as exc:
            log.warning("proxy.upstream_timeout", service=service, path=path, error=type(exc).__name__)
            await problem_response(
                504, "upstream_timeout", f"The {service} service did not answer in time.", instance=path
            )(scope, receive, send)
            return
        except httpx.TransportError as exc:
            log.warning("proxy.upstream_unreachable", service=service, path=path, error=type(exc).__name__)
            await problem_response(
                502, "upstream_unavailable", f"The {service} service cannot be reached.", instance=path
            )(scope, receive, send)
            return
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": response.status_code,
                    "headers": _response_headers(response.headers.raw),
                }
            )
            try:
                async for chunk in response.aiter_raw():
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            except httpx.TransportError as exc:
                # Headers are gone already: ending the body normally would pass a truncated response off as whole.
                log.warning("proxy.upstream_broke_off", service=service, path=path, error=type(exc).__name__)
                raise UpstreamBroken(f"{service}: {type(exc).__name__}") from exc
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            await response.aclose()

    def _target(self, service: str, scope: Scope) -> httpx.URL:
        base = self._upstreams[service]
        raw_path = scope.get("raw_path") or quote(scope["path"]).encode("ascii")
        query: bytes = scope.get("query_string", b"")
        # The base's own path (if any) is a fixed prefix; the client's path is appended, never resolved against it.
        target = base.raw_path.rstrip(b"/") + raw_path + (b"?" + query if query else b"")
        return base.copy_with(raw_path=target)


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot be a service's base URL, or None when it can."""
    try:
        base = httpx.URL(url)
    except httpx.InvalidURL as exc:
        return f"not a URL ({exc})"
    if base.scheme not in ("http", "https") or not base.host or base.query or base.fragment or base.userinfo:
        return f"expected http(s)://host[:port][/path], got {url!r}"
    return None


def _base_url(service: str, url: str) -> httpx.URL:
    if not _SERVICE_NAME.match(service):
        raise ValueError(f"not a service name: {service!r}")
    problem = url_problem(url)
    if problem:
        raise ValueError(f"{service}: {problem}")
    return httpx.URL(url)


def _plainly_under_prefix(path: str) -> bool:
    """No segment a server or a URL library could resolve upwards (``..``, ``.``), no backslash."""
    return "\\" not in path and not any(segment in (".", "..") for segment in path.split("/"))


def _connection_tokens(headers: list[tuple[bytes, bytes]]) -> set[bytes]:
    return {
        token.strip().lower() for name, value in headers if name.lower() == b"connection" for token in value.split(b",")
    }


def _request_headers(scope: Scope) -> list[tuple[bytes, bytes]]:
    given: list[tuple[bytes, bytes]] = list(scope.get("headers", ()))
    dropped = HOP_BY_HOP | _FORWARDING | {_CORRELATION} | _connection_tokens(given)
    headers = [(name, value) for name, value in given if name not in dropped]
    client = scope.get("client")
    if client:
        headers.append((b"x-forwarded-for", str(client[0]).encode("latin-1")))
    headers.append((b"x-forwarded-proto", str(scope.get("scheme", "http")).encode("latin-1")))
    host = next((value for name, value in given if name == b"host"), None)
    if host is not None:
        headers.append((b"x-forwarded-host", host))
    correlation_id = current_correlation_id()
    if correlation_id:
        headers.append((_CORRELATION, correlation_id.encode("latin-1")))
    trace = tracing.trace_headers()  # when tracing is on: the service's span continues this request's
    if trace:
        names = {name.encode() for name, _ in trace}
        headers = [(name, value) for name, value in headers if name not in names]
        headers.extend((name.encode(), value) for name, value in trace)
    return headers


def _response_headers(raw: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    dropped = HOP_BY_HOP | _RESPONSE_DROPPED | _connection_tokens(raw)
    return [(name.lower(), value) for name, value in raw if name.lower() not in dropped]


def _has_body(scope: Scope) -> bool:
    """A request has a body when it declares a length or a transfer coding (RFC 9112 §6.3)."""
    return any(name in (b"content-length", b"transfer-encoding") for name, _ in scope.get("headers", ()))


async def _body(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _ClientGone
        chunk: bytes = message.get("body", b"")
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            return
