"""Answers several auth routers give alike: signed-in token responses and documented problem responses."""

from __future__ import annotations

from typing import Any

from fastapi import Response

from chat_auth.entrypoints.schemas import MfaRequired, TokenResponse
from chat_auth.service.context import AuthContext
from chat_auth.service.sessions import SecondFactorRequired, SignedIn
from chat_runtime.problems import problem_responses

REFRESH_COOKIE = "chat_refresh"

_DESCRIBED = {
    400: "Invalid, expired or already used code or request",
    401: "Not signed in, or the token or credentials are not valid",
    403: "Not allowed",
    404: "Not found (or the feature is off)",
    409: "Conflicts with the current state",
    413: "Body too large",
    415: "Unsupported media type",
    422: "The body does not match the schema or the rules",
    429: "Rate limited; see retry_after",
    503: "A dependency is down",
}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI problem responses for ``statuses``."""
    return problem_responses({status: _DESCRIBED[status] for status in statuses})


def signed_in(ctx: AuthContext, signed: SignedIn, response: Response) -> TokenResponse:
    """Tokens in the body for CLI clients; the refresh token also as an httpOnly cookie for the web client."""
    response.set_cookie(
        REFRESH_COOKIE,
        signed.refresh_token,
        httponly=True,
        secure=ctx.settings.secure_cookies,
        samesite="strict",
        path=ctx.settings.cookie_path,
        expires=signed.refresh_expires_at,
    )
    response.headers["Cache-Control"] = "no-store"
    return TokenResponse(
        access_token=signed.access_token,
        expires_in=max(0, int((signed.access_expires_at - ctx.clock()).total_seconds())),
        expires_at=signed.access_expires_at,
        refresh_token=signed.refresh_token,
        refresh_expires_at=signed.refresh_expires_at,
        session_id=signed.session.id,
        user_id=signed.user.id,
    )


def signed_in_or_challenge(
    ctx: AuthContext, result: SignedIn | SecondFactorRequired, response: Response
) -> TokenResponse | MfaRequired:
    """Tokens, or the second-factor challenge when the account has TOTP."""
    if isinstance(result, SecondFactorRequired):
        return MfaRequired(mfa_token=result.mfa_token, expires_at=result.expires_at)
    return signed_in(ctx, result, response)
