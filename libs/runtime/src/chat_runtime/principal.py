"""The signed-in caller of a REST request in services other than auth: an access token checked by the verifier.

Every failure is a problem document: no token or a bad one is 401 with the verifier's code (``session_revoked``
for a token whose session has ended), unreadable keys or not yet known ended sessions are 503 (so clients keep
their tokens during an auth outage).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Request

from chat_runtime.errors import CodedError
from chat_runtime.tokens import TokenError, TokenVerifier, VerificationUnavailable, VerifiedToken


def bearer_token(request: Request) -> str:
    """The token of an ``Authorization: Bearer …`` header, or a 401 ``unauthenticated``."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise CodedError("unauthenticated", "Send an access token: Authorization: Bearer <token>.", status=401)
    return token.strip()


async def verify_access(verifier: TokenVerifier, token: str) -> VerifiedToken:
    """An access token's claims, or the coded error a client can act on."""
    try:
        return await verifier.verify(token, typ="access")
    except TokenError as exc:
        if exc.code == "session_revoked":
            raise CodedError(exc.code, "This session has ended; sign in again.", status=401) from exc
        raise CodedError(exc.code, "The access token is not valid.", status=401) from exc
    except VerificationUnavailable as exc:
        raise CodedError("unavailable", "Tokens cannot be checked right now.", status=503, retry_after=5) from exc


def access_token_dependency(verifier: TokenVerifier) -> Callable[[Request], Awaitable[VerifiedToken]]:
    """A FastAPI dependency yielding the caller's verified access token."""

    async def dependency(request: Request) -> VerifiedToken:
        return await verify_access(verifier, bearer_token(request))

    return dependency
