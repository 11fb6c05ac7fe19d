"""Withdrawn signing keys: once a verifier reads ``key.withdrawn`` it refuses every token the key signed, whatever
its cached JWKS still says, and trusts the key that took over at once; a verifier that starts reads the recent
withdrawals back before it is ready."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from chat_contracts.envelope import Envelope
from chat_contracts.users import SigningKeyWithdrawn
from chat_runtime.tokens import (
    CallableJwksSource,
    EndedSessions,
    EndedSessionsFeed,
    EndedSessionsUnknown,
    TokenError,
    TokenVerifier,
)

from .test_ended_sessions import ScriptedFollower

ISSUER = "https://chat.example/api/auth"
AUDIENCE = "chat"
ADA = uuid.UUID("6f1c2b8e-3d4a-4f5b-8c6d-7e8f9a0b1c2d")
T0 = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0.timestamp()

    def __call__(self) -> float:
        return self.now


class Issuer:
    """The auth service's keys as verifiers see them: a JWKS that changes, and tokens signed by any of its keys."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.keys: dict[str, Ed25519PrivateKey] = {}
        self.fetches = 0
        self.jwks = CallableJwksSource(self._document)

    def add_key(self, kid: str) -> str:
        self.keys[kid] = Ed25519PrivateKey.generate()
        return kid

    def token(self, kid: str, private: Ed25519PrivateKey | None = None) -> str:
        now = int(self.clock())
        claims = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": str(ADA),
            "sid": str(uuid.uuid4()),
            "jti": uuid.uuid4().hex,
            "iat": now,
            "nbf": now,
            # Whoever holds a leaked key can sign a token that lives as long as they like.
            "exp": now + 86_400,
            "typ": "access",
            "username": "ada",
            "email_verified": True,
        }
        return jwt.encode(claims, private or self.keys[kid], algorithm="EdDSA", headers={"kid": kid})

    def _document(self) -> Mapping[str, Any]:
        self.fetches += 1
        return {"keys": [_jwk(kid, key) for kid, key in self.keys.items()]}


def _jwk(kid: str, key: Ed25519PrivateKey) -> dict[str, Any]:
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    x = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    return {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "alg": "EdDSA", "use": "sig"}


def withdrawn(kid: str) -> SigningKeyWithdrawn:
    return SigningKeyWithdrawn(kid=kid, occurred_at=T0)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def issuer(clock: Clock) -> Issuer:
    return Issuer(clock)


@pytest.fixture
def ended(clock: Clock) -> EndedSessions:
    sessions = EndedSessions.for_leeway(30, clock=clock)
    sessions.mark_loaded()
    return sessions


@pytest.fixture
def verifier(issuer: Issuer, clock: Clock, ended: EndedSessions) -> TokenVerifier:
    return TokenVerifier(
        jwks=issuer.jwks, issuer=ISSUER, audience=AUDIENCE, min_refresh_interval=30, clock=clock, ended_sessions=ended
    )


async def refusal(verifier: TokenVerifier, token: str) -> str:
    with pytest.raises(TokenError) as caught:
        await verifier.verify(token)
    return caught.value.code


async def test_a_withdrawn_keys_tokens_are_refused_although_the_cached_jwks_still_has_the_key(
    verifier: TokenVerifier, issuer: Issuer, ended: EndedSessions
) -> None:
    leaked = issuer.add_key("leaked")
    before = issuer.token(leaked)
    assert (await verifier.verify(before)).kid == leaked

    ended.record(withdrawn(leaked))

    assert await refusal(verifier, before) == "token_key_withdrawn"
    assert await refusal(verifier, issuer.token(leaked)) == "token_key_withdrawn", "and any token minted with it"
    assert "leaked" in issuer.keys, "the verifier did not need a fresh JWKS to refuse it"


async def test_the_key_that_took_over_is_trusted_at_once_despite_the_refresh_rate_limit(
    verifier: TokenVerifier, issuer: Issuer, ended: EndedSessions
) -> None:
    leaked = issuer.add_key("leaked")
    await verifier.verify(issuer.token(leaked))  # the JWKS is cached now
    successor = issuer.add_key("successor")
    leaked_key = issuer.keys.pop(leaked)
    assert await refusal(verifier, issuer.token(successor)) == "token_unknown_key", "rate limited: no fetch yet"

    ended.record(withdrawn(leaked))

    assert (await verifier.verify(issuer.token(successor))).kid == successor
    assert await refusal(verifier, issuer.token(leaked, leaked_key)) == "token_key_withdrawn"


async def test_a_withdrawal_costs_one_fetch_and_random_kids_stay_rate_limited(
    verifier: TokenVerifier, issuer: Issuer, ended: EndedSessions
) -> None:
    leaked = issuer.add_key("leaked")
    stranger = Ed25519PrivateKey.generate()
    await verifier.verify(issuer.token(leaked))
    assert issuer.fetches == 1

    ended.record(withdrawn(leaked))
    ended.record(withdrawn(leaked))  # redelivered
    for n in range(5):
        assert await refusal(verifier, issuer.token(f"random-{n}", stranger)) == "token_unknown_key"

    assert issuer.fetches == 2
    assert ended.withdrawals == 1


async def test_other_keys_tokens_keep_working_after_a_withdrawal(
    verifier: TokenVerifier, issuer: Issuer, ended: EndedSessions
) -> None:
    leaked, kept = issuer.add_key("leaked"), issuer.add_key("kept")

    ended.record(withdrawn(leaked))

    assert (await verifier.verify(issuer.token(kept))).kid == kept
    assert await refusal(verifier, issuer.token(leaked)) == "token_key_withdrawn"


async def test_a_verifier_given_withdrawn_keys_of_its_own_refuses_their_tokens(issuer: Issuer, clock: Clock) -> None:
    class Withdrawn:
        withdrawals = 1

        def withdrawn(self, kid: str) -> bool:
            return kid == "leaked"

    verifier = TokenVerifier(
        jwks=issuer.jwks, issuer=ISSUER, audience=AUDIENCE, clock=clock, withdrawn_keys=Withdrawn()
    )
    leaked, kept = issuer.add_key("leaked"), issuer.add_key("kept")

    assert await refusal(verifier, issuer.token(leaked)) == "token_key_withdrawn"
    assert (await verifier.verify(issuer.token(kept))).kid == kept


async def test_a_starting_verifier_reads_back_a_recent_withdrawal_before_it_is_ready(
    issuer: Issuer, clock: Clock
) -> None:
    leaked = issuer.add_key("leaked")
    past = SigningKeyWithdrawn(kid=leaked, occurred_at=T0 - timedelta(minutes=20))
    follower = ScriptedFollower([Envelope.wrap(past, source="auth", key=leaked)])
    sessions = EndedSessions.for_leeway(30, clock=clock)
    feed = EndedSessionsFeed(follower, sessions, clock=clock)
    verifier = TokenVerifier(jwks=issuer.jwks, issuer=ISSUER, audience=AUDIENCE, clock=clock, ended_sessions=sessions)

    await feed.start(wait_seconds=0)
    try:
        with pytest.raises(EndedSessionsUnknown):
            await feed.check_loaded()
        follower.release.set()
        await sessions.wait_loaded()

        await feed.check_loaded()
        assert await refusal(verifier, issuer.token(leaked)) == "token_key_withdrawn"
    finally:
        await feed.stop()
