"""Mail transports: real SMTP (optionally TLS) for deployments, the log for the all-in-one dev mode."""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import make_msgid

import structlog

from chat_auth.service.ports import Email
from chat_auth.settings import AuthSettings

log = structlog.get_logger("chat.auth.mail")


class ConsoleMailer:
    """Prints each email to the log (codes included): for local development only, refused in prod mode."""

    async def send(self, email: Email) -> None:
        log.warning("mail.console", to=email.to, subject=email.subject, text=email.text)


class SmtpMailer:
    """Sends multipart (text + HTML) mail over SMTP with optional STARTTLS or implicit TLS and login."""

    def __init__(self, settings: AuthSettings) -> None:
        self._settings = settings

    def _message(self, email: Email) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self._settings.mail_from
        message["To"] = email.to
        message["Subject"] = email.subject
        message["Message-ID"] = make_msgid(domain=self._settings.mail_from.rsplit("@", 1)[-1].strip("> "))
        message.set_content(email.text)
        message.add_alternative(email.html, subtype="html")
        return message

    def _send_blocking(self, message: EmailMessage) -> None:
        s = self._settings
        context = ssl.create_default_context()
        smtp: smtplib.SMTP
        if s.smtp_security == "tls":
            smtp = smtplib.SMTP_SSL(s.smtp_host, s.smtp_port, timeout=s.smtp_timeout_seconds, context=context)
        else:
            smtp = smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=s.smtp_timeout_seconds)
        with smtp:
            if s.smtp_security == "starttls":
                smtp.starttls(context=context)
            if s.smtp_username:
                password = s.smtp_password.get_secret_value() if s.smtp_password else ""
                smtp.login(s.smtp_username, password)
            smtp.send_message(message)

    async def send(self, email: Email) -> None:
        message = self._message(email)
        await asyncio.to_thread(self._send_blocking, message)
        log.info("mail.sent", to_domain=email.to.rsplit("@", 1)[-1], subject=email.subject)


def mailer_for(settings: AuthSettings) -> ConsoleMailer | SmtpMailer:
    return SmtpMailer(settings) if settings.email_transport == "smtp" else ConsoleMailer()
