"""Reading a room's history for recovery, from the messages service's HTTP API with the user's own token."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from chat_gateway.service.ports import HistoryUnavailable


class HttpHistory:
    """One connection pool for the gateway's lifetime (closed by ``aclose``)."""

    def __init__(self, base_url: str, *, timeout: float = 10.0) -> None:
        self._base = base_url.rstrip("/")
        self._client = httpx.AsyncClient(timeout=timeout, trust_env=False)  # internal calls: no environment proxy

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _get(self, path: str, params: dict[str, Any], token: str) -> list[dict[str, Any]]:
        try:
            response = await self._client.get(
                f"{self._base}{path}", params=params, headers={"Authorization": f"Bearer {token}"}
            )
        except httpx.HTTPError as exc:
            raise HistoryUnavailable(str(exc)) from exc
        if response.status_code != 200:
            raise HistoryUnavailable(f"messages service answered {response.status_code}")
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    async def after(self, room_id: uuid.UUID, after_seq: int, limit: int, *, token: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        cursor = after_seq
        while len(found) < limit:
            page = await self._get(
                f"/api/messages/rooms/{room_id}/messages",
                {"after_seq": cursor, "order": "oldest", "limit": min(100, limit - len(found))},
                token,
            )
            if not page:
                break
            found.extend(page)
            cursor = int(page[-1]["seq"])
        return found

    async def last_seq(self, room_id: uuid.UUID, *, token: str) -> int:
        page = await self._get(f"/api/messages/rooms/{room_id}/messages", {"order": "newest", "limit": 1}, token)
        return int(page[0]["seq"]) if page else 0
