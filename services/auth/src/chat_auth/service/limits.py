"""Rate limits and login throttling, counted in the store so every instance shares them."""

from __future__ import annotations

import math
from datetime import datetime

from chat_auth.domain.errors import AuthError
from chat_auth.domain.throttle import (
    ACCOUNT_FREE_FAILURES,
    FREE_FAILURES,
    MAX_ACCOUNT_DELAY,
    MAX_PAIR_DELAY,
    Limit,
    backoff,
)
from chat_auth.service.ports import Tx


async def enforce(tx: Tx, key: str, limit: Limit, now: datetime) -> None:
    """Count one event; refuse with 429 and retry_after when the window's budget is spent."""
    count = await tx.hit(key, window=limit.window, now=now)
    if count > limit.count:
        window = limit.window.total_seconds()
        elapsed = now.timestamp() % window
        raise AuthError(
            "rate_limited",
            "Too many attempts; try again later.",
            status=429,
            retry_after=float(math.ceil(window - elapsed)),
        )


def _pair_key(account: str, ip: str) -> str:
    return f"login:{account}:{ip}"


def _account_key(account: str) -> str:
    return f"login:{account}"


async def check_login_delay(tx: Tx, *, account: str, ip: str, now: datetime) -> None:
    """Refuse (429) while an earned delay for this account from this address, or for the account, runs."""
    waits = []
    for key, free, cap in (
        (_pair_key(account, ip), FREE_FAILURES, MAX_PAIR_DELAY),
        (_account_key(account), ACCOUNT_FREE_FAILURES, MAX_ACCOUNT_DELAY),
    ):
        failures = await tx.failures(key)
        delay = backoff(failures.count, free=free, cap=cap)
        if delay and failures.last_at is not None:
            remaining = delay - (now - failures.last_at).total_seconds()
            if remaining > 0:
                waits.append(remaining)
    if waits:
        raise AuthError(
            "login_throttled",
            "Too many failed attempts; wait before trying again.",
            status=429,
            retry_after=float(math.ceil(max(waits))),
        )


async def record_login_failure(tx: Tx, *, account: str, ip: str, now: datetime) -> None:
    await tx.record_failure(_pair_key(account, ip), now)
    await tx.record_failure(_account_key(account), now)


async def clear_login_failures(tx: Tx, *, account: str, ip: str) -> None:
    await tx.clear_failures(_pair_key(account, ip))
    await tx.clear_failures(_account_key(account))
