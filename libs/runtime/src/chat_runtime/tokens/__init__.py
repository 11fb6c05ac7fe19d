"""Access-token verification for every service: EdDSA JWTs from the auth service, keys from its JWKS.

See docs/decisions/0004-access-tokens.md for the format and the reasons behind each rule.
"""

from chat_runtime.tokens.ended import MAX_ACCESS_TOKEN_TTL_SECONDS, EndedSessions, EndedSessionsFeed
from chat_runtime.tokens.errors import (
    TOKEN_ERROR_CODES,
    EndedSessionsUnknown,
    JwksUnavailable,
    TokenError,
    TokenErrorCode,
    VerificationUnavailable,
)
from chat_runtime.tokens.keys import trusted_keys
from chat_runtime.tokens.sources import (
    JWKS_PATH,
    CallableJwksSource,
    HttpJwksSource,
    JwksSource,
    StaticJwksSource,
)
from chat_runtime.tokens.verifier import MAX_TOKEN_LENGTH, TokenVerifier, VerifiedToken, WithdrawnKeys

__all__ = [
    "JWKS_PATH",
    "MAX_ACCESS_TOKEN_TTL_SECONDS",
    "MAX_TOKEN_LENGTH",
    "TOKEN_ERROR_CODES",
    "CallableJwksSource",
    "EndedSessions",
    "EndedSessionsFeed",
    "EndedSessionsUnknown",
    "HttpJwksSource",
    "JwksSource",
    "JwksUnavailable",
    "StaticJwksSource",
    "TokenError",
    "TokenErrorCode",
    "TokenVerifier",
    "VerificationUnavailable",
    "VerifiedToken",
    "WithdrawnKeys",
    "trusted_keys",
]
