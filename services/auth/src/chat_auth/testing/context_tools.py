"""Helpers that need the service's AuthContext: forging validly signed tokens for attack tests."""

from __future__ import annotations

from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from chat_auth.service.context import AuthContext
from chat_auth.service.keys import active_key


def forger(ctx: AuthContext) -> Any:
    async def forge(claims: dict[str, Any]) -> str:
        async with ctx.store.transaction() as tx:
            key = await active_key(ctx, tx)
        private = Ed25519PrivateKey.from_private_bytes(
            ctx.sealer.open(key.private_key_encrypted, context="signing-key")
        )
        return jwt.encode(claims, private, algorithm="EdDSA", headers={"kid": key.kid})

    return forge
