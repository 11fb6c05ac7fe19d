"""Ended sessions: a verifier refuses every token of a session that ended, from the moment it reads the ending
until no token of that session could be accepted anyway; it reads the recent endings back when it starts, and
says it is not ready (and answers 503, not 401) until it has."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from chat_contracts.envelope import Envelope
from chat_contracts.spec import TopicSpec
from chat_contracts.topics import USERS_EVENTS
from chat_contracts.users import UserDeleted, UserSessionsRevoked, UserUpdated
from chat_runtime.bus.port import Handler
from chat_runtime.testing.tokens import TokenMint
from chat_runtime.tokens import (
    MAX_ACCESS_TOKEN_TTL_SECONDS,
    EndedSessions,
    EndedSessionsFeed,
    EndedSessionsUnknown,
    TokenError,
    TokenVerifier,
    VerificationUnavailable,
)

ISSUER = "https://chat.example/api/auth"
AUDIENCE = "chat"
ADA = uuid.UUID("6f1c2b8e-3d4a-4f5b-8c6d-7e8f9a0b1c2d")
LAPTOP = uuid.UUID("0a1b2c3d-4e5f-4a6b-9c7d-8e9fa0b1c2d3")
PHONE = uuid.UUID("1b2c3d4e-5f6a-4b7c-8d9e-0fa1b2c3d4e5")
LEEWAY = 30.0


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 21, 8, 0, 0, 500_000, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def timestamp(self) -> float:
        return self.now.timestamp()

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def mint(clock: Clock) -> TokenMint:
    return TokenMint(issuer=ISSUER, audience=AUDIENCE, clock=clock)


@pytest.fixture
def ended(clock: Clock) -> EndedSessions:
    sessions = EndedSessions.for_leeway(LEEWAY, clock=clock.timestamp)
    sessions.mark_loaded()
    return sessions


@pytest.fixture
def verifier(mint: TokenMint, clock: Clock, ended: EndedSessions) -> TokenVerifier:
    return TokenVerifier(
        jwks=mint.jwks,
        issuer=ISSUER,
        audience=AUDIENCE,
        leeway_seconds=LEEWAY,
        clock=clock.timestamp,
        ended_sessions=ended,
    )


def token(mint: TokenMint, session: uuid.UUID, *, user: uuid.UUID = ADA, ttl: float = 900) -> str:
    return mint.access_token(user, "ada", session_id=session, ttl=timedelta(seconds=ttl))


def revoked(at: datetime, *sessions: uuid.UUID, user: uuid.UUID = ADA) -> UserSessionsRevoked:
    return UserSessionsRevoked(user_id=user, session_ids=sessions or None, reason="logout", occurred_at=at)


async def refusal(verifier: TokenVerifier, token: str) -> str:
    with pytest.raises(TokenError) as caught:
        await verifier.verify(token)
    return caught.value.code


async def test_a_token_of_an_ended_session_is_refused_as_session_revoked(
    verifier: TokenVerifier, ended: EndedSessions, mint: TokenMint, clock: Clock
) -> None:
    laptop = token(mint, LAPTOP)
    assert (await verifier.verify(laptop)).sid == LAPTOP

    ended.record(revoked(clock(), LAPTOP))

    assert await refusal(verifier, laptop) == "session_revoked"
    assert await refusal(verifier, token(mint, LAPTOP)) == "session_revoked", "every token of the session"


async def test_the_users_other_sessions_keep_working(
    verifier: TokenVerifier, ended: EndedSessions, mint: TokenMint, clock: Clock
) -> None:
    ended.record(revoked(clock(), LAPTOP))

    assert (await verifier.verify(token(mint, PHONE))).sid == PHONE


async def test_ending_every_session_refuses_the_tokens_issued_until_then_and_not_later_ones(
    verifier: TokenVerifier, ended: EndedSessions, mint: TokenMint, clock: Clock
) -> None:
    before = token(mint, LAPTOP)
    ended.record(revoked(clock()))  # no session ids: every session of the user
    clock.advance(1)
    after = token(mint, PHONE)  # a sign-in after the ending

    assert await refusal(verifier, before) == "session_revoked"
    assert (await verifier.verify(after)).sid == PHONE


async def test_every_token_of_a_deleted_account_is_refused(
    verifier: TokenVerifier, ended: EndedSessions, mint: TokenMint, clock: Clock
) -> None:
    ended.record(UserDeleted(user_id=ADA, occurred_at=clock()))
    clock.advance(5)

    assert await refusal(verifier, token(mint, PHONE)) == "session_revoked"


async def test_other_events_end_nothing(
    verifier: TokenVerifier, ended: EndedSessions, mint: TokenMint, clock: Clock
) -> None:
    ended.record(UserUpdated(user_id=ADA, username="ada", display_name="Ada", occurred_at=clock()))

    assert len(ended) == 0
    assert (await verifier.verify(token(mint, LAPTOP))).sid == LAPTOP


async def test_a_token_failing_another_check_keeps_that_checks_code(
    verifier: TokenVerifier, ended: EndedSessions, mint: TokenMint, clock: Clock
) -> None:
    laptop = token(mint, LAPTOP, ttl=60)
    ended.record(revoked(clock(), LAPTOP))
    clock.advance(60 + LEEWAY + 1)

    assert await refusal(verifier, laptop) == "token_expired", "refresh-and-retry is the honest answer here"


async def test_until_the_recent_endings_are_read_a_token_cannot_be_checked_rather_than_refused(
    mint: TokenMint, clock: Clock
) -> None:
    ended = EndedSessions.for_leeway(LEEWAY, clock=clock.timestamp)
    verifier = TokenVerifier(
        jwks=mint.jwks, issuer=ISSUER, audience=AUDIENCE, clock=clock.timestamp, ended_sessions=ended
    )

    with pytest.raises(EndedSessionsUnknown) as caught:
        await verifier.verify(token(mint, LAPTOP))
    assert isinstance(caught.value, VerificationUnavailable), "a 503 with retry_after, so clients keep the token"

    ended.mark_loaded()
    assert (await verifier.verify(token(mint, LAPTOP))).sid == LAPTOP


def test_an_ending_is_kept_until_no_token_of_its_session_can_be_accepted_then_forgotten(
    ended: EndedSessions, clock: Clock
) -> None:
    ended.record(revoked(clock(), LAPTOP))
    keep = MAX_ACCESS_TOKEN_TTL_SECONDS + 2 * LEEWAY
    assert ended.keep_seconds == keep

    clock.advance(keep - 1)
    ended.record(revoked(clock(), PHONE))
    assert len(ended) == 2

    clock.advance(1)
    ended.record(revoked(clock(), uuid.uuid4()))
    assert len(ended) == 2, "the laptop's ending is forgotten, the phone's and the new one kept"


def test_an_ending_older_than_the_window_is_not_kept(ended: EndedSessions, clock: Clock) -> None:
    long_ago = clock() - timedelta(seconds=ended.keep_seconds)

    ended.record(revoked(long_ago, LAPTOP))
    ended.record(UserDeleted(user_id=ADA, occurred_at=long_ago))

    assert len(ended) == 0


def test_a_repeated_ending_keeps_the_session_until_the_later_end(ended: EndedSessions, clock: Clock) -> None:
    first = clock()
    ended.record(revoked(first, LAPTOP))
    clock.advance(100)
    ended.record(revoked(clock(), LAPTOP))  # redelivered or ended again: the later one counts

    clock.advance(ended.keep_seconds - 50)
    ended.record(revoked(clock(), PHONE))
    assert len(ended) == 2, "the laptop is still remembered: its second ending is not over yet"


def test_the_users_topic_keeps_records_long_enough_to_be_read_back() -> None:
    # The gateway allows up to 120 s of leeway; two hours leaves room for clocks and slow starts.
    read_back = EndedSessions.for_leeway(120).keep_seconds
    assert read_back < 2 * 3600
    assert USERS_EVENTS.retention_ms is None or USERS_EVENTS.retention_ms >= 2 * 3600 * 1000
    assert USERS_EVENTS.cleanup_policy == "delete", "compaction would keep only each user's last event"


# --- the feed -------------------------------------------------------------------------------------------------


class ScriptedFollower:
    """Follows by handing over ``past``, then waiting for ``release`` before it says it caught up; ``failures``
    first attempts raise."""

    def __init__(self, past: list[Envelope], *, failures: int = 0) -> None:
        self.past = past
        self.failures = failures
        self.release = asyncio.Event()
        self.calls: list[tuple[str, datetime]] = []

    async def follow(
        self, spec: TopicSpec, *, since: datetime, handler: Handler, caught_up: Callable[[], None]
    ) -> None:
        self.calls.append((spec.name, since))
        if len(self.calls) <= self.failures:
            raise ConnectionError("broker unreachable")
        for envelope in self.past:
            await handler(envelope)
        await self.release.wait()
        caught_up()
        await asyncio.Event().wait()


def envelope(data: UserSessionsRevoked) -> Envelope:
    return Envelope.wrap(data, source="auth", key=str(data.user_id))


async def test_the_feed_is_not_ready_until_it_has_read_back_one_token_lifetime(mint: TokenMint, clock: Clock) -> None:
    follower = ScriptedFollower([envelope(revoked(clock(), LAPTOP))])
    sessions = EndedSessions.for_leeway(LEEWAY, clock=clock.timestamp)
    feed = EndedSessionsFeed(follower, sessions, clock=clock.timestamp)
    verifier = TokenVerifier(
        jwks=mint.jwks, issuer=ISSUER, audience=AUDIENCE, clock=clock.timestamp, ended_sessions=sessions
    )

    await feed.start(wait_seconds=0)
    try:
        with pytest.raises(EndedSessionsUnknown):
            await feed.check_loaded()
        with pytest.raises(EndedSessionsUnknown):
            await verifier.verify(token(mint, PHONE))

        follower.release.set()
        await sessions.wait_loaded()

        await feed.check_loaded()
        assert await refusal(verifier, token(mint, LAPTOP)) == "session_revoked"
        assert (await verifier.verify(token(mint, PHONE))).sid == PHONE
        assert follower.calls == [(USERS_EVENTS.name, clock() - timedelta(seconds=sessions.keep_seconds))]
    finally:
        await feed.stop()


async def test_the_feed_starts_over_when_reading_fails(clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("chat_runtime.tokens.ended._RETRY_SECONDS", 0)
    follower = ScriptedFollower([envelope(revoked(clock(), LAPTOP))], failures=2)
    follower.release.set()
    sessions = EndedSessions.for_leeway(LEEWAY, clock=clock.timestamp)
    feed = EndedSessionsFeed(follower, sessions, clock=clock.timestamp)

    await feed.start(wait_seconds=10)
    try:
        assert sessions.loaded
        assert len(follower.calls) == 3
        assert len(sessions) == 1
    finally:
        await feed.stop()
