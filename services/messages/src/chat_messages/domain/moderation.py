"""A deployment's moderation policy: patterns a message must not match. The rejection names the rule."""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cache

from chat_messages.domain.errors import Rejection


class Moderation:
    """Case-insensitive regular expressions, checked in order; the first match refuses the message."""

    def __init__(self, patterns: Sequence[str]) -> None:
        self._rules = [
            (index + 1, pattern, re.compile(pattern, re.IGNORECASE)) for index, pattern in enumerate(patterns)
        ]

    def check(self, body: str) -> None:
        for number, pattern, rule in self._rules:
            if rule.search(body):
                raise Rejection("blocked", f"Blocked by moderation rule {number} ({pattern}).")


@cache
def moderation_for(patterns: tuple[str, ...]) -> Moderation:
    """The compiled policy for these patterns (compiled once per distinct set)."""
    return Moderation(patterns)


def validate_patterns(patterns: Sequence[str]) -> list[str]:
    """Compile each pattern once at start-up so a bad one stops the service with a readable error."""
    for index, pattern in enumerate(patterns):
        try:
            re.compile(pattern, re.IGNORECASE)
        except re.error as exc:
            raise ValueError(f"blocked_patterns[{index}] is not a valid regular expression: {exc}") from exc
    return list(patterns)
