"""The emails the service sends, and a queue that sends them off the request path.

Sending after the response keeps every "we sent you a code if…" answer equally fast whether or not an email
goes out, so response time does not reveal which addresses have accounts.
"""

from __future__ import annotations

import asyncio
import html

import structlog

from chat_auth.service.ports import Email, Mailer

log = structlog.get_logger("chat.auth.mail")


class MailQueue:
    """Sends each email in a background task; failures are logged (codes can be requested again)."""

    def __init__(self, mailer: Mailer) -> None:
        self._mailer = mailer
        self._tasks: set[asyncio.Task[None]] = set()

    def send_later(self, email: Email) -> None:
        task = asyncio.create_task(self._send(email))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, email: Email) -> None:
        try:
            await self._mailer.send(email)
        except Exception as exc:
            log.error("mail.send_failed", subject=email.subject, error=f"{type(exc).__name__}: {exc}")

    async def drain(self) -> None:
        """Wait for every queued email (shutdown and tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)


def _email(to: str, subject: str, lines: list[str], *, code: str | None = None) -> Email:
    text = "\n\n".join(lines) + "\n"
    body = "".join(f"<p>{html.escape(line)}</p>" for line in lines)
    page = f"<!doctype html><html><body>{body}</body></html>"
    return Email(to=to, subject=subject, text=text, html=page, code=code)


def verification_email(product: str, to: str, code: str, minutes: int) -> Email:
    return _email(
        to,
        f"{product}: your verification code is {code}",
        [
            f"Your {product} verification code is {code}.",
            f"It works once and expires in {minutes} minutes.",
            "If you did not create an account, ignore this email.",
        ],
        code=code,
    )


def already_registered_email(product: str, to: str) -> Email:
    return _email(
        to,
        f"{product}: someone tried to register with your address",
        [
            f"Someone tried to create a {product} account with this email address, which already has one.",
            "If it was you, sign in instead, or reset your password if you forgot it. Otherwise ignore this email.",
        ],
    )


def reset_email(product: str, to: str, code: str, minutes: int) -> Email:
    return _email(
        to,
        f"{product}: your password reset code is {code}",
        [
            f"Your {product} password reset code is {code}.",
            f"It works once and expires in {minutes} minutes. Resetting signs out every device.",
            "If you did not ask for this, ignore this email; your password stays as it is.",
        ],
        code=code,
    )


def password_changed_email(product: str, to: str) -> Email:
    return _email(
        to,
        f"{product}: your password was changed",
        [
            f"The password of your {product} account was just changed and other devices were signed out.",
            "If this was not you, reset your password now.",
        ],
    )
