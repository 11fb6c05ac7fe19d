"""Who is in which room, as this gateway instance has heard it (each instance keeps its own copy).

Nothing is replayed at start: the instance reads chat.rooms.events from the topic's end, and learns any membership
older than that from the rooms service when it needs it (a socket's event about a room it has not heard of, or the
rooms of a user who connects here; docs/decisions/0014). Both sources carry the room version, and the newer one
wins for each (room, user):

- an answer keeps its room version for that user, and events about the user at or below it are ignored (a late
  "left" followed by "joined again" must not remove someone the service already said is a member);
- an event about the user applied while a question about them was in flight is newer than the answer (the rooms
  service publishes an event only after committing it, so an answer read before it is older), and stands.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from chat_contracts import rooms as ev
from chat_contracts.base import Contract

_CHANGES_MEMBERSHIP = (ev.MemberJoined, ev.MemberLeft, ev.MemberKicked, ev.MemberBanned, ev.MemberRoleChanged)


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
    asking: dict[uuid.UUID, int] = field(default_factory=dict)
    """User → questions about their memberships in flight to the rooms service."""
    heard: dict[uuid.UUID, dict[uuid.UUID, int]] = field(default_factory=dict)
    """User → room → the version of the latest event about them there applied while a question was in flight."""

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

    @contextmanager
    def question(self, user_id: uuid.UUID) -> Iterator[None]:
        """While the rooms service is asked about ``user_id``'s memberships: the events about them applied meanwhile
        are noted, so that ``learn`` can tell an answer from before them."""
        self.asking[user_id] = self.asking.get(user_id, 0) + 1
        try:
            yield
        finally:
            self.asking[user_id] -= 1
            if not self.asking[user_id]:
                del self.asking[user_id]
                self.heard.pop(user_id, None)

    def learn(
        self, room_id: uuid.UUID, user_id: uuid.UUID, role: str, version: int, *, blocked: bool = False
    ) -> str | None:
        """The rooms service says ``user_id`` is a member at room ``version`` (and whether a block closes it);
        returns their role as this instance now sees it. Call it inside ``question``: an event about them applied
        since the question was asked is newer than the answer, and stands."""
        self._close(room_id, version, blocked)
        if self.heard.get(user_id, {}).get(room_id, -1) >= version:
            return self.role(room_id, user_id)
        if version <= self.learnt.get((room_id, user_id), -1):
            return self.role(room_id, user_id)
        self.learnt[(room_id, user_id)] = version
        self._add(room_id, user_id, role)
        return role

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
        self._note_heard(room_id, version, user_id if isinstance(user_id, uuid.UUID) else None, data)
        if isinstance(data, ev.MemberJoined):
            self._add(room_id, data.user_id, data.role)
        elif isinstance(data, ev.MemberRoleChanged):
            self._add(room_id, data.user_id, data.new_role)  # a member at this version, whether known here or not
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

    def _note_heard(self, room_id: uuid.UUID, version: int, user_id: uuid.UUID | None, data: Contract) -> None:
        """Note an event that changes a membership asked about in flight: it is newer than the answer."""
        if isinstance(data, ev.RoomDeleted):
            concerned = list(self.asking)
        elif isinstance(data, _CHANGES_MEMBERSHIP) and user_id is not None and user_id in self.asking:
            concerned = [user_id]
        else:
            return
        for user in concerned:
            self.heard.setdefault(user, {})[room_id] = version

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
