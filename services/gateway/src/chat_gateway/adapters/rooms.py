"""Asking the rooms service whether a user is a member, with the user's own token (a projection miss)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Protocol

import httpx


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

    async def aclose(self) -> None: ...


class HttpRooms:
    def __init__(self, base_url: str, *, timeout: float = 5.0) -> None:
        self._base = base_url.rstrip("/")
        self._client = httpx.AsyncClient(timeout=timeout, trust_env=False)  # internal calls: no environment proxy

    async def membership(self, room_id: uuid.UUID, *, token: str) -> Membership | None:
        try:
            response = await self._client.get(
                f"{self._base}/api/rooms/{room_id}", headers={"Authorization": f"Bearer {token}"}
            )
        except httpx.HTTPError as exc:
            raise RoomsUnavailable(str(exc)) from exc
        if response.status_code in (403, 404):
            return None
        if response.status_code != 200:
            raise RoomsUnavailable(f"rooms service answered {response.status_code}")
        room = response.json()
        role = room.get("my_role")
        if not role:
            return None
        return Membership(role=str(role), room_version=int(room["version"]), blocked=bool(room.get("blocked")))

    async def aclose(self) -> None:
        await self._client.aclose()
