"""What the room view shows, and how the server's events change it: kept apart from the screen (room_screen.py) and
the connection (interactive.py), so that it can be tested without either."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from chat_cli.output import Known, format_message, who


@dataclass
class RoomState:
    """What the view shows, kept apart from the screen so it can be tested without one."""

    room_id: str
    me: str
    messages: dict[int, dict[str, Any]] = field(default_factory=dict)
    pending: dict[str, str] = field(default_factory=dict)
    """client_msg_id → body of my messages not acked yet."""
    notices: list[tuple[int, str]] = field(default_factory=list)
    """(after seq, text): connection changes and errors, shown in the flow of messages."""
    typing: dict[str, float] = field(default_factory=dict)
    """user id → monotonic time the typing indicator expires."""
    presence: dict[str, str] = field(default_factory=dict)
    delivered: dict[str, int] = field(default_factory=dict)
    read: dict[str, int] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    index: dict[str, dict[str, Any]] = field(default_factory=dict)
    """message id → message: the room's messages, and the older ones that replies quote."""
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    """attachment id → its name and size."""
    room_ref: str = ""
    """the room as the download command names it"""

    @property
    def last_seq(self) -> int:
        return max(self.messages, default=0)

    def add(self, message: dict[str, Any]) -> bool:
        """Keep a message; ``False`` if it is a duplicate of one already shown (same seq and version)."""
        seq = int(message["seq"])
        known = self.messages.get(seq)
        if known is not None and int(known.get("version", 1)) >= int(message.get("version", 1)):
            return False
        self.messages[seq] = message
        self.index[str(message.get("id"))] = message
        if message.get("sender_id") == self.me:
            self.pending.pop(str(message.get("client_msg_id")), None)
        self.typing.pop(str(message.get("sender_id")), None)
        for mention in message.get("mentions") or []:
            self.names[str(mention["user_id"])] = str(mention["username"])
        return True

    def by_id(self, message_id: str) -> dict[str, Any] | None:
        return self.index.get(message_id)

    def known(self) -> Known:
        return Known(me=self.me, names=self.names, messages=self.index, files=self.files, room=self.room_ref)

    def render(self, message: dict[str, Any]) -> str:
        """A message as its lines read: a reply quotes what it answers as that reads now (edits show)."""
        return format_message(message, self.known())

    def change(self, event: str, data: dict[str, Any]) -> None:
        """Apply ``message:edited``, ``message:deleted`` or ``message:reaction`` (in version order)."""
        message = self.messages.get(int(data.get("seq", 0))) or self.by_id(str(data.get("message_id")))
        if message is None or int(data.get("version", 0)) <= int(message.get("version", 0)):
            return
        message["version"] = data["version"]
        if event == "message:edited":
            message["body"] = data["body"]
            message["edited_at"] = data.get("edited_at")
        elif event == "message:deleted":
            message.update(deleted=True, body="", reactions=[])
        else:
            message["reactions"] = [{"emoji": e, "count": c} for e, c in (data.get("counts") or {}).items()]

    def mark(self, seq: int) -> str:
        """My message's mark: ✓✓ read by someone, ✓ delivered to someone, · stored."""
        others = [u for u in {*self.read, *self.delivered} if u != self.me]
        if any(self.read.get(u, 0) >= seq for u in others):
            return "✓✓"
        if any(max(self.delivered.get(u, 0), self.read.get(u, 0)) >= seq for u in others):
            return "✓"
        return "·"

    def typing_now(self, now: float) -> list[str]:
        for user in [u for u, until in self.typing.items() if until <= now]:
            del self.typing[user]
        return sorted(who(u, self.names, self.me) for u in self.typing if u != self.me)

    def lines(self) -> list[tuple[str, str]]:
        """(style, text) per line, in seq order, with notices where they happened and pending sends last."""
        out: list[tuple[str, str]] = []
        notices = sorted(self.notices, key=lambda n: n[0])
        i = 0
        for seq in sorted(self.messages):
            while i < len(notices) and notices[i][0] < seq:
                out.append(("class:notice", notices[i][1]))
                i += 1
            message = self.messages[seq]
            first, *more = self.render(message).split("\n")
            mine = message.get("sender_id") == self.me
            out.append(("class:me" if mine else "", first + (f"  {self.mark(seq)}" if mine else "")))
            out.extend(("class:file", line) for line in more)
        out.extend(("class:notice", text) for _, text in notices[i:])
        out.extend(("class:notice", f"… {body}") for body in self.pending.values())
        return out

    def status(self, now: float) -> str:
        typing = self.typing_now(now)
        online = sorted(
            who(u, self.names, self.me) + ("" if s == "online" else f" ({s})")
            for u, s in self.presence.items()
            if s != "offline"
        )
        parts = []
        if typing:
            parts.append(", ".join(typing) + (" is typing…" if len(typing) == 1 else " are typing…"))
        parts.append("online: " + (", ".join(online) if online else "nobody"))
        return "  |  ".join(parts)


def typing_until(value: Any) -> float:
    """Monotonic deadline for an ISO ``expires_at`` (wall clock), at most 10 s ahead."""
    try:
        wall = datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return time.monotonic() + 6.0
    return time.monotonic() + max(0.0, min(10.0, wall - time.time()))
