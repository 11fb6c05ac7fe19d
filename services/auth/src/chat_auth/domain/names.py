"""Email and username normalization: what makes two spellings the same account."""

from __future__ import annotations

import re
import unicodedata

from chat_auth.domain.errors import AuthError

USERNAME_MIN = 3
USERNAME_MAX = 32
_USERNAME = re.compile(r"^[a-z0-9](?:[a-z0-9._-]*[a-z0-9])?$")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,253}$")
RESERVED_USERNAMES = frozenset(
    {
        "admin",
        "administrator",
        "root",
        "system",
        "support",
        "help",
        "moderator",
        "mod",
        "owner",
        "staff",
        "room",
        "here",
        "everyone",
        "all",
        "channel",
        "chat",
        "api",
        "auth",
        "null",
        "undefined",
        "me",
        "you",
        "anonymous",
        "guest",
        "bot",
        "official",
        "security",
        "abuse",
        "postmaster",
        "webmaster",
        "noreply",
    }
)


def normalize_email(email: str) -> tuple[str, str]:
    """(address as entered, trimmed; its unique key). The key is the whole address lower-cased.

    Mailbox local parts are case-sensitive in theory, but no provider users meet treats them so, and two
    accounts differing only in case would be a phishing gift; so uniqueness is case-insensitive.
    """
    address = unicodedata.normalize("NFC", email.strip())
    if len(address) > 254 or not _EMAIL.match(address):
        raise AuthError("invalid_email", "Enter a valid email address.", status=422)
    local, domain = address.rsplit("@", 1)
    try:
        ascii_domain = domain.encode("idna").decode("ascii").lower()
    except UnicodeError as exc:
        raise AuthError("invalid_email", "Enter a valid email address.", status=422) from exc
    if "." not in ascii_domain.strip("."):
        raise AuthError("invalid_email", "Enter a valid email address.", status=422)
    return f"{local}@{domain}", f"{local.lower()}@{ascii_domain}"


def normalize_username(username: str) -> tuple[str, str]:
    """(username as displayed; its unique key).

    Rules: NFKC, then 3–32 characters of a–z, 0–9, ``.``, ``_``, ``-``, starting and ending with a letter or
    digit; compared case-insensitively; a few names that mean something in chat (``room``, ``here``,
    ``everyone``…) or impersonate staff are reserved.
    """
    display = unicodedata.normalize("NFKC", username.strip())
    key = display.casefold()
    if not USERNAME_MIN <= len(key) <= USERNAME_MAX:
        raise AuthError(
            "invalid_username",
            f"Use {USERNAME_MIN}–{USERNAME_MAX} characters: letters, digits, . _ -",
            status=422,
        )
    if not _USERNAME.match(key):
        raise AuthError(
            "invalid_username",
            "Use letters a–z, digits and . _ -, starting and ending with a letter or digit.",
            status=422,
        )
    if key in RESERVED_USERNAMES:
        raise AuthError("username_reserved", "This username is reserved.", status=422)
    return display, key


def clean_display_name(name: str) -> str:
    """NFC, trimmed, 1–100 characters, no control characters."""
    cleaned = unicodedata.normalize("NFC", name.strip())
    if not 1 <= len(cleaned) <= 100 or any(unicodedata.category(ch).startswith("C") for ch in cleaned):
        raise AuthError("invalid_display_name", "Use 1–100 printable characters.", status=422)
    return cleaned
