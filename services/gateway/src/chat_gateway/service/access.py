"""Who may use a room here: the memberships this instance projects from chat.rooms.events, and the rooms service
asked with the user's own token when the projection has not heard of one yet."""

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
        """None when the user is a member; asks the rooms service when this instance has not heard of it yet."""
        if self.memberships.role(room, connection.user.sub) is not None:
            return None
        try:
            found = await self.rooms.membership(room, token=connection.token)
        except RoomsUnavailable:
            return fail("unavailable", "Membership cannot be checked right now; try again.", retry_after=2)
        if found is None:
            return fail("not_member", "You are not a member of this room (or it does not exist).")
        self.memberships.learn(room, connection.user.sub, found.role, found.room_version, blocked=found.blocked)
        # Learnt after the user's sockets connected (a projection still replaying, or none to replay after an
        # all-in-one restart): the room has not been told their status yet.
        await self.presence.member_joined(room, connection.user.sub)
        return None

    def should_learn_rooms(self, user: uuid.UUID) -> bool:
        """Whether to ask for the user's rooms at their connection: this instance knows them in none yet."""
        if user in self.rooms_asked or self.memberships.rooms_of(user):
            return False
        self.rooms_asked.add(user)
        return True

    async def learn_rooms(self, user: uuid.UUID, token: str) -> None:
        """Learn the rooms of a user this instance knows in none (after an all-in-one restart there are no join
        events to replay), so that their presence reaches all their rooms, not only those their client subscribes
        to: a terminal client opens one."""
        try:
            found = await self.rooms.rooms_of(token=token)
        except RoomsUnavailable as exc:
            self.rooms_asked.discard(user)  # asked again at their next connection
            log.warning("gateway.rooms_unavailable", user_id=str(user), error=str(exc))
            return
        for room, membership in found.items():
            # An answer no newer than the room's last event is no news: they may have left since.
            newer = membership.room_version > self.memberships.versions.get(room, 0)
            if newer and self.memberships.role(room, user) is None:
                self.memberships.learn(room, user, membership.role, membership.room_version, blocked=membership.blocked)
                await self.presence.member_joined(room, user)
