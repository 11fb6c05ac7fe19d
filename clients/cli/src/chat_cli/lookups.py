"""What the server's objects refer to by id, looked up so people read names: who sent a message, the message a
reply quotes, an attachment's file name and size, and who a direct room is with. Best effort: whatever cannot be
found is shown plainly, never as an error."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from chat_cli.api import Api, shown_name, user_names, user_profiles
from chat_cli.errors import Refused, Unreachable
from chat_cli.files import attachment_infos
from chat_cli.output import Known

PERSONAL_KINDS = frozenset({"direct", "group_dm"})
"""Rooms that may have no name and are called after their people."""
MEMBERS_OF_A_GROUP_DM = 10


async def quoted_messages(
    api: Api, room_id: str, items: Sequence[Mapping[str, Any]], known: Mapping[str, Mapping[str, Any]] | None = None
) -> dict[str, dict[str, Any]]:
    """The messages that ``items`` reply to and that neither ``items`` nor ``known`` hold, one request each."""
    have = {str(m.get("id")) for m in items} | set(known or {})
    wanted = {str(m["reply_to"]) for m in items if m.get("reply_to")} - have

    async def one(message_id: str) -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = await api.request("GET", f"/api/messages/rooms/{room_id}/messages/{message_id}")
        except (Refused, Unreachable):
            return None  # gone, or from before I joined: shown as "an earlier message"
        return found

    found = await asyncio.gather(*(one(m) for m in sorted(wanted)))
    return {str(m["id"]): m for m in found if m is not None}


async def known_for(api: Api, room_id: str, items: Sequence[Mapping[str, Any]], *, me: str | None, room: str) -> Known:
    """Everything the lines of ``items`` name: senders, quoted messages (and their authors), attachments."""
    quoted = quoted_messages(api, room_id, items)
    files = attachment_infos(api, room_id, (str(a) for m in items for a in m.get("attachment_ids") or []))
    found_quotes, found_files = await asyncio.gather(quoted, files)
    messages: dict[str, Mapping[str, Any]] = {str(m["id"]): m for m in items}
    messages.update(found_quotes)
    names = await user_names(api, (str(m.get("sender_id")) for m in messages.values()))
    return Known(me=me, names=names, messages=messages, files=found_files, room=room)


async def people_of(api: Api, rooms: Iterable[Mapping[str, Any]], me: str | None) -> dict[str, list[dict[str, Any]]]:
    """Room id → the profiles of the other members, for the direct rooms and group DMs among ``rooms``."""
    personal = [str(r["id"]) for r in rooms if r.get("kind") in PERSONAL_KINDS]

    async def others(room_id: str) -> list[str]:
        try:
            page = await api.request("GET", f"/api/rooms/{room_id}/members", params={"limit": MEMBERS_OF_A_GROUP_DM})
        except (Refused, Unreachable):
            return []
        return [str(m["user_id"]) for m in page["items"] if str(m["user_id"]) != me]

    members = dict(zip(personal, await asyncio.gather(*(others(r) for r in personal)), strict=True))
    profiles = await user_profiles(api, (u for ids in members.values() for u in ids))
    return {room: [profiles[u] for u in ids if u in profiles] for room, ids in members.items()}


def title_of(people: Sequence[Mapping[str, Any]]) -> str | None:
    """A nameless room's title: its people by display name (else username)."""
    return ", ".join(shown_name(dict(p)) for p in people) or None


async def add_titles(api: Api, rooms: Sequence[dict[str, Any]], me: str | None) -> dict[str, list[dict[str, Any]]]:
    """Give each nameless direct room or group DM a ``title`` after its other people; answer those people."""
    people = await people_of(api, (r for r in rooms if not r.get("name")), me)
    for room in rooms:
        title = title_of(people.get(str(room["id"]), []))
        if title:
            room["title"] = title
    return people


def is_called(person: Mapping[str, Any], ref: str) -> bool:
    """Whether ``ref`` names this person: the username (any case, ``@`` optional) or the display name."""
    wanted = ref.strip().casefold()
    return (
        wanted.removeprefix("@") == str(person.get("username", "")).casefold()
        or wanted == str(person.get("display_name", "")).strip().casefold()
    )
