"""Who is in which room, as the gateway learns it from chat.rooms.events (each instance keeps its own copy).

A membership can also be learnt from the rooms service directly (when a user subscribes before this instance
has read their join from the topic). The room version the service answered with is kept for that user, and
events about the user at or below it are ignored: a late "left" followed by "joined again" must not remove
someone the service already said is a member.
"""

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
    by_user: dict[uuid.UUID, set[uuid.UUID]] = field(default_factory=dict)
    learnt: dict[tuple[uuid.UUID, uuid.UUID], int] = field(default_factory=dict)
    """(room, user) → the room version at which the rooms service confirmed the user's membership."""
    closed: dict[uuid.UUID, tuple[int, bool]] = field(default_factory=dict)
    """Direct room → (room version, whether a block between its two people closes it), from ``room.blocked`` /
    ``room.unblocked`` or the rooms service's answer, whichever is newer."""

    def role(self, room_id: uuid.UUID, user_id: uuid.UUID) -> str | None:
        return self.members.get(room_id, {}).get(user_id)

    def rooms_of(self, user_id: uuid.UUID) -> set[uuid.UUID]:
        return self.by_user.get(user_id, set())

    def members_of(self, room_id: uuid.UUID) -> dict[uuid.UUID, str]:
        return self.members.get(room_id, {})

    def seen_at(self, room_id: uuid.UUID, user_id: uuid.UUID) -> int | None:
        """The room version at which this instance knows ``user_id`` is a member (None: not a member)."""
        if self.role(room_id, user_id) is None:
            return None
        known = max(self.versions.get(room_id, 0), self.learnt.get((room_id, user_id), 0))
        return known or None

    def blocked(self, room_id: uuid.UUID) -> bool:
        """Whether ``room_id`` is a direct room closed by a block: neither person's typing, presence or receipts
        reach the other there (docs/decisions/0009)."""
        return self.closed.get(room_id, (0, False))[1]

    def _close(self, room_id: uuid.UUID, version: int, blocked: bool) -> None:
        if version > self.closed.get(room_id, (0, False))[0]:
            self.closed[room_id] = (version, blocked)

    def learn(self, room_id: uuid.UUID, user_id: uuid.UUID, role: str, version: int, *, blocked: bool = False) -> None:
        """The rooms service says ``user_id`` is a member at room ``version`` (and whether a block closes it)."""
        self._close(room_id, version, blocked)
        if version <= self.learnt.get((room_id, user_id), -1):
            return
        self.learnt[(room_id, user_id)] = version
        self._add(room_id, user_id, role)

    def apply(self, data: Contract) -> list[tuple[uuid.UUID, uuid.UUID]]:
        """Apply a room event; returns each (room, user) that lost a membership (their sockets must leave)."""
        room_id = getattr(data, "room_id", None)
        version = getattr(data, "room_version", None)
        if not isinstance(room_id, uuid.UUID) or not isinstance(version, int):
            return []
        if version <= self.versions.get(room_id, 0):
            return []
        self.versions[room_id] = version
        user_id = getattr(data, "user_id", None)
        if isinstance(user_id, uuid.UUID) and version <= self.learnt.get((room_id, user_id), -1):
            return []  # the rooms service already told us the state after this event
        if isinstance(data, ev.MemberJoined):
            self._add(room_id, data.user_id, data.role)
        elif isinstance(data, ev.MemberRoleChanged):
            if data.user_id in self.members.get(room_id, {}):
                self.members[room_id][data.user_id] = data.new_role
        elif isinstance(data, ev.MemberLeft | ev.MemberKicked | ev.MemberBanned):
            self._remove(room_id, data.user_id)
            return [(room_id, data.user_id)]
        elif isinstance(data, ev.RoomBlocked | ev.RoomUnblocked):
            self._close(room_id, version, isinstance(data, ev.RoomBlocked))
        elif isinstance(data, ev.RoomDeleted):
            self.closed.pop(room_id, None)
            gone = list(self.members.get(room_id, {}))
            for user in gone:
                self._remove(room_id, user)
            self.members.pop(room_id, None)
            return [(room_id, user) for user in gone]
        return []

    def _add(self, room_id: uuid.UUID, user_id: uuid.UUID, role: str) -> None:
        self.members.setdefault(room_id, {})[user_id] = role
        self.by_user.setdefault(user_id, set()).add(room_id)

    def _remove(self, room_id: uuid.UUID, user_id: uuid.UUID) -> None:
        self.members.get(room_id, {}).pop(user_id, None)
        rooms = self.by_user.get(user_id)
        if rooms is not None:
            rooms.discard(room_id)
            if not rooms:
                del self.by_user[user_id]
        self.learnt.pop((room_id, user_id), None)
