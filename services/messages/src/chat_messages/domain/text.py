"""Message text rules: normalization, length, mentions, and the word tokens search uses."""

from __future__ import annotations

import re
import unicodedata
from typing import Final

from chat_contracts.fields import MAX_BODY_CHARS, normalized_body
from chat_messages.domain.errors import Rejection

MAX_TOKENS: Final = 256
MAX_TOKEN_CHARS: Final = 64
ROOM_MENTIONS: Final = frozenset({"room", "here", "everyone", "all"})
_MENTION = re.compile(r"(?<![\w@])@([A-Za-z0-9][A-Za-z0-9._-]{1,31})")
_WORD = re.compile(r"\w+", re.UNICODE)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
"""Unicode's control characters (category Cc: U+0000–U+001F and U+007F–U+009F) but tab and newline."""


def normalize_body(body: str, *, has_attachments: bool) -> str:
    """NFC, without trailing whitespace; at most ``MAX_BODY_CHARS``; empty only with attachments.

    The body is stored and sent as text: clients must render it as text, never as HTML.
    """
    text = normalized_body(body)
    if len(text) > MAX_BODY_CHARS:
        raise Rejection("too_long", f"Messages are at most {MAX_BODY_CHARS} characters.")
    if not text.strip() and not has_attachments:
        raise Rejection("invalid", "A message needs text or an attachment.")
    if _CONTROL.search(text):
        raise Rejection("invalid", "Messages cannot contain control characters.")
    return text


def tokens(text: str) -> tuple[str, ...]:
    """The distinct words of ``text`` for search: NFKC, case-folded, accents kept, in first-seen order."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    seen: dict[str, None] = {}
    for word in _WORD.findall(folded):
        if len(word) <= MAX_TOKEN_CHARS:
            seen.setdefault(word, None)
        if len(seen) >= MAX_TOKENS:
            break
    return tuple(seen)


def mentioned_names(text: str) -> tuple[tuple[str, ...], bool]:
    """(case-folded usernames mentioned with @name, whether the whole room was: @room @here @everyone @all)."""
    names: dict[str, None] = {}
    room = False
    for match in _MENTION.finditer(text):
        name = match.group(1).rstrip(".-").casefold()
        if name in ROOM_MENTIONS:
            room = True
        elif name:
            names.setdefault(name, None)
    return tuple(names)[:50], room
