"""Input rules for rooms: names, topics, sizes, direct-message keys."""

from __future__ import annotations

import unicodedata
import uuid
from typing import Final

from chat_rooms.domain.errors import RoomsError

NAME_MAX: Final = 80
TOPIC_MAX: Final = 250
DESCRIPTION_MAX: Final = 2000
GROUP_DM_MAX_MEMBERS: Final = 10
ROOM_PASSWORD_MIN: Final = 4
ROOM_PASSWORD_MAX: Final = 128


def _clean(text: str) -> str:
    cleaned = unicodedata.normalize("NFC", text.strip())
    if any(unicodedata.category(ch) in {"Cc", "Cf", "Cs", "Co"} for ch in cleaned if ch not in "\n"):
        raise RoomsError("invalid_text", "Remove control and invisible formatting characters.", status=422)
    return cleaned


def room_name(name: str) -> str:
    cleaned = _clean(name)
    if not 1 <= len(cleaned) <= NAME_MAX or "\n" in cleaned:
        raise RoomsError("invalid_name", f"Room names are 1–{NAME_MAX} characters on one line.", status=422)
    return cleaned


def search_key(name: str) -> str:
    """What directory search compares: case-folded, accents kept (users type them)."""
    return unicodedata.normalize("NFKC", name).casefold()


def topic(text: str | None) -> str | None:
    if text is None:
        return None
    cleaned = _clean(text)
    if len(cleaned) > TOPIC_MAX or "\n" in cleaned:
        raise RoomsError("invalid_topic", f"Topics are at most {TOPIC_MAX} characters on one line.", status=422)
    return cleaned or None


def description(text: str | None) -> str | None:
    if text is None:
        return None
    cleaned = _clean(text)
    if len(cleaned) > DESCRIPTION_MAX:
        raise RoomsError("invalid_description", f"Descriptions are at most {DESCRIPTION_MAX} characters.", status=422)
    return cleaned or None


def room_password(password: str) -> str:
    normalized = unicodedata.normalize("NFC", password)
    if not ROOM_PASSWORD_MIN <= len(normalized) <= ROOM_PASSWORD_MAX:
        raise RoomsError(
            "invalid_room_password",
            f"Room passwords are {ROOM_PASSWORD_MIN}–{ROOM_PASSWORD_MAX} characters.",
            status=422,
        )
    return normalized


def dm_key(first: uuid.UUID, second: uuid.UUID) -> str:
    """The same key whichever of the two asks."""
    low, high = sorted((first, second))
    return f"{low}:{high}"
