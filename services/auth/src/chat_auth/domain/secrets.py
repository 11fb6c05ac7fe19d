"""Random values and their stored forms: email codes, refresh tokens, recovery codes, sealed secrets."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import uuid

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

CODE_DIGITS = 6
RECOVERY_CODE_COUNT = 10
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


def new_email_code() -> str:
    """Six digits from the OS CSPRNG."""
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def code_hash(pepper: bytes, *, user_id: uuid.UUID, purpose: str, code: str) -> bytes:
    """HMAC of a code bound to its user and purpose: a leaked table cannot be brute-forced offline without
    the pepper, and a code for one purpose never matches another."""
    message = f"{purpose}\x00{user_id}\x00{code}".encode()
    return hmac.new(pepper, message, hashlib.sha256).digest()


def new_refresh_token() -> tuple[str, bytes]:
    """An opaque 256-bit token and the SHA-256 under which it is stored."""
    token = secrets.token_urlsafe(32)
    return token, refresh_token_hash(token)


def refresh_token_hash(token: str) -> bytes:
    """SHA-256 of a refresh token: the token has 256 bits of entropy, so a fast hash is enough."""
    return hashlib.sha256(token.encode("utf-8", errors="replace")).digest()


def new_recovery_codes(count: int = RECOVERY_CODE_COUNT) -> list[str]:
    """Codes like ``k7m2q-x9hfa``: 50 bits each, no look-alike characters."""

    def one() -> str:
        raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(10))
        return f"{raw[:5]}-{raw[5:]}"

    return [one() for _ in range(count)]


def normalize_recovery_code(code: str) -> str:
    """Accept codes typed with spaces, upper case or without the dash."""
    raw = "".join(ch for ch in code.lower() if ch.isalnum())
    return f"{raw[:5]}-{raw[5:]}" if len(raw) == 10 else raw


def secret_hash(token: str) -> bytes:
    """SHA-256 for high-entropy values (OIDC state, browser binding)."""
    return hashlib.sha256(token.encode()).digest()


class Sealer:
    """AES-256-GCM with a key derived (HKDF) from a configured secret; the context binds a blob to its use."""

    def __init__(self, secret: str) -> None:
        self._secret = secret.encode()

    def _key(self, context: str) -> AESGCM:
        kdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"chat-auth-sealer-v1", info=context.encode())
        return AESGCM(kdf.derive(self._secret))

    def seal(self, plaintext: bytes, *, context: str) -> bytes:
        nonce = os.urandom(12)
        return b"\x01" + nonce + self._key(context).encrypt(nonce, plaintext, context.encode())

    def open(self, blob: bytes, *, context: str) -> bytes:
        if not blob or blob[0] != 1:
            raise ValueError("unknown sealed format")
        return self._key(context).decrypt(blob[1:13], blob[13:], context.encode())


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
