"""The messages service's history and the rooms service's memberships, as the gateway's ports see them, kept in
memory: the users are told apart by their tokens' ``sub`` (signatures are the verifier's business, not these)."""

from __future__ import annotations

import uuid
from typing import Any

import jwt

from chat_gateway.service.ports import Membership


class MemoryHistory:
    """Rooms' messages as history pages show them, by room."""

    def __init__(self) -> None:
        self.rooms: dict[uuid.UUID, list[dict[str, Any]]] = {}

    async def after(self, room_id: uuid.UUID, after_seq: int, limit: int, *, token: str) -> list[dict[str, Any]]:
        return [m for m in self.rooms.get(room_id, []) if m["seq"] > after_seq][:limit]

    async def last_seq(self, room_id: uuid.UUID, *, token: str) -> int:
        return max((m["seq"] for m in self.rooms.get(room_id, [])), default=0)

    async def aclose(self) -> None:
        return None


class MemoryRooms:
    """What the rooms service would answer, by (room, user), and the room lists it gives; counts the questions
    about one room."""

    def __init__(self) -> None:
        self.answers: dict[tuple[uuid.UUID, uuid.UUID], Membership] = {}
        self.listed: dict[uuid.UUID, dict[uuid.UUID, Membership]] = {}
        """User → the rooms ``rooms_of`` lists for them (none unless a test says)."""
        self.asked = 0

    async def membership(self, room_id: uuid.UUID, *, token: str) -> Membership | None:
        self.asked += 1
        return self.answers.get((room_id, user_of(token)))

    async def rooms_of(self, *, token: str) -> dict[uuid.UUID, Membership]:
        return dict(self.listed.get(user_of(token), {}))

    async def aclose(self) -> None:
        return None


def user_of(token: str) -> uuid.UUID:
    """The user a token is for, unverified."""
    return uuid.UUID(jwt.decode(token, options={"verify_signature": False})["sub"])
