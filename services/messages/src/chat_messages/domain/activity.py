"""What happened to a room besides its messages (joins, leaves, removals, bans, renames), kept so that a client
can show "ada joined" between the messages after a reload too, not only when it saw the event live."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

ActivityKind = Literal["joined", "left", "kicked", "banned", "renamed"]


@dataclass(frozen=True, slots=True)
class Activity:
    """One room event as the timeline shows it. ``room_version`` is the event's (unique per room); ``after_seq``
    was the room's highest seq when it was applied: the activity goes after that message."""

    room_id: uuid.UUID
    room_version: int
    kind: ActivityKind
    after_seq: int
    occurred_at: datetime
    user_id: uuid.UUID | None = None
    """Who joined, left, was removed or banned."""
    by: uuid.UUID | None = None
    """Who did it, when the event says (None: the member themselves, or the platform)."""
    name: str | None = None
    """A rename's new name (None: the room's name was removed)."""
