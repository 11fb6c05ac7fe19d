"""Signing in through the browser (Google or any OIDC provider the server is configured with), for a terminal:
the loopback flow of docs/auth-oidc.md. The server redirects the browser to a listener on 127.0.0.1, and the
one-time code it carries is worth nothing without this process's PKCE verifier."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import secrets
import webbrowser
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from chat_cli.api import Api
from chat_cli.errors import Refused

CALLBACK_TIMEOUT_SECONDS = 300.0
_PAGE = (
    "<!doctype html><meta charset=utf-8><title>chat-cli</title>"
    "<p>{message} You can close this tab and return to the terminal.</p>"
)


def pkce_pair() -> tuple[str, str]:
    """A verifier (64 URL-safe characters) and its S256 challenge."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class Loopback:
    """A one-shot HTTP listener on 127.0.0.1 that waits for ``GET /callback?…``."""

    def __init__(self) -> None:
        self.result: asyncio.Future[dict[str, str]] = asyncio.get_running_loop().create_future()
        self.server: asyncio.Server | None = None
        self.port = 0

    async def __aenter__(self) -> Loopback:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = int(self.server.sockets[0].getsockname()[1])
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(10):
                request_line = (await reader.readline()).decode("latin-1")
                while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                    pass  # headers: nothing in them matters here
            parts = request_line.split(" ")
            target = urlsplit(parts[1]) if len(parts) >= 2 else urlsplit("/")
            if parts[0] != "GET" or target.path != "/callback" or self.result.done():
                await _respond(writer, 404, "Nothing here.")
                return
            query = {k: v[0] for k, v in parse_qs(target.query).items()}
            failed = query.get("error") or query.get("oidc_error")
            await _respond(writer, 200, f"Sign-in failed ({failed})." if failed else "Signed in.")
            self.result.set_result(query)
        except (TimeoutError, ConnectionError, UnicodeError):
            pass
        finally:
            with contextlib.suppress(ConnectionError):
                writer.close()


async def _respond(writer: asyncio.StreamWriter, status: int, message: str) -> None:
    body = _PAGE.format(message=message).encode()
    head = (
        f"HTTP/1.1 {status} {'OK' if status == 200 else 'Not Found'}\r\n"
        "Content-Type: text/html; charset=utf-8\r\nCache-Control: no-store\r\n"
        "Referrer-Policy: no-referrer\r\nConnection: close\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    writer.write(head.encode() + body)
    await writer.drain()


async def sign_in_with_browser(
    api: Api,
    *,
    show: Callable[[str], None],
    ask_password: Callable[[], str],
    open_browser: bool = True,
    timeout: float = CALLBACK_TIMEOUT_SECONDS,
) -> dict[str, Any]:
    """Run the loopback flow; answer a ``TokenResponse`` or ``{mfa_required, mfa_token}``."""
    verifier, challenge = pkce_pair()
    async with Loopback() as loopback:
        query = urlencode({"mode": "cli", "port": loopback.port, "code_challenge": challenge})
        url = f"{api.server}/api/auth/oidc/start?{query}"
        show(f"Sign in in your browser: {url}")
        if open_browser:
            with contextlib.suppress(Exception):  # no browser here: the printed URL is the way
                await asyncio.to_thread(webbrowser.open, url)
        try:
            answer = await asyncio.wait_for(loopback.result, timeout)
        except TimeoutError:
            raise Refused("timeout", "no answer from the browser in time") from None
    if answer.get("error") or answer.get("oidc_error"):
        code = answer.get("error") or answer.get("oidc_error") or "oidc_error"
        raise Refused(code, "the browser sign-in failed")
    if answer.get("one_time_code"):
        body = {"one_time_code": answer["one_time_code"], "code_verifier": verifier}
        return dict(await api.request("POST", "/api/auth/oidc/exchange", json=body, authenticated=False))
    if answer.get("mfa_token"):
        return {"mfa_required": True, "mfa_token": answer["mfa_token"]}
    if answer.get("link_required"):
        show("An account with this email already has a password: enter it once to link the two.")
        body = {"link_token": answer["link_required"], "password": ask_password()}
        return dict(await api.request("POST", "/api/auth/oidc/link", json=body, authenticated=False))
    raise Refused("oidc_error", f"unexpected answer from the server: {sorted(answer)}")
