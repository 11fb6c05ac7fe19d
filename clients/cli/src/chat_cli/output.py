"""What the commands print: one JSON document with ``--json``, readable text otherwise; errors on stderr."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TextIO

from chat_cli.errors import CliError, Refused


@dataclass
class Output:
    stdout: TextIO
    stderr: TextIO
    json_mode: bool = False

    def result(self, data: Any, text: str | None = None) -> None:
        """Print a command's result: ``data`` as JSON, or ``text`` (when given) for people."""
        if self.json_mode:
            self.stdout.write(json.dumps(data, ensure_ascii=False, default=str) + "\n")
        elif text is not None:
            self.stdout.write(text if text.endswith("\n") or not text else text + "\n")
        self.stdout.flush()

    def note(self, text: str) -> None:
        """A hint for people (stderr, so it never pollutes a pipe)."""
        if not self.json_mode:
            self.stderr.write(text + "\n")
            self.stderr.flush()

    def say(self, text: str) -> None:
        """Something the user must see even in JSON mode (a URL to open): stderr."""
        self.stderr.write(text + "\n")
        self.stderr.flush()

    def error(self, error: CliError) -> None:
        if isinstance(error, Refused):
            if self.json_mode:
                self.stderr.write(json.dumps({"error": error.to_json()}, ensure_ascii=False) + "\n")
            else:
                self.stderr.write(f"error: {error.code}: {error.message}\n")
        else:
            prefix = {2: "usage", 3: "unreachable"}.get(error.exit_code, "error")
            if self.json_mode:
                self.stderr.write(json.dumps({"error": {"code": prefix, "message": str(error)}}) + "\n")
            else:
                self.stderr.write(f"{prefix}: {error}\n")
        self.stderr.flush()


def table(rows: Sequence[Sequence[str]], headers: Sequence[str]) -> str:
    """Left-aligned columns separated by two spaces."""
    if not rows:
        return ""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]
    lines = [
        "  ".join(str(cell).ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in [headers, *rows]
    ]
    return "\n".join(lines)


def short_time(value: str | None) -> str:
    """``HH:MM`` of an ISO timestamp, in local time."""
    if not value:
        return "--:--"
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone().strftime("%H:%M")
    except ValueError:
        return "--:--"


def who(user_id: str, names: Mapping[str, str], me: str | None) -> str:
    if me and user_id == me:
        return "me"
    return names.get(user_id) or user_id[:8]


def format_message(message: Mapping[str, Any], names: Mapping[str, str] | None = None, me: str | None = None) -> str:
    """``#seq HH:MM sender: body`` with edit, deletion, reply and reaction notes."""
    known = names or {}
    sender = who(str(message.get("sender_id", "")), known, me)
    if message.get("deleted"):
        body = "(deleted)"
    else:
        body = str(message.get("body", ""))
        if message.get("edited_at"):
            body += " (edited)"
    if message.get("reply_to"):
        body = f"↪ {str(message['reply_to'])[:8]} {body}"
    reactions = [] if message.get("deleted") else message.get("reactions") or []
    if reactions:
        body += "  " + " ".join(f"{r.get('emoji')}{r.get('count')}" for r in reactions)
    return f"#{message.get('seq')} {short_time(message.get('created_at'))} {sender}: {body}"


def format_rooms(rooms: Sequence[Mapping[str, Any]], *, unread: bool = True) -> str:
    if not rooms:
        return "(no rooms)"
    headers = ["ID", "NAME", "KIND", "ROLE", "MEMBERS"] + (["UNREAD"] if unread else [])
    rows = []
    for room in rooms:
        row = [
            str(room["id"]),
            str(room.get("name") or "-"),
            str(room.get("kind", "")) + (" (archived)" if room.get("archived") else ""),
            str(room.get("my_role") or "-"),
            str(room.get("member_count", "")),
        ]
        if unread:
            row.append(str(room.get("unread", 0)))
        rows.append(row)
    return table(rows, headers)
