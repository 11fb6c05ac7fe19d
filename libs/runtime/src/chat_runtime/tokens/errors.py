"""Why a token was refused, as a stable machine code, and why keys could not be had."""

from __future__ import annotations

from typing import Final, Literal, get_args

TokenErrorCode = Literal[
    "token_malformed",
    "token_algorithm_not_allowed",
    "token_unknown_key",
    "token_key_withdrawn",
    "token_bad_signature",
    "token_missing_claim",
    "token_invalid_claim",
    "token_wrong_issuer",
    "token_wrong_audience",
    "token_wrong_type",
    "token_expired",
    "token_not_yet_valid",
    "session_revoked",
]

TOKEN_ERROR_CODES: Final[frozenset[str]] = frozenset(get_args(TokenErrorCode))


class TokenError(Exception):
    """The token is not acceptable; answer 401 with ``code``.

    ``message`` is written for logs and clients alike: it names the rule that failed and never repeats the
    token or any value taken from it.
    """

    def __init__(self, code: TokenErrorCode, message: str) -> None:
        if code not in TOKEN_ERROR_CODES:  # pragma: no cover - guarded by the Literal type
            raise ValueError(f"unknown token error code {code!r}")
        super().__init__(message)
        self.code: TokenErrorCode = code
        self.message = message

    def __repr__(self) -> str:
        return f"TokenError(code={self.code!r}, message={self.message!r})"


class VerificationUnavailable(Exception):
    """A token cannot be checked right now; answer 503, never 401 (the token may well be good).

    Deliberately not a :class:`TokenError`: a handler that maps ``TokenError`` to 401 must not tell a client
    to discard a valid token because something the verifier needs is briefly missing.
    """

    code: str = "unavailable"

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after

    def __repr__(self) -> str:
        return f"{type(self).__name__}(message={self.message!r}, retry_after={self.retry_after!r})"


class JwksUnavailable(VerificationUnavailable):
    """The issuer's public keys could not be had."""

    code = "jwks_unavailable"


class EndedSessionsUnknown(VerificationUnavailable):
    """The verifier has not yet read which sessions ended recently, so it cannot tell whether one is over."""

    code = "ended_sessions_unknown"
