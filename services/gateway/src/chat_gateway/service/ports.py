"""What the gateway needs from outside, as protocols: the messages service's history (for recovery) and the rooms
service's memberships (for a projection miss). The HTTP adapters are in ``adapters/``; ``chat up`` hands in
in-process ones, and the tests in-memory ones (``chat_gateway.testing``)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Protocol


class HistoryUnavailable(Exception):
    """The messages service could not answer."""


class History(Protocol):
    async def after(self, room_id: uuid.UUID, after_seq: int, limit: int, *, token: str) -> list[dict[str, Any]]:
        """Messages with seq > ``after_seq``, oldest first, at most ``limit``."""

    async def last_seq(self, room_id: uuid.UUID, *, token: str) -> int: ...

    async def aclose(self) -> None: ...


class RoomsUnavailable(Exception):
    """The rooms service could not answer."""


@dataclass(frozen=True)
class Membership:
    role: str
    room_version: int
    blocked: bool = False
    """A direct room closed by a block between its two people, at ``room_version``."""


class Rooms(Protocol):
    async def membership(self, room_id: uuid.UUID, *, token: str) -> Membership | None:
        """The caller's membership of ``room_id`` (None: not a member, or no such room)."""

    async def rooms_of(self, *, token: str) -> dict[uuid.UUID, Membership]:
        """Every room the caller is a member of, with that membership."""

    async def aclose(self) -> None: ...
