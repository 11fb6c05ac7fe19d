"""Asking the rooms service whether a user is a member, or of which rooms, with the user's own token (a projection
miss)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from chat_gateway.service.ports import Membership, RoomsUnavailable

PAGE = 100
"""Rooms per ``GET /api/rooms/mine`` page (its largest)."""


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
        return _membership(response.json())

    async def rooms_of(self, *, token: str) -> dict[uuid.UUID, Membership]:
        found: dict[uuid.UUID, Membership] = {}
        params: dict[str, str | int] = {"limit": PAGE}
        while True:
            try:
                response = await self._client.get(
                    f"{self._base}/api/rooms/mine", params=params, headers={"Authorization": f"Bearer {token}"}
                )
            except httpx.HTTPError as exc:
                raise RoomsUnavailable(str(exc)) from exc
            if response.status_code != 200:
                raise RoomsUnavailable(f"rooms service answered {response.status_code}")
            page = response.json()
            for room in page["items"]:
                membership = _membership(room)
                if membership is not None:
                    found[uuid.UUID(room["id"])] = membership
            if not page.get("next_cursor"):
                return found
            params = {"limit": PAGE, "cursor": page["next_cursor"]}

    async def aclose(self) -> None:
        await self._client.aclose()


def _membership(room: dict[str, Any]) -> Membership | None:
    """The caller's membership from a room as the rooms service shows it (``my_role`` null: none)."""
    role = room.get("my_role")
    if not role:
        return None
    return Membership(role=str(role), room_version=int(room["version"]), blocked=bool(room.get("blocked")))
