"""Entry point of `chat-cli` (the commands arrive with the clients issue)."""

from __future__ import annotations


def main(argv: list[str] | None = None) -> int:
    print("chat-cli: not built yet")
    return 1
