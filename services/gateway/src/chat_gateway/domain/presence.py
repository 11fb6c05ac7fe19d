"""Presence as every gateway instance reports it, and what members of a room have been shown.

A user's status is the best any instance reports: online if one says online, away if none says online and one
says away, offline otherwise. Reports are kept per instance, so a device closing on one instance does not hide a
device still open on another, and an instance that falls silent can be forgotten as a whole.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal, TypeAlias

Status: TypeAlias = Literal["online", "away", "offline"]
_RANK: dict[Status, int] = {"offline": 0, "away": 1, "online": 2}


def rank(status: Status) -> int:
    """Online beats away beats offline."""
    return _RANK[status]


@dataclass(frozen=True)
class Seen:
    status: Status
    last_seen: datetime | None


@dataclass
class Instance:
    started_at: datetime
    heard: float
    """Monotonic time of the last heartbeat."""
    interval: float


@dataclass
class PresenceBoard:
    """Reports per (user, instance), the status last shown per (room, user), and which instances are alive."""

    reports: dict[uuid.UUID, dict[str, Seen]] = field(default_factory=dict)
    shown: dict[tuple[uuid.UUID, uuid.UUID], Status] = field(default_factory=dict)
    instances: dict[str, Instance] = field(default_factory=dict)
    reported_in: dict[uuid.UUID, set[uuid.UUID]] = field(default_factory=dict)
    """Room → users some instance reported there: that instance knows them as members, which this one may not
    (it learns only the memberships of its own users, and of changes since it started)."""
    rooms_reported: dict[uuid.UUID, set[uuid.UUID]] = field(default_factory=dict)
    """The same, user → rooms."""

    def report(self, user: uuid.UUID, instance: str, seen: Seen, *, room: uuid.UUID | None = None) -> None:
        """Record what ``instance`` sees of ``user`` (offline removes its report), reported in ``room``."""
        if room is not None:
            self.reported_in.setdefault(room, set()).add(user)
            self.rooms_reported.setdefault(user, set()).add(room)
        mine = self.reports.setdefault(user, {})
        if seen.status == "offline":
            previous = mine.pop(instance, None)
            last_seen = seen.last_seen or (previous.last_seen if previous else None)
            # Keep when they were last seen, for an offline answer, without counting it as a device.
            mine["~offline"] = Seen("offline", last_seen)
        else:
            mine[instance] = seen
            mine.pop("~offline", None)

    def status(self, user: uuid.UUID, *, excluding: str | None = None) -> Seen:
        """The user's status across instances (but ``excluding``, when named)."""
        best = Seen("offline", None)
        for instance, seen in self.reports.get(user, {}).items():
            if instance == excluding:
                continue
            better = _RANK[seen.status] > _RANK[best.status]
            later = seen.status == best.status and (seen.last_seen or _MIN) > (best.last_seen or _MIN)
            if better or later:
                best = seen
        return best

    def to_show(self, room: uuid.UUID, user: uuid.UUID) -> Seen | None:
        """The user's status if members of ``room`` have not been shown it yet (and note it as shown)."""
        now = self.status(user)
        key = (room, user)
        if self.shown.get(key, "offline") == now.status:
            return None
        if now.status == "offline":
            self.shown.pop(key, None)
        else:
            self.shown[key] = now.status
        return now

    def forget_room(self, room: uuid.UUID, user: uuid.UUID) -> None:
        """``user`` is no longer in ``room``."""
        self.shown.pop((room, user), None)
        _discard(self.reported_in, room, user)
        _discard(self.rooms_reported, user, room)

    def heartbeat(self, instance: str, started_at: datetime, *, now: float, interval: float) -> set[uuid.UUID]:
        """Note ``instance`` alive; a new ``started_at`` means it restarted: returns the users it reported."""
        known = self.instances.get(instance)
        self.instances[instance] = Instance(started_at=started_at, heard=now, interval=interval)
        if known is not None and known.started_at != started_at:
            return self.forget_instance(instance)
        return set()

    def is_new(self, instance: str, started_at: datetime) -> bool:
        known = self.instances.get(instance)
        return known is None or known.started_at != started_at

    def silent(self, *, now: float, missed: int = 3) -> list[str]:
        """Instances not heard from for ``missed`` intervals."""
        return [name for name, i in self.instances.items() if now - i.heard > missed * i.interval]

    def forget_instance(self, instance: str) -> set[uuid.UUID]:
        """Drop every report of ``instance``; returns the users whose reports were dropped."""
        self.instances.pop(instance, None)
        affected = set()
        for user, mine in self.reports.items():
            if instance in mine:
                last = mine.pop(instance)
                affected.add(user)
                if not any(s.status != "offline" for s in mine.values()):
                    mine["~offline"] = Seen("offline", last.last_seen)
        return affected


def _discard(index: dict[uuid.UUID, set[uuid.UUID]], key: uuid.UUID, value: uuid.UUID) -> None:
    found = index.get(key)
    if found is not None:
        found.discard(value)
        if not found:
            del index[key]


_MIN = datetime.min.replace(tzinfo=UTC)
