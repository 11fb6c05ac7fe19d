"""Who may do what: the one table every rule check goes through (docs/rooms.md prints it).

Rows are actions, columns the actor's role in the room; a cell is the set of room kinds where the action is
allowed. Non-members are handled by the use cases (they may only join or accept an invitation). Actions on
another member (kick, ban, change role) also need the actor to outrank the target (``outranks``).
"""

from __future__ import annotations

from typing import Final, Literal

from chat_rooms.domain.errors import RoomsError
from chat_rooms.domain.model import Role, RoomKind

Action = Literal[
    "view",
    "list_members",
    "update",
    "archive",
    "unarchive",
    "delete",
    "invite",
    "kick",
    "ban",
    "unban",
    "change_role",
    "transfer_ownership",
    "leave",
    "post",
]

ALL_KINDS: Final[frozenset[RoomKind]] = frozenset({"public", "private", "password", "direct", "group_dm"})
ROOMS: Final[frozenset[RoomKind]] = frozenset({"public", "private", "password"})
"""Rooms with settings, roles and moderation; direct and group DMs have none of that."""
CONVERSATIONS: Final[frozenset[RoomKind]] = frozenset({"group_dm"})
NONE: Final[frozenset[RoomKind]] = frozenset()

TABLE: Final[dict[Action, dict[Role, frozenset[RoomKind]]]] = {
    "view": {"owner": ALL_KINDS, "admin": ALL_KINDS, "member": ALL_KINDS},
    "list_members": {"owner": ALL_KINDS, "admin": ALL_KINDS, "member": ALL_KINDS},
    "post": {"owner": ALL_KINDS, "admin": ALL_KINDS, "member": ALL_KINDS},
    "update": {"owner": ROOMS | CONVERSATIONS, "admin": ROOMS, "member": CONVERSATIONS},
    "archive": {"owner": ROOMS, "admin": ROOMS, "member": NONE},
    "unarchive": {"owner": ROOMS, "admin": ROOMS, "member": NONE},
    "delete": {"owner": ROOMS | CONVERSATIONS, "admin": NONE, "member": NONE},
    "invite": {"owner": ROOMS | CONVERSATIONS, "admin": ROOMS, "member": CONVERSATIONS},
    "kick": {"owner": ROOMS | CONVERSATIONS, "admin": ROOMS, "member": NONE},
    "ban": {"owner": ROOMS, "admin": ROOMS, "member": NONE},
    "unban": {"owner": ROOMS, "admin": ROOMS, "member": NONE},
    "change_role": {"owner": ROOMS, "admin": NONE, "member": NONE},
    "transfer_ownership": {"owner": ROOMS | CONVERSATIONS, "admin": NONE, "member": NONE},
    "leave": {"owner": ROOMS | CONVERSATIONS, "admin": ROOMS | CONVERSATIONS, "member": ROOMS | CONVERSATIONS},
}

_RANK: Final[dict[Role, int]] = {"owner": 3, "admin": 2, "member": 1}

ALLOWED_WHEN_ARCHIVED: Final[frozenset[Action]] = frozenset({"view", "list_members", "unarchive", "delete", "leave"})
"""An archived room is read-only: only these still work."""


def allowed(role: Role, action: Action, kind: RoomKind) -> bool:
    """Whether a member with ``role`` may do ``action`` in a room of ``kind``."""
    return kind in TABLE[action][role]


def outranks(actor: Role, target: Role) -> bool:
    """Owners act on admins and members, admins on members only."""
    return _RANK[actor] > _RANK[target]


def require(role: Role, action: Action, kind: RoomKind, *, archived: bool = False, target: Role | None = None) -> None:
    """Raise the coded refusal for ``action``, or return when it is allowed."""
    if archived and action not in ALLOWED_WHEN_ARCHIVED:
        raise RoomsError("room_archived", "The room is archived (read-only).", status=409)
    if not allowed(role, action, kind):
        if not any(kind in kinds for kinds in TABLE[action].values()):
            raise RoomsError("not_supported", f"Rooms of kind {kind} do not support {action}.", status=409)
        raise RoomsError("forbidden_role", f"Your role ({role}) may not {action.replace('_', ' ')} here.", status=403)
    if target is not None and not outranks(role, target):
        raise RoomsError("forbidden_role", f"A {role} cannot {action.replace('_', ' ')} a {target}.", status=403)


_KIND_ORDER: Final[tuple[RoomKind, ...]] = ("public", "private", "password", "group_dm", "direct")
_SHORT: Final[dict[RoomKind, str]] = {
    "public": "pub",
    "private": "priv",
    "password": "pw",
    "group_dm": "group",
    "direct": "dm",
}


def markdown_table() -> str:
    """The table as docs/rooms.md prints it (a test keeps the two identical)."""
    lines = ["| action | owner | admin | member |", "| --- | --- | --- | --- |"]
    for action, by_role in TABLE.items():
        cells = []
        for role in ("owner", "admin", "member"):
            kinds = [_SHORT[k] for k in _KIND_ORDER if k in by_role[role]]
            cells.append(", ".join(kinds) if kinds else "–")
        lines.append(f"| {action} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
