"""Access tokens for tests of services that verify them: signed like the auth service's, with a key only the
tests hold, and a JWKS source that publishes it."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from chat_runtime.tokens import StaticJwksSource

KID = "test-key"


class TokenMint:
    def __init__(self, *, issuer: str, audience: str, clock: Callable[[], datetime]) -> None:
        self._key = Ed25519PrivateKey.generate()
        self._issuer = issuer
        self._audience = audience
        self._clock = clock
        raw = self._key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        x = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
        self.jwks = StaticJwksSource({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": x, "kid": KID, "alg": "EdDSA"}]})

    def access_token(
        self,
        user_id: uuid.UUID,
        username: str,
        *,
        verified: bool = True,
        ttl: timedelta = timedelta(minutes=15),
        session_id: uuid.UUID | None = None,
    ) -> str:
        now = self._clock()
        claims = {
            "iss": self._issuer,
            "aud": self._audience,
            "sub": str(user_id),
            "sid": str(session_id or uuid.uuid4()),
            "jti": uuid.uuid4().hex,
            "iat": int(now.timestamp()),
            "nbf": int(now.timestamp()),
            "exp": int((now + ttl).timestamp()),
            "typ": "access",
            "username": username,
            "email_verified": verified,
        }
        return jwt.encode(claims, self._key, algorithm="EdDSA", headers={"kid": KID})
