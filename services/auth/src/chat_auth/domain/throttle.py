"""How hard to push back on repeated attempts. Numbers only; the store counts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

FREE_FAILURES = 5
"""Failed logins from one address against one account before delays start."""
MAX_PAIR_DELAY = 15 * 60.0
"""The longest delay one address can earn against one account: it grows, but never locks anyone out for good."""
ACCOUNT_FREE_FAILURES = 20
MAX_ACCOUNT_DELAY = 60.0
"""Failures against one account from every address together add at most this much: an attacker spraying
from many addresses can slow the owner down by a minute, never lock them out."""


@dataclass(frozen=True, slots=True)
class Limit:
    """At most ``count`` events per ``window``."""

    count: int
    window: timedelta


def backoff(failures: int, *, free: int, cap: float) -> float:
    """Seconds to wait after ``failures`` consecutive failures: none for the first ``free``, then doubling."""
    if failures < free:
        return 0.0
    return min(cap, float(2 ** (failures - free)))
