"""Who may use a room here: the memberships this instance heard of on chat.rooms.events since it started, and the
rooms service asked with the user's own token for the rest (docs/decisions/0014)."""

from __future__ import annotations

import uuid

import structlog

from chat_gateway.domain.membership import Memberships
from chat_gateway.service.connections import Connection
from chat_gateway.service.ports import Rooms, RoomsUnavailable
from chat_gateway.service.presence import Presence
from chat_gateway.service.protocol import Ack, fail

log = structlog.get_logger("chat.gateway")


class Access:
    def __init__(self, *, memberships: Memberships, rooms: Rooms, presence: Presence) -> None:
        self.memberships = memberships
        self.rooms = rooms
        self.presence = presence
        self.rooms_asked: set[uuid.UUID] = set()
        """Users whose rooms this instance asked the rooms service for (see ``learn_rooms``)."""

    async def require_member(self, room: uuid.UUID, connection: Connection) -> Ack | None:
        """None when the user is a member; asks the rooms service when this instance has not heard of it: a room
        joined before the instance started, or joined so recently that its event is still on the way."""
        user = connection.user.sub
        if self.memberships.role(room, user) is not None:
            return None
        try:
            with self.memberships.question(user):
                found = await self.rooms.membership(room, token=connection.token)
                if found is None:  # not a member when asked, unless an event applied since says they joined
                    role = self.memberships.role(room, user)
                else:
                    role = self.memberships.learn(room, user, found.role, found.room_version, blocked=found.blocked)
        except RoomsUnavailable:
            return fail("unavailable", "Membership cannot be checked right now; try again.", retry_after=2)
        if role is None:
            return fail("not_member", "You are not a member of this room (or it does not exist).")
        # Learnt after the user's sockets connected: the room has not been told their status yet.
        await self.presence.member_joined(room, user)
        return None

    def should_learn_rooms(self, user: uuid.UUID) -> bool:
        """Whether to ask for the user's rooms at their connection: the first time they connect to this instance.
        What it heard of them from events since it started may be only part of it."""
        if user in self.rooms_asked:
            return False
        self.rooms_asked.add(user)
        return True

    async def learn_rooms(self, user: uuid.UUID, token: str) -> None:
        """Learn every room of a user who connects here (the instance read no events from before it started), so
        that their presence reaches all their rooms, not only those their client subscribes to: a terminal client
        opens one. Events kept them current since."""
        joined: list[uuid.UUID] = []
        try:
            with self.memberships.question(user):
                found = await self.rooms.rooms_of(token=token)
                for room, membership in found.items():
                    if self.memberships.role(room, user) is not None:
                        continue  # known here already, from an event at least as new
                    learnt = self.memberships.learn(
                        room, user, membership.role, membership.room_version, blocked=membership.blocked
                    )
                    if learnt is not None:
                        joined.append(room)
        except RoomsUnavailable as exc:
            self.rooms_asked.discard(user)  # asked again at their next connection
            log.warning("gateway.rooms_unavailable", user_id=str(user), error=str(exc))
            return
        for room in joined:
            await self.presence.member_joined(room, user)
