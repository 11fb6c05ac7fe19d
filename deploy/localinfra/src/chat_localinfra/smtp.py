"""A receiving side for real SMTP in tests: aiosmtpd hands each message to ``SmtpInbox``, which keeps it parsed."""

from __future__ import annotations

import asyncio
import re
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any


class SmtpInbox:
    """Every message a real local SMTP server (aiosmtpd) received, parsed."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:
        content = envelope.original_content or envelope.content
        raw = content if isinstance(content, bytes) else str(content).encode()
        parsed = BytesParser(policy=policy.default).parsebytes(raw)
        self.messages.append(parsed)
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if str(m["To"]).lower() == address.lower()]

    async def code_for(self, address: str, *, timeout: float = 15.0) -> str:
        """The six-digit code in the subject of a message to ``address``, waiting up to ``timeout`` seconds."""
        async with asyncio.timeout(timeout):
            while True:
                for message in self.to(address):
                    found = re.search(r"\b(\d{6})\b", str(message["Subject"]))
                    if found:
                        return found.group(1)
                await asyncio.sleep(0.05)
