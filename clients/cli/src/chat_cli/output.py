"""What the commands print: one JSON document with ``--json``, readable text otherwise; errors on stderr."""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
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


EXCERPT_CHARS = 40


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """The start of a message on one line, at most ``limit`` characters (``…`` when cut)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def human_size(size: int | None) -> str:
    """``812 B``, ``12.3 KiB``, ``4.0 MiB``; ``?`` when unknown."""
    if size is None:
        return "?"
    if size < 1024:
        return f"{size} B"
    value = float(size)
    for unit in ("KiB", "MiB", "GiB"):
        value /= 1024
        if value < 1024 or unit == "GiB":
            break
    return f"{value:.1f} {unit}"


@dataclass
class Known:
    """What a message's lines name besides the message itself; whatever is missing is shown plainly."""

    me: str | None = None
    names: Mapping[str, str] = field(default_factory=dict)
    """user id → name"""
    messages: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """message id → message, for the messages that replies quote"""
    files: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """attachment id → ``{filename, size}``"""
    room: str = "ROOM"
    """the room as the download command should name it"""


def format_quote(message_id: str, known: Known) -> str:
    """``[↪ #3 ada: the first words]`` for the message a reply answers, as it is now (edits show)."""
    quoted = known.messages.get(message_id)
    if quoted is None:
        return "[↪ an earlier message]"
    author = who(str(quoted.get("sender_id", "")), known.names, known.me)
    text = "(deleted)" if quoted.get("deleted") else excerpt(str(quoted.get("body", ""))) or "(a file)"
    return f"[↪ #{quoted.get('seq')} {author}: {text}]"


def format_attachment(attachment_id: str, known: Known) -> str:
    """``📎 notes.txt (1.2 KiB)  chat-cli download lobby ID``: what the file is and how to get it."""
    info = known.files.get(attachment_id)
    what = f"{info.get('filename')} ({human_size(info.get('size'))})" if info else "attachment"
    return f"    📎 {what}  chat-cli download {shlex.quote(known.room)} {attachment_id}"


def format_message(message: Mapping[str, Any], known: Known | None = None) -> str:
    """``#seq HH:MM sender: body`` with edit, deletion, reply and reaction notes, then one line per attachment."""
    known = known or Known()
    sender = who(str(message.get("sender_id", "")), known.names, known.me)
    deleted = bool(message.get("deleted"))
    if deleted:
        body = "(deleted)"
    else:
        body = str(message.get("body", ""))
        if message.get("edited_at"):
            body += " (edited)"
    if message.get("reply_to"):
        body = f"{format_quote(str(message['reply_to']), known)} {body}"
    reactions = [] if deleted else message.get("reactions") or []
    if reactions:
        body += "  " + " ".join(f"{r.get('emoji')}{r.get('count')}" for r in reactions)
    files = [] if deleted else [format_attachment(str(a), known) for a in message.get("attachment_ids") or []]
    return "\n".join([f"#{message.get('seq')} {short_time(message.get('created_at'))} {sender}: {body}", *files])


def room_title(room: Mapping[str, Any]) -> str:
    """A room's name, or what the CLI found to call a room without one (a direct room: the other person)."""
    return str(room.get("name") or room.get("title") or room.get("id"))


def format_rooms(rooms: Sequence[Mapping[str, Any]], *, unread: bool = True) -> str:
    if not rooms:
        return "(no rooms)"
    headers = ["ID", "NAME", "KIND", "ROLE", "MEMBERS"] + (["UNREAD"] if unread else [])
    rows = []
    for room in rooms:
        row = [
            str(room["id"]),
            str(room.get("name") or room.get("title") or "-"),
            str(room.get("kind", "")) + (" (archived)" if room.get("archived") else ""),
            str(room.get("my_role") or "-"),
            str(room.get("member_count", "")),
        ]
        if unread:
            row.append(str(room.get("unread", 0)))
        rows.append(row)
    return table(rows, headers)
