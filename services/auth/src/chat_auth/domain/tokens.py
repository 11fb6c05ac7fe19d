"""Issuing signed tokens (EdDSA / Ed25519) and publishing the public keys as a JWKS."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from chat_auth.domain.model import SigningKey
from chat_auth.domain.secrets import Sealer, b64url

TokenType = Literal["access", "mfa", "reset"]
_SEAL_CONTEXT = "signing-key"


def new_signing_key(sealer: Sealer, now: datetime) -> SigningKey:
    """A fresh Ed25519 key; kid is derived from the public key so it is stable and unique."""
    private = Ed25519PrivateKey.generate()
    public_raw = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    kid = b64url(hashlib.sha256(public_raw).digest()[:12])
    private_raw = private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64url(public_raw), "kid": kid, "alg": "EdDSA", "use": "sig"}
    return SigningKey(
        kid=kid,
        private_key_encrypted=sealer.seal(private_raw, context=_SEAL_CONTEXT),
        public_jwk=jwk,
        created_at=now,
    )


def jwks(keys: Sequence[SigningKey]) -> dict[str, Any]:
    """The JWKS document: every key that may still have live tokens (active and recently retired)."""
    return {"keys": [dict(key.public_jwk) for key in keys]}


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    jti: str
    expires_at: datetime


class TokenIssuer:
    """Signs tokens with the newest non-retired key."""

    def __init__(self, *, sealer: Sealer, issuer: str, audience: str) -> None:
        self._sealer = sealer
        self.issuer = issuer
        self.audience = audience

    def issue(
        self,
        key: SigningKey,
        *,
        typ: TokenType,
        subject: uuid.UUID,
        session_id: uuid.UUID,
        now: datetime,
        ttl: timedelta,
        extra: dict[str, Any] | None = None,
    ) -> IssuedToken:
        private = Ed25519PrivateKey.from_private_bytes(
            self._sealer.open(key.private_key_encrypted, context=_SEAL_CONTEXT)
        )
        jti = secrets.token_urlsafe(16)
        issued = int(now.timestamp())
        expires_at = now + ttl
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": str(subject),
            "sid": str(session_id),
            "jti": jti,
            "iat": issued,
            "nbf": issued,
            "exp": int(expires_at.timestamp()),
            "typ": typ,
            **(extra or {}),
        }
        token = jwt.encode(claims, private, algorithm="EdDSA", headers={"kid": key.kid, "typ": "JWT"})
        return IssuedToken(token=token, jti=jti, expires_at=expires_at)
