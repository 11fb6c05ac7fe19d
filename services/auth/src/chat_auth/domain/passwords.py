"""Password rules (NIST SP 800-63B / OWASP ASVS): length 8–128, no composition rules, no common passwords."""

from __future__ import annotations

import unicodedata
from functools import cache
from importlib.resources import files

from argon2 import PasswordHasher as _Argon2
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from chat_auth.domain.errors import AuthError

MIN_LENGTH = 8
MAX_LENGTH = 128


@cache
def common_passwords() -> frozenset[str]:
    """The shipped list of refused passwords, lower-cased."""
    text = files("chat_auth.domain").joinpath("data/common-passwords.txt").read_text(encoding="utf-8")
    return frozenset(line.strip().lower() for line in text.splitlines() if line.strip() and not line.startswith("#"))


def normalize_password(password: str) -> str:
    """NFC, so the same password typed on two keyboards hashes the same."""
    return unicodedata.normalize("NFC", password)


def check_password(password: str, *, username: str | None = None, email: str | None = None) -> str:
    """Return the normalized password, or raise AuthError(weak_password…) saying what is wrong."""
    normalized = normalize_password(password)
    if len(normalized) < MIN_LENGTH:
        raise AuthError("password_too_short", f"Use at least {MIN_LENGTH} characters.", status=422)
    if len(normalized) > MAX_LENGTH:
        raise AuthError("password_too_long", f"Use at most {MAX_LENGTH} characters.", status=422)
    lowered = normalized.lower()
    if lowered in common_passwords():
        raise AuthError("password_too_common", "This password is too common; choose another.", status=422)
    personal = {value.lower() for value in (username, email, (email or "").split("@")[0]) if value}
    if lowered in personal:
        raise AuthError("password_too_common", "Do not use your username or email as the password.", status=422)
    return normalized


class PasswordHasher:
    """argon2id with argon2-cffi's defaults (RFC 9106 low-memory profile); says when a hash needs upgrading."""

    def __init__(self, hasher: _Argon2 | None = None) -> None:
        self._hasher = hasher or _Argon2()
        self._dummy = self._hasher.hash("not-a-real-password-only-for-timing")

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        """True when ``password`` matches. With no hash it still spends the same time (no enumeration)."""
        try:
            return self._hasher.verify(password_hash or self._dummy, password) and password_hash is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        return self._hasher.check_needs_rehash(password_hash)
