"""Verify the auth service's JWTs: EdDSA only, keys only from its JWKS, every claim checked."""

from __future__ import annotations

import asyncio
import json
import math
import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, Protocol

import jwt
import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from chat_runtime.tokens.errors import JwksUnavailable, TokenError
from chat_runtime.tokens.keys import ALGORITHM, MAX_KID_LENGTH, trusted_keys
from chat_runtime.tokens.sources import JwksSource

if TYPE_CHECKING:
    from chat_runtime.tokens.ended import EndedSessions

log = structlog.get_logger("chat.tokens")

MAX_TOKEN_LENGTH: Final = 8 * 1024
DEFAULT_LEEWAY_SECONDS: Final = 30.0
REQUIRED_CLAIMS: Final = ("iss", "aud", "sub", "sid", "jti", "typ", "iat", "nbf", "exp")
ACCESS_CLAIMS: Final = ("username", "email_verified")
# Three unpadded base64url segments. Checked before any decoding so that whitespace, padding, stray characters
# and extra segments never reach a parser.
_COMPACT_JWS: Final = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
# Header members that would change how the token is processed; we implement none of them, so refuse them
# rather than ignore them (RFC 7515 §4.1.11, RFC 7797).
_UNSUPPORTED_HEADERS: Final = ("crit", "b64", "zip")
# NumericDate bounds: before 1970 or after 9999 is nonsense and would not fit a datetime.
_MAX_NUMERIC_DATE: Final = 253_402_300_799
# Without a usable key set every verification fails; retry the fetch this often, not on every request.
_RETRY_WITHOUT_KEYS_SECONDS: Final = 1.0


@dataclass(frozen=True, slots=True)
class VerifiedToken:
    """A token whose signature, issuer, audience, type and validity window were all checked."""

    sub: uuid.UUID
    sid: uuid.UUID
    jti: str
    typ: str
    issued_at: datetime
    expires_at: datetime
    username: str | None
    email_verified: bool | None
    kid: str
    """The signing key's id: a socket authenticated with a withdrawn key's token is closed."""

    def seconds_left(self, *, now: float | None = None) -> float:
        """Seconds until ``exp`` (negative once past): when a long-lived socket must have a fresh token."""
        current = time.time() if now is None else now
        return self.expires_at.timestamp() - current


class WithdrawnKeys(Protocol):
    """The signing keys the issuer withdrew: their tokens are refused even while a cached JWKS still has them."""

    @property
    def withdrawals(self) -> int:
        """How many withdrawals are known; a change means the issuer's JWKS changed too (a successor key)."""
        ...

    def withdrawn(self, kid: str) -> bool: ...


class TokenVerifier:
    """Verify tokens issued by one issuer for one audience against that issuer's JWKS.

    Keys are cached. An unknown ``kid`` triggers at most one refresh per ``min_refresh_interval`` (so random
    kids cannot hammer the auth service); the set is re-fetched when older than ``max_cache_age``; if that
    fails the old set keeps working until ``max_stale_age``, after which verification raises
    :class:`JwksUnavailable`. Concurrent verifications share one fetch.

    With ``ended_sessions``, a token of a session that has ended is refused (``session_revoked``), and until the
    recent endings are known every verification raises :class:`EndedSessionsUnknown` (503, not 401).

    A token signed by a withdrawn key (``withdrawn_keys``, by default the ``ended_sessions``, which follow the
    same topic) is refused (``token_key_withdrawn``) before its signature is even checked: whoever holds that key
    can sign anything. A new withdrawal also makes the next verification fetch the JWKS again, rate limit or not,
    so that the key that took over signing is trusted at once.
    """

    def __init__(
        self,
        *,
        jwks: JwksSource,
        issuer: str,
        audience: str,
        leeway_seconds: float = DEFAULT_LEEWAY_SECONDS,
        min_refresh_interval: float = 30,
        max_cache_age: float = 600,
        max_stale_age: float = 1800,
        clock: Callable[[], float] = time.time,
        ended_sessions: EndedSessions | None = None,
        withdrawn_keys: WithdrawnKeys | None = None,
    ) -> None:
        if not issuer or not audience:
            raise ValueError("issuer and audience must not be empty")
        if leeway_seconds < 0 or min_refresh_interval < 0:
            raise ValueError("leeway_seconds and min_refresh_interval must not be negative")
        if not 0 < max_cache_age <= max_stale_age:
            raise ValueError("max_cache_age must be positive and at most max_stale_age")
        self._jwks = jwks
        self._issuer = issuer
        self._audience = audience
        self._leeway = leeway_seconds
        self._min_refresh_interval = min_refresh_interval
        self._max_cache_age = max_cache_age
        self._max_stale_age = max_stale_age
        self._clock = clock
        self._ended_sessions = ended_sessions
        self._withdrawn_keys: WithdrawnKeys | None = withdrawn_keys if withdrawn_keys is not None else ended_sessions
        self._withdrawals_seen = 0  # withdrawals known when the last fetch started
        # The algorithm allow-list is fixed here and nowhere else: the token's header never chooses it.
        self._jws = jwt.PyJWS(algorithms=[ALGORITHM])

        self._keys: dict[str, Ed25519PublicKey] = {}
        self._fetched_at: float | None = None  # last successful fetch
        self._attempted_at: float | None = None  # last fetch, successful or not
        self._attempts = 0  # bumped by every fetch so that waiters can tell one happened
        self._last_failure: JwksUnavailable | None = None
        self._lock = asyncio.Lock()

    @property
    def leeway_seconds(self) -> float:
        """Clock skew tolerated on ``iat``, ``nbf`` and ``exp``: a token counts as expired this long after ``exp``."""
        return self._leeway

    async def verify(self, token: str, *, typ: str = "access") -> VerifiedToken:
        """The verified claims of ``token`` if it is a valid ``typ`` token; otherwise :class:`TokenError`.

        Raises :class:`VerificationUnavailable` (not a ``TokenError``) when no trustworthy key set can be had or
        the recently ended sessions are not known yet.
        """
        header = self._parse_header(token)
        kid: str = header["kid"]
        key = await self._key_for(kid)
        try:
            decoded = self._jws.decode_complete(token, key=key, algorithms=[ALGORITHM])
        except jwt.InvalidSignatureError:
            raise TokenError("token_bad_signature", "signature does not verify") from None
        except jwt.InvalidAlgorithmError:  # pragma: no cover - the header was checked above
            raise TokenError("token_algorithm_not_allowed", "only EdDSA tokens are accepted") from None
        except jwt.InvalidTokenError:  # pragma: no cover - _parse_header decoded the same segments
            raise TokenError("token_malformed", "token cannot be decoded") from None
        try:
            claims = json.loads(decoded["payload"])
        except (ValueError, RecursionError):
            raise TokenError("token_malformed", "payload is not JSON") from None
        if not isinstance(claims, dict):
            raise TokenError("token_malformed", "payload is not a JSON object")
        verified = self._check_claims(claims, typ=typ, kid=kid)
        if self._ended_sessions is not None:
            # After every other check: only a token that would otherwise be accepted is "revoked".
            self._ended_sessions.check(verified)
        return verified

    def _parse_header(self, token: object) -> dict[str, Any]:
        if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
            raise TokenError("token_malformed", f"token is not a string of at most {MAX_TOKEN_LENGTH} chars")
        if not _COMPACT_JWS.fullmatch(token):
            raise TokenError("token_malformed", "token is not a compact JWS")
        try:
            header = self._jws.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise TokenError("token_malformed", "token header cannot be decoded") from None
        if header.get("alg") != ALGORITHM:
            raise TokenError("token_algorithm_not_allowed", "only EdDSA tokens are accepted")
        if any(name in header for name in _UNSUPPORTED_HEADERS):
            raise TokenError("token_malformed", "token header uses an unsupported extension")
        kid = header.get("kid")
        if not isinstance(kid, str) or not 0 < len(kid) <= MAX_KID_LENGTH:
            raise TokenError("token_malformed", "token header has no usable kid")
        # jwk, jku, x5u, x5c, x5t are never read: keys come from the configured JWKS only.
        return header

    def _check_claims(self, claims: dict[str, Any], *, typ: str, kid: str) -> VerifiedToken:
        for name in REQUIRED_CLAIMS:
            if name not in claims:
                raise TokenError("token_missing_claim", f"token has no {name} claim")
        if not isinstance(claims["iss"], str):
            raise TokenError("token_invalid_claim", "iss is not a string")
        if claims["iss"] != self._issuer:
            raise TokenError("token_wrong_issuer", "token was issued by another issuer")
        if self._audience not in _audiences(claims["aud"]):
            raise TokenError("token_wrong_audience", "token is meant for another audience")
        if not isinstance(claims["typ"], str):
            raise TokenError("token_invalid_claim", "typ is not a string")
        if claims["typ"] != typ:
            raise TokenError("token_wrong_type", f"a {typ} token is required")
        sub = _uuid_claim(claims, "sub")
        sid = _uuid_claim(claims, "sid")
        jti = claims["jti"]
        if not isinstance(jti, str) or not jti:
            raise TokenError("token_invalid_claim", "jti is not a non-empty string")
        username, email_verified = _profile_claims(claims, required=typ == "access")
        issued_at, not_before, expires_at = (_numeric_date(claims, name) for name in ("iat", "nbf", "exp"))

        # Time last: "expired" tells a client to refresh and retry, true only of an otherwise good token.
        now = self._clock()
        if issued_at > now + self._leeway:
            raise TokenError("token_not_yet_valid", "token was issued in the future")
        if not_before > now + self._leeway:
            raise TokenError("token_not_yet_valid", "token is not valid yet")
        if expires_at <= now - self._leeway:
            raise TokenError("token_expired", "token has expired")
        return VerifiedToken(
            sub=sub,
            sid=sid,
            jti=jti,
            typ=typ,
            issued_at=datetime.fromtimestamp(issued_at, tz=UTC),
            expires_at=datetime.fromtimestamp(expires_at, tz=UTC),
            username=username,
            email_verified=email_verified,
            kid=kid,
        )

    async def _key_for(self, kid: str) -> Ed25519PublicKey:
        if self._should_fetch(kid, self._clock()):
            await self._refresh()
        # After the fetch: a source that learns of withdrawals when it fetches (the auth service's own) has.
        if self._withdrawn_keys is not None and self._withdrawn_keys.withdrawn(kid):
            self._keys.pop(kid, None)
            raise TokenError("token_key_withdrawn", "token was signed with a key the issuer withdrew")
        now = self._clock()
        if self._fetched_at is None or now - self._fetched_at >= self._max_stale_age:
            raise JwksUnavailable(
                "the issuer's signing keys are unavailable", retry_after=self._retry_after(now)
            ) from self._last_failure
        key = self._keys.get(kid)
        if key is None:
            raise TokenError("token_unknown_key", "token was signed with a key this service does not trust")
        return key

    def _should_fetch(self, kid: str, now: float) -> bool:
        if self._attempted_at is None or self._new_withdrawals():
            return True
        since_attempt = now - self._attempted_at
        if self._fetched_at is None or now - self._fetched_at >= self._max_stale_age:
            return since_attempt >= min(_RETRY_WITHOUT_KEYS_SECONDS, self._min_refresh_interval)
        if now - self._fetched_at >= self._max_cache_age or kid not in self._keys:
            return since_attempt >= self._min_refresh_interval
        return False

    def _new_withdrawals(self) -> bool:
        # A withdrawal is announced after the issuer committed it, its successor key included: one fetch now
        # trusts the successor, instead of refusing its tokens as unknown until the rate limit allows a fetch.
        return self._withdrawn_keys is not None and self._withdrawn_keys.withdrawals != self._withdrawals_seen

    def _retry_after(self, now: float) -> float:
        if self._attempted_at is None:  # pragma: no cover - a failed check always follows an attempt
            return 0.0
        interval = min(_RETRY_WITHOUT_KEYS_SECONDS, self._min_refresh_interval)
        return max(0.0, self._attempted_at + interval - now)

    async def _refresh(self) -> None:
        attempts_seen = self._attempts
        async with self._lock:
            if self._attempts != attempts_seen:
                return  # someone fetched while we waited for the lock; their outcome stands
            if self._withdrawn_keys is not None:
                self._withdrawals_seen = self._withdrawn_keys.withdrawals
            try:
                keys = trusted_keys(await self._jwks.fetch())
            except JwksUnavailable as exc:
                self._count_attempt()
                self._last_failure = exc
                log.warning("tokens.jwks_fetch_failed", reason=exc.message, had_keys=bool(self._keys))
                return
            self._fetched_at = self._count_attempt()
            self._keys = keys
            self._last_failure = None
            log.info("tokens.jwks_refreshed", kids=sorted(keys))

    def _count_attempt(self) -> float:
        # Only finished attempts count: a fetch cancelled with its caller must not rate-limit everyone else.
        self._attempts += 1
        self._attempted_at = self._clock()
        return self._attempted_at


def _audiences(aud: object) -> list[str]:
    if isinstance(aud, str):
        return [aud]
    if isinstance(aud, list) and all(isinstance(item, str) for item in aud):
        return aud
    raise TokenError("token_invalid_claim", "aud is not a string or a list of strings")


def _uuid_claim(claims: Mapping[str, Any], name: str) -> uuid.UUID:
    value = claims[name]
    if isinstance(value, str) and len(value) == len("00000000-0000-0000-0000-000000000000"):
        try:
            parsed = uuid.UUID(value)
        except ValueError:
            pass
        else:
            # uuid.UUID also accepts braces, "urn:uuid:" and no hyphens; on the wire a UUID has one spelling.
            if str(parsed) == value.lower():
                return parsed
    raise TokenError("token_invalid_claim", f"{name} is not a UUID")


def _numeric_date(claims: Mapping[str, Any], name: str) -> float:
    value = claims[name]
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not 0 <= value <= _MAX_NUMERIC_DATE
    ):
        raise TokenError("token_invalid_claim", f"{name} is not a NumericDate")
    return float(value)


def _profile_claims(claims: Mapping[str, Any], *, required: bool) -> tuple[str | None, bool | None]:
    for name in ACCESS_CLAIMS:
        if required and name not in claims:
            raise TokenError("token_missing_claim", f"token has no {name} claim")
    username = claims.get("username")
    if username is not None and (not isinstance(username, str) or not username):
        raise TokenError("token_invalid_claim", "username is not a non-empty string")
    email_verified = claims.get("email_verified")
    if email_verified is not None and not isinstance(email_verified, bool):
        raise TokenError("token_invalid_claim", "email_verified is not a boolean")
    return username, email_verified
