"""Authenticator-app codes (TOTP, RFC 6238): which time step a code belongs to, replay protection, how secrets
and recovery codes are stored, and what an authenticator app scans."""

from __future__ import annotations

import hmac
import io
import uuid
from datetime import datetime

import pyotp
import segno

from chat_auth.domain.model import Failures
from chat_auth.domain.secrets import Sealer, code_hash, normalize_recovery_code
from chat_auth.domain.throttle import Limit

STEP_SECONDS = 30
DIGITS = 6
WINDOW = 1
"""Steps either side of now that are still accepted: authenticator clocks drift and people type slowly."""
SEAL_CONTEXT = "totp-secret"
RECOVERY_PURPOSE = "totp_recovery"


def new_secret() -> str:
    """A random base32 secret of 160 bits, the key length RFC 4226 recommends."""
    return pyotp.random_base32(length=32)


def _totp(secret: str) -> pyotp.TOTP:
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS)


def step_at(now: datetime) -> int:
    """The RFC 6238 time step (counter) that contains ``now``; ``now`` must be timezone-aware."""
    if now.tzinfo is None:
        raise ValueError("TOTP time must be timezone-aware")
    return int(now.timestamp()) // STEP_SECONDS


def code_at_step(secret: str, step: int) -> str:
    """The code an authenticator app shows during ``step``."""
    return _totp(secret).generate_otp(step)


def matching_step(secret: str, code: str, *, now: datetime, last_step: int | None, window: int = WINDOW) -> int | None:
    """The step ``code`` belongs to, if it lies within ``window`` steps of ``now`` and after ``last_step``.

    Remembering the returned step as the new ``last_step`` makes every code work once: neither it nor any
    earlier code can be replayed, even while still inside the window.
    """
    typed = code.strip()
    if len(typed) != DIGITS or not typed.isascii() or not typed.isdigit():
        return None
    current = step_at(now)
    matched: int | None = None
    for step in range(current - window, current + window + 1):
        # Every candidate is compared (no early exit) so the time taken says nothing about which step matched;
        # should two steps share a code, the later one wins, which rules out more replays.
        same = hmac.compare_digest(code_at_step(secret, step).encode(), typed.encode())
        if same and (last_step is None or step > last_step):
            matched = step
    return matched


def seal_secret(sealer: Sealer, secret: str) -> bytes:
    """The secret encrypted for storage, bound to its use."""
    return sealer.seal(secret.encode("ascii"), context=SEAL_CONTEXT)


def open_secret(sealer: Sealer, sealed: bytes) -> str:
    return sealer.open(sealed, context=SEAL_CONTEXT).decode("ascii")


def recovery_code_hash(pepper: bytes, *, user_id: uuid.UUID, code: str) -> bytes:
    """HMAC of a recovery code bound to its user; the code may be typed with spaces, upper case or no dash."""
    return code_hash(pepper, user_id=user_id, purpose=RECOVERY_PURPOSE, code=normalize_recovery_code(code))


def otpauth_uri(secret: str, *, account: str, issuer: str) -> str:
    """The ``otpauth://totp/…`` URI an authenticator app imports (Google's Key URI format)."""
    return _totp(secret).provisioning_uri(name=account, issuer_name=issuer)


def qr_svg(text: str) -> str:
    """``text`` as a QR code in a standalone SVG document (no XML declaration, so it can be inlined in HTML)."""
    buffer = io.BytesIO()
    segno.make(text, error="m", micro=False).save(buffer, kind="svg", xmldecl=False, svgns=True, scale=4, border=4)
    return buffer.getvalue().decode("utf-8")


def lockout_remaining(failures: Failures, *, limit: Limit, now: datetime) -> float:
    """Seconds until code checks may resume after ``limit.count`` wrong codes in a row; 0 when they may now."""
    if failures.count < limit.count or failures.last_at is None:
        return 0.0
    return max(0.0, (limit.window - (now - failures.last_at)).total_seconds())


def failure_streak_expired(failures: Failures, *, limit: Limit, now: datetime) -> bool:
    """True when the last wrong code is a whole window old: the next one starts a new count."""
    return failures.last_at is not None and now - failures.last_at >= limit.window
