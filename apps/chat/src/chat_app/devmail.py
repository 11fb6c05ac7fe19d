"""Dev mode's mail: every email printed as one line on the console and kept in a small in-memory mailbox served
as a page, so someone trying the product finds their code without an SMTP server or a log to search.

The launcher composes this only in dev mode (``chat_app.compose.dev_mailbox_enabled``); in any other mode the
page's path does not exist. The page is plain escaped HTML with no script and a CSP that allows nothing but its
own stylesheet.
"""

from __future__ import annotations

import base64
import hashlib
import html
import sys
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

if TYPE_CHECKING:
    from chat_auth.service.ports import Email, Mailer

MAILBOX_PATH = "/dev/mailbox"
KEPT = 100
"""How many emails the mailbox keeps; older ones are dropped (it is a dev aid, not an archive)."""


@dataclass(frozen=True, slots=True)
class Delivered:
    """One email as the mailbox shows it."""

    at: datetime
    email: Email


class DevMailbox:
    """The last ``KEPT`` emails, in memory (a restart empties it)."""

    def __init__(self) -> None:
        self._kept: deque[Delivered] = deque(maxlen=KEPT)

    def add(self, delivered: Delivered) -> None:
        self._kept.append(delivered)

    def newest_first(self) -> list[Delivered]:
        return list(reversed(self._kept))


def printable(text: str) -> str:
    """``text`` safe for a terminal: an address may hold control characters (escape sequences), shown as ``\\x..``."""
    return "".join(ch if ch.isprintable() else f"\\x{ord(ch):02x}" for ch in text)


def one_line(email: Email) -> str:
    """How the console shows an email: its code when it carries one, else its subject."""
    if email.code is not None:
        return printable(f"code for {email.to}: {email.code}")
    return printable(f"mail for {email.to}: {email.subject}")


def print_line(line: str) -> None:
    print(line, file=sys.stdout, flush=True)


def utc_now() -> datetime:
    return datetime.now(UTC)


class DevMailer:
    """A ``Mailer`` that keeps each email in the mailbox and prints it as one line, then hands it to ``relay``
    when one is configured (dev mode with SMTP: the mail still goes out)."""

    def __init__(
        self,
        mailbox: DevMailbox,
        *,
        relay: Mailer | None = None,
        say: Callable[[str], None] = print_line,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._mailbox = mailbox
        self._relay = relay
        self._say = say
        self._clock = clock

    async def send(self, email: Email) -> None:
        self._mailbox.add(Delivered(at=self._clock(), email=email))
        self._say(one_line(email))
        if self._relay is not None:
            await self._relay.send(email)


STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:48rem;margin:2rem auto;padding:0 1rem;color:#1b1b1b}"
    "article{border:1px solid #ccc;border-radius:6px;padding:.5rem 1rem;margin:1rem 0}"
    "h2{font-size:1.05rem;margin:.5rem 0}dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem}"
    "dt{color:#555}dd{margin:0}.code{font:bold 1.4rem monospace;letter-spacing:.15em}"
    "pre{white-space:pre-wrap;overflow-wrap:anywhere;background:#f5f5f5;padding:.5rem}"
)
_STYLE_HASH = base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Cache-Control": "no-store",  # codes are secrets, even in dev
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


def _article(delivered: Delivered) -> str:
    email = delivered.email
    e = html.escape
    code = f'<dt>code</dt><dd class="code">{e(email.code)}</dd>' if email.code is not None else ""
    return (
        f"<article><h2>{e(email.subject)}</h2><dl>"
        f'<dt>time</dt><dd><time datetime="{e(delivered.at.isoformat())}">'
        f"{e(delivered.at.strftime('%Y-%m-%d %H:%M:%S UTC'))}</time></dd>"
        f"<dt>to</dt><dd>{e(email.to)}</dd>{code}</dl><pre>{e(email.text)}</pre></article>"
    )


def render(emails: Sequence[Delivered]) -> str:
    """The mailbox page: ``emails`` in the order given, every value escaped."""
    listing = "".join(_article(d) for d in emails) or "<p>No email yet. Sign up, then reload this page.</p>"
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>chat: dev mailbox</title><style>{STYLE}</style></head><body>"
        "<h1>Dev mailbox</h1>"
        f"<p>Dev mode only: the last {KEPT} emails this server sent, newest first, kept in memory until it "
        "stops. Reload for new mail.</p>"
        f"{listing}</body></html>"
    )


def mailbox_router(mailbox: DevMailbox) -> APIRouter:
    """``GET /dev/mailbox``, left out of the OpenAPI document (it is not part of the product's API)."""
    router = APIRouter()

    @router.get(MAILBOX_PATH, include_in_schema=False)
    async def dev_mailbox() -> HTMLResponse:
        return HTMLResponse(render(mailbox.newest_first()), headers=PAGE_HEADERS)

    return router
