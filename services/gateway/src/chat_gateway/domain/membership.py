"""Who is in which room, as the gateway learns it from chat.rooms.events (each instance keeps its own copy)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from chat_contracts import rooms as ev
from chat_contracts.base import Contract


@dataclass
class Memberships:
    """Room → members with their role; an event applies only when newer than the room's last applied version."""

    members: dict[uuid.UUID, dict[uuid.UUID, str]] = field(default_factory=dict)
    versions: dict[uuid.UUID, int] = field(default_factory=dict)

    def role(self, room_id: uuid.UUID, user_id: uuid.UUID) -> str | None:
        return self.members.get(room_id, {}).get(user_id)

    def apply(self, data: Contract) -> tuple[uuid.UUID, uuid.UUID] | None:
        """Apply a room event; returns (room, user) when someone lost their membership (their sockets must leave)."""
        room_id = getattr(data, "room_id", None)
        version = getattr(data, "room_version", None)
        if not isinstance(room_id, uuid.UUID) or not isinstance(version, int):
            return None
        if version <= self.versions.get(room_id, 0):
            return None
        self.versions[room_id] = version
        room = self.members.setdefault(room_id, {})
        if isinstance(data, ev.MemberJoined):
            room[data.user_id] = data.role
        elif isinstance(data, ev.MemberRoleChanged):
            if data.user_id in room:
                room[data.user_id] = data.new_role
        elif isinstance(data, ev.MemberLeft | ev.MemberKicked | ev.MemberBanned):
            room.pop(data.user_id, None)
            return room_id, data.user_id
        elif isinstance(data, ev.RoomDeleted):
            self.members.pop(room_id, None)
        return None
