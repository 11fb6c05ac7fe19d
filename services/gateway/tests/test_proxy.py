"""The split-mode reverse proxy: what reaches a service, what comes back, and what never leaves the gateway.

Requests are driven as raw ASGI calls (the scope a server such as uvicorn builds from the bytes on the wire), so
paths arrive exactly as a client can send them, un-normalised.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from starlette.types import ASGIApp, Message, Scope

from chat_gateway.entrypoints.proxy import HOP_BY_HOP, ServiceProxy, UpstreamBroken
from chat_runtime.problems import PROBLEM_JSON

CLIENT_IP = "203.0.113.7"
UPSTREAMS = {"auth": "http://auth.internal:8001", "rooms": "http://rooms.internal:8002"}

Respond = Callable[[httpx.Request, bytes], Awaitable[httpx.Response]]


async def _ok(request: httpx.Request, body: bytes) -> httpx.Response:
    return httpx.Response(200, json={"ok": True})


class Upstream(httpx.AsyncBaseTransport):
    """A service behind the proxy: records each request it gets (body read as a stream) and answers it."""

    def __init__(self, respond: Respond = _ok) -> None:
        self.respond = respond
        self.seen: list[tuple[httpx.Request, bytes]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.AsyncByteStream)
        body = b"".join([chunk async for chunk in request.stream])
        self.seen.append((request, body))
        return unread(await self.respond(request, body))

    @property
    def last(self) -> httpx.Request:
        return self.seen[-1][0]


class Chunks(httpx.AsyncByteStream):
    def __init__(self, source: Callable[[], AsyncIterator[bytes]]) -> None:
        self._source = source

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._source():
            yield chunk


def unread(response: httpx.Response) -> httpx.Response:
    """``response`` with its body not yet read, as a network transport hands it over."""
    if not response.is_stream_consumed:
        return response
    content = response.content

    async def once() -> AsyncIterator[bytes]:
        yield content

    return httpx.Response(response.status_code, headers=response.headers.raw, stream=Chunks(once))


@dataclass
class Answer:
    """What the client got: every ASGI message the proxy sent, in order."""

    sent: list[Message] = field(default_factory=list)

    @property
    def status(self) -> int:
        return int(self.sent[0]["status"])

    @property
    def raw_headers(self) -> list[tuple[bytes, bytes]]:
        return list(self.sent[0]["headers"])

    def headers(self, name: str) -> list[str]:
        return [v.decode() for k, v in self.raw_headers if k == name.lower().encode()]

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.sent[1:])

    def json(self) -> Any:
        return json.loads(self.body)


def scope_for(
    method: str, raw_path: str, *, query: str = "", headers: Sequence[tuple[str, str]] = (), scheme: str = "https"
) -> Scope:
    """The scope a server builds for ``method raw_path?query`` (path percent-decoded, raw_path as sent)."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": scheme,
        "path": unquote(raw_path),
        "raw_path": raw_path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers],
        "client": (CLIENT_IP, 50123),
        "server": ("gateway.example", 443),
    }


async def call(
    app: ASGIApp,
    method: str,
    raw_path: str,
    *,
    query: str = "",
    headers: Sequence[tuple[str, str]] = (),
    body: Iterable[bytes] = (),
    on_send: Callable[[Message], Awaitable[None]] | None = None,
) -> Answer:
    chunks = list(body)
    all_headers = [("host", "gateway.example"), *headers]
    if chunks and not any(k.lower() in ("content-length", "transfer-encoding") for k, _ in headers):
        all_headers.append(("content-length", str(sum(len(c) for c in chunks))))
    answer = Answer()

    async def receive() -> Message:
        if chunks:
            chunk = chunks.pop(0)
            return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}
        if not answer.sent:
            return {"type": "http.request", "body": b"", "more_body": False}
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        answer.sent.append(message)
        if on_send is not None:
            await on_send(message)

    await app(scope_for(method, raw_path, query=query, headers=all_headers), receive, send)
    return answer


def header(request: httpx.Request, name: str) -> list[str]:
    return request.headers.get_list(name)


@pytest.fixture
async def upstream() -> Upstream:
    return Upstream()


@pytest.fixture
async def proxy(upstream: Upstream) -> AsyncIterator[ServiceProxy]:
    async with ServiceProxy(UPSTREAMS, timeout=5, transport=upstream) as started:
        yield started


async def test_method_path_query_body_and_end_to_end_headers_reach_the_service_unchanged(
    proxy: ServiceProxy, upstream: Upstream
) -> None:
    answer = await call(
        proxy,
        "PATCH",
        "/api/rooms/7f0c/members/%C3%A9l%C3%A8ve",
        query="role=admin&note=a%2Fb&x=1&x=2",
        headers=[
            ("authorization", "Bearer abc"),
            ("content-type", "application/json"),
            ("accept-language", "fr"),
            ("cookie", "refresh=r1"),
            ("x-custom", "one"),
            ("x-custom", "two"),
        ],
        body=[b'{"role":', b'"admin"}'],
    )
    assert answer.status == 200
    assert answer.json() == {"ok": True}
    request, body = upstream.seen[0]
    assert request.method == "PATCH"
    assert (
        str(request.url)
        == "http://rooms.internal:8002/api/rooms/7f0c/members/%C3%A9l%C3%A8ve?role=admin&note=a%2Fb&x=1&x=2"
    )
    assert body == b'{"role":"admin"}'
    assert header(request, "authorization") == ["Bearer abc"]
    assert header(request, "content-type") == ["application/json"]
    assert header(request, "content-length") == ["16"]
    assert header(request, "cookie") == ["refresh=r1"]
    assert header(request, "x-custom") == ["one", "two"]
    assert header(request, "accept-language") == ["fr"]
    # Nothing of the gateway's own HTTP client leaks in (no encodings the client did not ask for).
    assert header(request, "accept-encoding") == []
    assert header(request, "user-agent") == []


async def test_the_service_learns_the_client_address_scheme_and_host_from_the_gateway(
    proxy: ServiceProxy, upstream: Upstream
) -> None:
    await call(proxy, "GET", "/api/auth/me")
    request = upstream.last
    assert header(request, "x-forwarded-for") == [CLIENT_IP]
    assert header(request, "x-forwarded-proto") == ["https"]
    assert header(request, "x-forwarded-host") == ["gateway.example"]
    # Host is kept, so URLs a service builds from the request (Location, url_for) point at the gateway.
    assert header(request, "host") == ["gateway.example"]
    assert request.url.host == "auth.internal"


async def test_forwarding_headers_a_client_sends_are_replaced_not_trusted(
    proxy: ServiceProxy, upstream: Upstream
) -> None:
    await call(
        proxy,
        "POST",
        "/api/auth/login",
        headers=[
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-proto", "http"),
            ("x-forwarded-host", "evil.example"),
            ("x-forwarded-port", "1"),
            ("forwarded", "for=6.6.6.6;proto=http"),
            ("x-real-ip", "6.6.6.6"),
        ],
        body=[b"{}"],
    )
    request = upstream.last
    assert header(request, "x-forwarded-for") == [CLIENT_IP], "a client must not choose the address throttles see"
    assert header(request, "x-forwarded-proto") == ["https"]
    assert header(request, "x-forwarded-host") == ["gateway.example"]
    assert header(request, "x-forwarded-port") == []
    assert header(request, "forwarded") == []
    assert header(request, "x-real-ip") == []


async def test_a_well_formed_correlation_id_is_forwarded_and_echoed_once(
    proxy: ServiceProxy, upstream: Upstream
) -> None:
    async def echo_id(request: httpx.Request, body: bytes) -> httpx.Response:
        return httpx.Response(200, headers={"X-Correlation-ID": request.headers["x-correlation-id"]}, json={})

    upstream.respond = echo_id
    answer = await call(proxy, "GET", "/api/rooms", headers=[("x-correlation-id", "req-42.a:b")])
    assert header(upstream.last, "x-correlation-id") == ["req-42.a:b"]
    assert answer.headers("x-correlation-id") == ["req-42.a:b"]


async def test_a_malformed_or_missing_correlation_id_is_replaced_by_the_gateway_s_own(
    proxy: ServiceProxy, upstream: Upstream
) -> None:
    for given in ([("x-correlation-id", "bad id\twith spaces")], []):
        answer = await call(proxy, "GET", "/api/rooms", headers=given)
        (forwarded,) = header(upstream.last, "x-correlation-id")
        assert forwarded != "bad id\twith spaces"
        assert answer.headers("x-correlation-id") == [forwarded], "the client can quote the id the logs carry"


async def test_hop_by_hop_headers_are_dropped_in_both_directions(proxy: ServiceProxy, upstream: Upstream) -> None:
    async def hoppy(request: httpx.Request, body: bytes) -> httpx.Response:
        return httpx.Response(
            200,
            headers=[
                ("Connection", "close, X-Upstream-Hop"),
                ("Keep-Alive", "timeout=5"),
                ("Upgrade", "h2c"),
                ("Proxy-Authenticate", "Basic"),
                ("Trailer", "X-Checksum"),
                ("X-Upstream-Hop", "internal"),
                ("X-End-To-End", "kept"),
                ("Set-Cookie", "refresh=r2; HttpOnly; Path=/api/auth"),
                ("Cache-Control", "no-store"),
            ],
            content=b"{}",
        )

    upstream.respond = hoppy
    answer = await call(
        proxy,
        "GET",
        "/api/auth/session",
        headers=[
            ("connection", "keep-alive, x-client-hop"),
            ("keep-alive", "timeout=5"),
            ("te", "trailers"),
            ("upgrade", "websocket"),
            ("proxy-authorization", "Basic c2VjcmV0"),
            ("proxy-connection", "keep-alive"),
            ("trailer", "x-checksum"),
            ("x-client-hop", "for the gateway only"),
            ("x-end-to-end", "kept"),
        ],
    )
    sent_names = {name.lower() for name in upstream.last.headers}
    assert not sent_names & {h.decode() for h in HOP_BY_HOP}, sent_names
    assert "x-client-hop" not in sent_names, "a header the Connection header names is hop-by-hop too"
    assert header(upstream.last, "x-end-to-end") == ["kept"]

    got = {name for name, _ in answer.raw_headers}
    assert not got & HOP_BY_HOP, got
    assert b"x-upstream-hop" not in got
    assert answer.headers("x-end-to-end") == ["kept"]
    assert answer.headers("set-cookie") == ["refresh=r2; HttpOnly; Path=/api/auth"]
    assert answer.headers("cache-control") == ["no-store"]
    assert all(name == name.lower() for name, _ in answer.raw_headers), "ASGI header names are lower-case"


async def test_the_response_is_streamed_as_the_service_produces_it(proxy: ServiceProxy, upstream: Upstream) -> None:
    first_sent_to_client = asyncio.Event()

    async def produce() -> AsyncIterator[bytes]:
        yield b"first,"
        # The rest only comes once the client has the first chunk: a buffering proxy would wait here forever.
        await asyncio.wait_for(first_sent_to_client.wait(), 5)
        yield b"second"

    async def slow(request: httpx.Request, body: bytes) -> httpx.Response:
        return httpx.Response(200, headers={"Content-Type": "text/plain"}, stream=Chunks(produce))

    async def on_send(message: Message) -> None:
        if message.get("body") == b"first,":
            first_sent_to_client.set()

    upstream.respond = slow
    answer = await call(proxy, "GET", "/api/rooms/export", on_send=on_send)
    assert answer.status == 200
    bodies = [m["body"] for m in answer.sent[1:] if m["body"]]
    assert bodies == [b"first,", b"second"]
    assert answer.sent[-1] == {"type": "http.response.body", "body": b"", "more_body": False}


async def test_the_request_body_is_streamed_to_the_service() -> None:
    first_chunk_upstream = asyncio.Event()
    received: list[bytes] = []

    class Reading(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            assert isinstance(request.stream, httpx.AsyncByteStream)
            async for chunk in request.stream:
                received.append(chunk)
                first_chunk_upstream.set()
            return unread(httpx.Response(201, json={"bytes": sum(map(len, received))}))

    big = b"x" * (200 * 1024)  # larger than the gateway's own 64 KiB body limit: the service decides
    pieces = [big[:100], big[100:]]

    calls = 0
    sent: list[Message] = []

    async def receive() -> Message:
        nonlocal calls
        calls += 1
        if calls == 1:
            return {"type": "http.request", "body": pieces[0], "more_body": True}
        if calls == 2:
            # The client sends the rest only once the service has the start: a buffering proxy would hang.
            await asyncio.wait_for(first_chunk_upstream.wait(), 5)
            return {"type": "http.request", "body": pieces[1], "more_body": False}
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = scope_for("POST", "/api/auth/me/avatar", headers=[("host", "g"), ("content-length", str(len(big)))])
    async with ServiceProxy(UPSTREAMS, timeout=5, transport=Reading()) as proxy:
        await proxy(scope, receive, send)
    assert sent[0]["status"] == 201
    assert received[0] == pieces[0]
    assert b"".join(received) == big


async def test_a_service_that_cannot_be_reached_gives_502_problem_json() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with ServiceProxy({"rooms": f"http://127.0.0.1:{port}"}, timeout=5) as proxy:
        answer = await call(proxy, "GET", "/api/rooms/abc", headers=[("x-correlation-id", "c-502")])
    assert answer.status == 502
    assert answer.headers("content-type") == [PROBLEM_JSON]
    assert answer.json() == {
        "type": "urn:chat:problem:upstream_unavailable",
        "title": "Bad Gateway",
        "status": 502,
        "code": "upstream_unavailable",
        "detail": "The rooms service cannot be reached.",
        "instance": "/api/rooms/abc",
    }
    assert answer.headers("x-correlation-id") == ["c-502"]


async def test_a_service_that_does_not_answer_in_time_gives_504_problem_json() -> None:
    stalled: list[asyncio.StreamWriter] = []

    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        stalled.append(writer)  # accept the connection, read the request, say nothing

    server = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with ServiceProxy({"messages": f"http://127.0.0.1:{port}"}, timeout=0.3) as proxy:
            answer = await call(proxy, "GET", "/api/messages/rooms/r/messages")
    finally:
        for writer in stalled:
            writer.close()
        server.close()
        await server.wait_closed()
    assert answer.status == 504
    assert answer.headers("content-type") == [PROBLEM_JSON]
    body = answer.json()
    assert (body["code"], body["status"], body["title"]) == ("upstream_timeout", 504, "Gateway Timeout")


async def test_a_service_that_breaks_off_mid_response_drops_the_client_connection(
    proxy: ServiceProxy, upstream: Upstream
) -> None:
    async def produce() -> AsyncIterator[bytes]:
        yield b"partial"
        raise httpx.ReadError("connection reset")

    async def breaking(request: httpx.Request, body: bytes) -> httpx.Response:
        return httpx.Response(200, headers={"Content-Length": "100"}, stream=Chunks(produce))

    upstream.respond = breaking
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    with pytest.raises(UpstreamBroken, match="rooms: ReadError"):
        await proxy(scope_for("GET", "/api/rooms/x", headers=[("host", "g")]), receive, send)
    assert not any(m["type"] == "http.response.body" and not m.get("more_body") for m in sent), (
        "a truncated body must not be completed as if whole"
    )


@pytest.mark.parametrize(
    "raw_path",
    [
        "/api/auth/../rooms/r1/join",
        "/api/auth/%2e%2e/rooms/r1/join",
        "/api/auth/%2E%2E%2Frooms%2Fr1",
        "/api/auth/x/..%2F..%2Frooms",
        "/api/auth/.%2e/.%2e/admin",
        "/api/auth/./me",
        "/api/auth/..",
        "/api/auth/..%5Crooms",
        "/api/auth/x%5C..%5Cy",
    ],
)
async def test_a_path_that_could_resolve_outside_the_service_prefix_is_refused(
    proxy: ServiceProxy, upstream: Upstream, raw_path: str
) -> None:
    answer = await call(proxy, "GET", raw_path)
    assert answer.status == 400
    assert answer.headers("content-type") == [PROBLEM_JSON]
    assert answer.json()["code"] == "bad_request"
    assert upstream.seen == [], "nothing reaches any service"


@pytest.mark.parametrize(
    "raw_path",
    [
        "/api/auth//evil.example/steal",
        "/api/auth/@evil.example",
        "/api/auth/http://evil.example/",
        "/api/auth/%2F%2Fevil",
    ],
)
async def test_the_upstream_is_always_the_configured_host_under_the_service_prefix(
    proxy: ServiceProxy, upstream: Upstream, raw_path: str
) -> None:
    await call(proxy, "GET", raw_path)
    url = upstream.last.url
    assert (url.scheme, url.host, url.port) == ("http", "auth.internal", 8001)
    assert url.raw_path == raw_path.encode(), "forwarded verbatim, not resolved against the base"
    assert unquote(url.path).startswith("/api/auth/")


async def test_a_base_url_with_a_path_prefixes_the_forwarded_path(upstream: Upstream) -> None:
    async with ServiceProxy({"rooms": "https://edge.internal/chat-rooms/"}, timeout=5, transport=upstream) as proxy:
        await call(proxy, "GET", "/api/rooms/r1", query="limit=5")
    assert str(upstream.last.url) == "https://edge.internal/chat-rooms/api/rooms/r1?limit=5"


async def test_redirects_are_passed_back_and_cookies_never_kept_in_the_shared_client(
    proxy: ServiceProxy, upstream: Upstream
) -> None:
    async def redirect(request: httpx.Request, body: bytes) -> httpx.Response:
        return httpx.Response(
            302,
            headers=[("Location", "https://accounts.example/authorize?x=1"), ("Set-Cookie", "state=s1; Path=/")],
        )

    upstream.respond = redirect
    answer = await call(proxy, "GET", "/api/auth/oidc/start")
    assert answer.status == 302
    assert answer.headers("location") == ["https://accounts.example/authorize?x=1"]
    assert answer.headers("set-cookie") == ["state=s1; Path=/"]
    assert len(upstream.seen) == 1, "the redirect is the client's to follow"

    upstream.respond = _ok
    await call(proxy, "GET", "/api/auth/me")
    assert header(upstream.last, "cookie") == [], "one user's cookie never rides on another user's request"


async def test_only_paths_under_a_proxied_prefix_are_forwarded(proxy: ServiceProxy, upstream: Upstream) -> None:
    local: list[str] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        local.append(scope["path"])
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    front = proxy.in_front_of(app)
    for path in ("/api/auth", "/api/auth/", "/api/rooms/x/y"):
        assert (await call(front, "GET", path)).status == 200, path
    for path in ("/api/authx", "/api/gateway/", "/api/messages/rooms", "/healthz", "/api", "/"):
        assert (await call(front, "GET", path)).status == 204, path
    assert [str(r.url.path) for r, _ in upstream.seen] == ["/api/auth", "/api/auth/", "/api/rooms/x/y"]
    assert local == ["/api/authx", "/api/gateway/", "/api/messages/rooms", "/healthz", "/api", "/"]


async def test_lifespan_and_websocket_scopes_go_to_the_inner_app(proxy: ServiceProxy) -> None:
    seen: list[str] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        seen.append(scope["type"])

    front = proxy.in_front_of(app)
    await front({"type": "lifespan"}, _never, _discard)
    await front({"type": "websocket", "path": "/api/auth/ws"}, _never, _discard)
    assert seen == ["lifespan", "websocket"]


async def test_a_head_request_and_an_empty_get_carry_no_body(proxy: ServiceProxy, upstream: Upstream) -> None:
    for method in ("GET", "HEAD", "DELETE"):
        await call(proxy, method, "/api/rooms/r1")
        request, body = upstream.seen[-1]
        assert body == b""
        assert header(request, "transfer-encoding") == [], method
        assert header(request, "content-length") == [], method


async def test_a_stopped_proxy_answers_503_and_opens_nothing(upstream: Upstream) -> None:
    proxy = ServiceProxy(UPSTREAMS, timeout=5, transport=upstream)
    answer = await call(proxy, "GET", "/api/rooms")
    assert answer.status == 503
    assert answer.json()["code"] == "unavailable"
    await proxy.start()
    await proxy.aclose()
    assert (await call(proxy, "GET", "/api/rooms")).status == 503
    assert upstream.seen == []


@pytest.mark.parametrize(
    ("upstreams", "message"),
    [
        ({"rooms": "ftp://rooms"}, "http"),
        ({"rooms": "http://rooms?x=1"}, "http"),
        ({"rooms": "http://user:pw@rooms"}, "http"),
        ({"rooms": "rooms:8000"}, "http"),
        ({"../x": "http://rooms"}, "service name"),
    ],
)
def test_base_urls_and_names_are_checked_when_built(upstreams: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ServiceProxy(upstreams, timeout=1)


async def _never() -> Message:
    await asyncio.sleep(3600)
    raise AssertionError("unreachable")


async def _discard(message: Message) -> None:
    return None


async def test_a_client_that_leaves_mid_body_ends_the_forwarded_request_quietly() -> None:
    got = asyncio.Event()

    async def reader(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1)
        got.set()
        await reader.read()  # until the proxy gives up on the connection
        writer.close()

    server = await asyncio.start_server(reader, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    sent: list[Message] = []
    calls = 0

    async def receive() -> Message:
        nonlocal calls
        calls += 1
        if calls == 1:
            return {"type": "http.request", "body": b"x" * 1000, "more_body": True}
        await got.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = scope_for("POST", "/api/rooms", headers=[("host", "g"), ("content-length", "5000")])
    try:
        async with ServiceProxy({"rooms": f"http://127.0.0.1:{port}"}, timeout=5) as proxy:
            await asyncio.wait_for(proxy(scope, receive, send), 5)
    finally:
        server.close()
        await server.wait_closed()
    assert sent == [], "nobody is left to answer"
