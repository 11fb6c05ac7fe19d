"""The auth service's bus entrypoints: none. Auth reads no topic; it only publishes chat.users.events, through its
outbox (``chat_runtime.outbox``). The module is here so every service's consumers are found in the same place."""

from __future__ import annotations

from collections.abc import Sequence

from chat_runtime.module import BusHandler


def bus_handlers() -> Sequence[BusHandler]:
    return ()
