"""The sessions that ended recently, so that every verifier refuses their access tokens before they expire; and
the signing keys withdrawn, whose tokens every verifier refuses at once.

The auth service announces every ended session on ``chat.users.events`` (``user.sessions_revoked``,
``user.deleted``), and every withdrawn signing key (``key.withdrawn``). An access token cannot outlive its
session by more than its own lifetime, so a verifier only needs the sessions that ended within the longest
access-token lifetime (plus clock leeway): that is the window it keeps, and the window it reads back when it
starts. See docs/decisions/0004-access-tokens.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import math
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Final

import structlog

from chat_contracts.envelope import Envelope
from chat_contracts.topics import USERS_EVENTS
from chat_contracts.users import SigningKeyWithdrawn, UserDeleted, UserSessionsRevoked
from chat_runtime.bus.follow import TopicFollower
from chat_runtime.tokens.errors import EndedSessionsUnknown, TokenError
from chat_runtime.tokens.verifier import DEFAULT_LEEWAY_SECONDS, VerifiedToken

log = structlog.get_logger("chat.tokens")

MAX_ACCESS_TOKEN_TTL_SECONDS: Final = 3600
"""The longest an access token may live: the auth service refuses a longer ``ACCESS_TOKEN_TTL_SECONDS``, and every
verifier remembers an ended session this long (plus leeway)."""
_RETRY_SECONDS: Final = 1.0
_FOREVER: Final = math.inf


class EndedSessions:
    """Ended sessions by id, and users all of whose sessions ended up to a moment; each kept ``keep_seconds``.
    Also the withdrawn signing keys (:class:`~chat_runtime.tokens.verifier.WithdrawnKeys`), kept for the life of
    the process: a few ids, and a key the issuer no longer publishes is unknown to a verifier that starts later.

    A lookup is two dict reads, whatever the number of entries.
    """

    def __init__(self, *, keep_seconds: float, clock: Callable[[], float] = time.time) -> None:
        if keep_seconds <= 0:
            raise ValueError("keep_seconds must be positive")
        self.keep_seconds = keep_seconds
        self._clock = clock
        self._sessions: dict[uuid.UUID, float] = {}
        """Session id → when to forget it."""
        self._users: dict[uuid.UUID, tuple[float, float]] = {}
        """User id → (tokens issued up to this time are refused, when to forget it)."""
        self._expiry: list[tuple[float, bool, uuid.UUID]] = []
        """(when to forget, is a user, id): a heap, so forgetting costs nothing per lookup."""
        self._withdrawn_kids: set[str] = set()
        self._loaded = asyncio.Event()

    @classmethod
    def for_leeway(
        cls, leeway_seconds: float = DEFAULT_LEEWAY_SECONDS, *, clock: Callable[[], float] = time.time
    ) -> EndedSessions:
        """Kept long enough for a verifier with this clock leeway: the longest token lifetime, plus the leeway on
        its ``exp``, plus as much again for the auth service's clock (``occurred_at``) running behind ours."""
        return cls(keep_seconds=MAX_ACCESS_TOKEN_TTL_SECONDS + 2 * leeway_seconds, clock=clock)

    @property
    def loaded(self) -> bool:
        """Whether every session that ended within ``keep_seconds`` before the verifier started is known."""
        return self._loaded.is_set()

    def mark_loaded(self) -> None:
        if not self._loaded.is_set():
            self._loaded.set()
            log.info(
                "tokens.ended_sessions_loaded",
                sessions=len(self._sessions),
                users=len(self._users),
                withdrawn_keys=len(self._withdrawn_kids),
            )

    async def wait_loaded(self) -> None:
        await self._loaded.wait()

    def __len__(self) -> int:
        return len(self._sessions) + len(self._users)

    @property
    def withdrawals(self) -> int:
        """How many signing keys are known to be withdrawn."""
        return len(self._withdrawn_kids)

    def withdrawn(self, kid: str) -> bool:
        """Whether the issuer withdrew the signing key ``kid``."""
        return kid in self._withdrawn_kids

    async def on_event(self, envelope: Envelope) -> None:
        """Record what a ``chat.users.events`` event ends or withdraws (other events are ignored)."""
        self.record(envelope.data)

    def record(self, data: object) -> None:
        """Record the sessions ``data`` ends, or the signing key it withdraws, if it is such an event."""
        if isinstance(data, SigningKeyWithdrawn):
            if data.kid not in self._withdrawn_kids:
                self._withdrawn_kids.add(data.kid)
                log.warning("tokens.signing_key_withdrawn", kid=data.kid)
            return
        now = self._clock()
        self._forget_expired(now)
        if isinstance(data, UserSessionsRevoked):
            forget_at = data.occurred_at.timestamp() + self.keep_seconds
            if forget_at <= now:
                return
            if data.session_ids is None:
                self._end_user(data.user_id, up_to=data.occurred_at.timestamp(), forget_at=forget_at)
            else:
                for session_id in data.session_ids:
                    if self._sessions.get(session_id, 0.0) < forget_at:
                        self._sessions[session_id] = forget_at
                        heapq.heappush(self._expiry, (forget_at, False, session_id))
        elif isinstance(data, UserDeleted):
            forget_at = data.occurred_at.timestamp() + self.keep_seconds
            if forget_at > now:
                # A deleted account gets no new session, so every token of it is refused.
                self._end_user(data.user_id, up_to=_FOREVER, forget_at=forget_at)

    def _end_user(self, user_id: uuid.UUID, *, up_to: float, forget_at: float) -> None:
        known_up_to, known_forget_at = self._users.get(user_id, (-_FOREVER, 0.0))
        self._users[user_id] = (max(known_up_to, up_to), max(known_forget_at, forget_at))
        if forget_at > known_forget_at:
            heapq.heappush(self._expiry, (forget_at, True, user_id))

    def _forget_expired(self, now: float) -> None:
        while self._expiry and self._expiry[0][0] <= now:
            forget_at, is_user, key = heapq.heappop(self._expiry)
            # A later event may have pushed the entry's end further; only the newest heap item removes it.
            if is_user:
                if key in self._users and self._users[key][1] <= forget_at:
                    del self._users[key]
            elif self._sessions.get(key, _FOREVER) <= forget_at:
                del self._sessions[key]

    def ended(self, token: VerifiedToken) -> bool:
        """Whether ``token`` belongs to a session that has ended."""
        if token.sid in self._sessions:
            return True
        user = self._users.get(token.sub)
        # iat has whole seconds: a token issued in the same second as a user-wide ending counts as before it.
        return user is not None and token.issued_at.timestamp() <= user[0]

    def check(self, token: VerifiedToken) -> None:
        """Raise :class:`TokenError` ``session_revoked`` for a token of an ended session, and
        :class:`EndedSessionsUnknown` while the recent endings are still being read."""
        if not self._loaded.is_set():
            raise EndedSessionsUnknown("recently ended sessions are still being read", retry_after=1)
        if self.ended(token):
            raise TokenError("session_revoked", "the token's session has ended")


class EndedSessionsFeed:
    """Keeps an :class:`EndedSessions` filled from ``chat.users.events``, read back ``keep_seconds`` at start (so a
    key withdrawn within that window is known before the verifier reports ready, like an ended session).

    Reading restarts (from the same point in time, which is harmless: recording is idempotent) if it fails.
    """

    def __init__(
        self, follower: TopicFollower, sessions: EndedSessions, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.sessions = sessions
        self._follower = follower
        self._clock = clock
        self._task: asyncio.Task[None] | None = None

    async def start(self, *, wait_seconds: float = 10.0) -> None:
        """Start reading, and give it up to ``wait_seconds`` to read the past (readiness tells the rest)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="ended-sessions")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait_seconds):
                await self.sessions.wait_loaded()

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def check_loaded(self) -> None:
        """Readiness: fails until the sessions that ended within ``keep_seconds`` before the start are known."""
        if not self.sessions.loaded:
            raise EndedSessionsUnknown("still reading the recently ended sessions from chat.users.events")

    async def _run(self) -> None:
        while True:
            since = datetime.fromtimestamp(self._clock() - self.sessions.keep_seconds, tz=UTC)
            try:
                await self._follower.follow(
                    USERS_EVENTS, since=since, handler=self.sessions.on_event, caught_up=self.sessions.mark_loaded
                )
                log.warning("tokens.ended_sessions_feed_failed", error="the follower stopped")
            except Exception as exc:
                # Broker, network or database trouble, whichever adapter: no record is lost by starting over
                # (reading is by time and recording is idempotent), so retry for as long as it takes; records
                # that do not decode never get here (the follower skips them).
                log.warning("tokens.ended_sessions_feed_failed", error=f"{type(exc).__name__}: {exc}")
            await asyncio.sleep(_RETRY_SECONDS)
