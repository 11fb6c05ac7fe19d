"""The gateway's questions to the rooms and messages services, answered inside one process (``chat up``): the same
use cases their HTTP routes run, with the same token checks and the same answers, without an HTTP round trip to
the very server that asks.

In split mode the gateway asks over HTTP (``chat_gateway.adapters.history.HttpHistory``, ``…rooms.HttpRooms``);
the integration tests run the same scenarios in both modes.
"""

from __future__ import annotations

import uuid
from typing import Any

from chat_gateway.service.ports import HistoryUnavailable, Membership, RoomsUnavailable
from chat_messages.entrypoints.http import message_out
from chat_messages.service import reading
from chat_messages.service.context import MessagesContext, Reader
from chat_rooms.domain.search import MAX_PAGE as ROOMS_PAGE
from chat_rooms.service import rooms as rooms_service
from chat_rooms.service.context import Actor, RoomsContext
from chat_runtime.errors import CodedError
from chat_runtime.principal import verify_access
from chat_runtime.problems import store_outage_errors

PAGE = reading.MAX_PAGE
OUTAGES = store_outage_errors()
"""What the HTTP routes answer 503 (a store unreachable): the same is "unavailable" here."""


class InProcessHistory:
    """``History`` for the gateway, read through the messages service's reading use cases."""

    def __init__(self, context: MessagesContext) -> None:
        self._context = context

    async def _reader(self, token: str) -> Reader:
        try:
            verified = await verify_access(self._context.verifier, token)
        except CodedError as exc:
            raise HistoryUnavailable(exc.code) from exc
        return Reader(user_id=verified.sub)

    async def after(self, room_id: uuid.UUID, after_seq: int, limit: int, *, token: str) -> list[dict[str, Any]]:
        reader = await self._reader(token)
        found: list[dict[str, Any]] = []
        cursor = after_seq
        try:
            while len(found) < limit:
                page = await reading.history(
                    self._context,
                    reader,
                    room_id,
                    before_seq=None,
                    after_seq=cursor,
                    limit=min(PAGE, limit - len(found)),
                    newest_first=False,
                )
                if not page:
                    break
                found.extend(message_out(m).model_dump(mode="json") for m in page)
                cursor = page[-1].seq
        except CodedError as exc:
            raise HistoryUnavailable(exc.code) from exc
        except OUTAGES as exc:
            raise HistoryUnavailable(f"message store unavailable: {exc}") from exc
        return found

    async def last_seq(self, room_id: uuid.UUID, *, token: str) -> int:
        reader = await self._reader(token)
        try:
            page = await reading.history(
                self._context, reader, room_id, before_seq=None, after_seq=None, limit=1, newest_first=True
            )
        except CodedError as exc:
            raise HistoryUnavailable(exc.code) from exc
        except OUTAGES as exc:
            raise HistoryUnavailable(f"message store unavailable: {exc}") from exc
        return page[0].seq if page else 0

    async def aclose(self) -> None:
        return None


class InProcessRooms:
    """``Rooms`` for the gateway, answered by the rooms service's use cases behind ``GET /api/rooms/{id}`` and
    ``GET /api/rooms/mine``."""

    def __init__(self, context: RoomsContext) -> None:
        self._context = context

    async def membership(self, room_id: uuid.UUID, *, token: str) -> Membership | None:
        try:
            verified = await verify_access(self._context.verifier, token)
            view = await rooms_service.get_room(self._context, Actor.from_token(verified), room_id)
        except CodedError as exc:
            if exc.status in (403, 404):  # as over HTTP: not a member, or no such room
                return None
            raise RoomsUnavailable(exc.code) from exc
        except OUTAGES as exc:
            raise RoomsUnavailable(f"rooms store unavailable: {exc}") from exc
        if view.membership is None:
            return None
        room = view.room
        return Membership(role=view.membership.role, room_version=room.version, blocked=room.blocked)

    async def rooms_of(self, *, token: str) -> dict[uuid.UUID, Membership]:
        found: dict[uuid.UUID, Membership] = {}
        after = None
        try:
            actor = Actor.from_token(await verify_access(self._context.verifier, token))
            while True:
                page = await rooms_service.my_rooms(self._context, actor, after=after, limit=ROOMS_PAGE)
                for item in page:
                    if item.role is not None:
                        room = item.room
                        found[room.id] = Membership(role=item.role, room_version=room.version, blocked=room.blocked)
                if len(page) < ROOMS_PAGE or page[-1].joined_at is None:
                    return found
                after = (page[-1].joined_at, page[-1].room.id)
        except CodedError as exc:
            raise RoomsUnavailable(exc.code) from exc
        except OUTAGES as exc:
            raise RoomsUnavailable(f"rooms store unavailable: {exc}") from exc

    async def aclose(self) -> None:
        return None
