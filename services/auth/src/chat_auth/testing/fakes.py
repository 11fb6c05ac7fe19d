"""In-memory stand-ins for unit tests: a store with real transaction semantics, a recording mailer, a clock."""

from __future__ import annotations

import asyncio
import copy
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from chat_auth.domain.errors import Conflict
from chat_auth.domain.model import (
    CodePurpose,
    EmailCode,
    Failures,
    Identity,
    OidcState,
    RefreshToken,
    RevocationReason,
    Session,
    SigningKey,
    User,
)
from chat_auth.service.ports import Email
from chat_contracts.envelope import Envelope


@dataclass
class _State:
    users: dict[uuid.UUID, User] = field(default_factory=dict)
    avatars: dict[uuid.UUID, tuple[str, bytes]] = field(default_factory=dict)
    identities: dict[tuple[str, str], Identity] = field(default_factory=dict)
    sessions: dict[uuid.UUID, Session] = field(default_factory=dict)
    refresh_tokens: dict[bytes, RefreshToken] = field(default_factory=dict)
    codes: dict[uuid.UUID, EmailCode] = field(default_factory=dict)
    recovery: dict[uuid.UUID, dict[bytes, datetime | None]] = field(default_factory=dict)
    jtis: dict[str, datetime] = field(default_factory=dict)
    keys: dict[str, SigningKey] = field(default_factory=dict)
    oidc: dict[bytes, OidcState] = field(default_factory=dict)
    hits: dict[tuple[str, int], int] = field(default_factory=dict)
    failures: dict[str, Failures] = field(default_factory=dict)
    outbox: list[tuple[str, Envelope]] = field(default_factory=list)


class FakeTx:
    """A transaction over a private copy of the state; committed by swapping it in."""

    def __init__(self, state: _State) -> None:
        self.state = state

    async def add_user(self, user: User) -> None:
        for other in self.state.users.values():
            if other.email_normalized == user.email_normalized:
                raise Conflict("email")
            if other.username_normalized == user.username_normalized:
                raise Conflict("username")
        self.state.users[user.id] = user

    async def user_by_id(self, user_id: uuid.UUID, *, for_update: bool = False) -> User | None:
        return self.state.users.get(user_id)

    async def user_by_email(self, email_normalized: str) -> User | None:
        return next((u for u in self.state.users.values() if u.email_normalized == email_normalized), None)

    async def user_by_username(self, username_normalized: str) -> User | None:
        return next((u for u in self.state.users.values() if u.username_normalized == username_normalized), None)

    async def update_user(self, user: User) -> None:
        for other in self.state.users.values():
            if other.id != user.id and other.username_normalized == user.username_normalized:
                raise Conflict("username")
            if other.id != user.id and other.email_normalized == user.email_normalized:
                raise Conflict("email")
        self.state.users[user.id] = user

    async def delete_user(self, user_id: uuid.UUID) -> None:
        state = self.state
        state.users.pop(user_id, None)
        state.avatars.pop(user_id, None)
        state.recovery.pop(user_id, None)
        state.identities = {k: v for k, v in state.identities.items() if v.user_id != user_id}
        gone = {s.id for s in state.sessions.values() if s.user_id == user_id}
        state.sessions = {k: v for k, v in state.sessions.items() if k not in gone}
        state.refresh_tokens = {k: v for k, v in state.refresh_tokens.items() if v.session_id not in gone}
        state.codes = {k: v for k, v in state.codes.items() if v.user_id != user_id}

    async def set_avatar(self, user_id: uuid.UUID, *, content_type: str, data: bytes) -> None:
        self.state.avatars[user_id] = (content_type, data)

    async def avatar(self, user_id: uuid.UUID) -> tuple[str, bytes] | None:
        return self.state.avatars.get(user_id)

    async def delete_avatar(self, user_id: uuid.UUID) -> None:
        self.state.avatars.pop(user_id, None)

    async def add_identity(self, identity: Identity) -> None:
        key = (identity.issuer, identity.subject)
        if key in self.state.identities:
            raise Conflict("identity")
        self.state.identities[key] = identity

    async def identity(self, issuer: str, subject: str) -> Identity | None:
        return self.state.identities.get((issuer, subject))

    async def identities_of(self, user_id: uuid.UUID) -> Sequence[Identity]:
        return [i for i in self.state.identities.values() if i.user_id == user_id]

    async def add_session(self, session: Session) -> None:
        self.state.sessions[session.id] = session

    async def session(self, session_id: uuid.UUID, *, for_update: bool = False) -> Session | None:
        return self.state.sessions.get(session_id)

    async def update_session(self, session: Session) -> None:
        self.state.sessions[session.id] = session

    async def sessions_of(self, user_id: uuid.UUID) -> Sequence[Session]:
        mine = [s for s in self.state.sessions.values() if s.user_id == user_id]
        return sorted(mine, key=lambda s: s.created_at, reverse=True)

    async def revoke_sessions(
        self, user_id: uuid.UUID, *, reason: RevocationReason, at: datetime, keep: uuid.UUID | None = None
    ) -> Sequence[uuid.UUID]:
        ended = []
        for session in list(self.state.sessions.values()):
            if session.user_id == user_id and session.id != keep and session.active(at):
                self.state.sessions[session.id] = replace(session, revoked_at=at, revoked_reason=reason)
                ended.append(session.id)
        return ended

    async def add_refresh_token(self, token: RefreshToken) -> None:
        self.state.refresh_tokens[token.token_hash] = token

    async def refresh_token(self, token_hash: bytes) -> RefreshToken | None:
        return self.state.refresh_tokens.get(token_hash)

    async def mark_refresh_token_used(self, token_hash: bytes, at: datetime) -> None:
        token = self.state.refresh_tokens[token_hash]
        self.state.refresh_tokens[token_hash] = replace(token, used_at=at)

    async def add_code(self, code: EmailCode) -> None:
        for other in list(self.state.codes.values()):
            if other.user_id == code.user_id and other.purpose == code.purpose and other.consumed_at is None:
                self.state.codes[other.id] = replace(other, consumed_at=code.created_at)
        self.state.codes[code.id] = code

    async def active_code(self, user_id: uuid.UUID, purpose: CodePurpose, now: datetime) -> EmailCode | None:
        live = [
            c
            for c in self.state.codes.values()
            if c.user_id == user_id and c.purpose == purpose and c.consumed_at is None and now < c.expires_at
        ]
        return max(live, key=lambda c: c.created_at, default=None)

    async def update_code(self, code: EmailCode) -> None:
        self.state.codes[code.id] = code

    async def replace_recovery_codes(self, user_id: uuid.UUID, code_hashes: Sequence[bytes]) -> None:
        self.state.recovery[user_id] = dict.fromkeys(code_hashes)

    async def use_recovery_code(self, user_id: uuid.UUID, code_hash: bytes, at: datetime) -> bool:
        codes = self.state.recovery.get(user_id, {})
        if code_hash not in codes or codes[code_hash] is not None:
            return False
        codes[code_hash] = at
        return True

    async def recovery_codes_left(self, user_id: uuid.UUID) -> int:
        return sum(1 for used in self.state.recovery.get(user_id, {}).values() if used is None)

    async def consume_jti(self, jti: str, expires_at: datetime) -> bool:
        if jti in self.state.jtis:
            return False
        self.state.jtis[jti] = expires_at
        return True

    async def signing_keys(self) -> Sequence[SigningKey]:
        live = (key for key in self.state.keys.values() if key.withdrawn_at is None)
        return sorted(live, key=lambda k: k.created_at, reverse=True)

    async def signing_key(self, kid: str) -> SigningKey | None:
        return self.state.keys.get(kid)

    async def add_signing_key(self, key: SigningKey) -> None:
        self.state.keys[key.kid] = key

    async def retire_signing_key(self, kid: str, at: datetime) -> None:
        self.state.keys[kid] = replace(self.state.keys[kid], retired_at=at)

    async def withdraw_signing_key(self, kid: str, at: datetime) -> None:
        key = self.state.keys.get(kid)
        if key is not None:
            self.state.keys[kid] = replace(
                key,
                withdrawn_at=key.withdrawn_at or at,
                retired_at=key.retired_at or at,
                private_key_encrypted=b"",
            )

    async def withdrawn_signing_kids(self) -> Sequence[str]:
        return [kid for kid, key in self.state.keys.items() if key.withdrawn_at is not None]

    async def delete_signing_keys_retired_before(self, before: datetime) -> int:
        gone = [
            kid
            for kid, key in self.state.keys.items()
            if key.retired_at is not None and key.retired_at < before and key.withdrawn_at is None
        ]
        for kid in gone:
            del self.state.keys[kid]
        return len(gone)

    async def add_oidc_state(self, state: OidcState) -> None:
        self.state.oidc[state.state_hash] = state

    async def take_oidc_state(self, state_hash: bytes) -> OidcState | None:
        return self.state.oidc.pop(state_hash, None)

    async def hit(self, key: str, *, window: timedelta, now: datetime) -> int:
        seconds = int(window.total_seconds())
        slot = (key, int(now.timestamp()) // seconds)
        self.state.hits[slot] = self.state.hits.get(slot, 0) + 1
        return self.state.hits[slot]

    async def failures(self, key: str) -> Failures:
        return self.state.failures.get(key, Failures())

    async def record_failure(self, key: str, now: datetime) -> Failures:
        current = self.state.failures.get(key, Failures())
        self.state.failures[key] = Failures(count=current.count + 1, last_at=now)
        return self.state.failures[key]

    async def clear_failures(self, key: str) -> None:
        self.state.failures.pop(key, None)

    async def emit(self, envelope: Envelope, *, topic: str) -> None:
        self.state.outbox.append((topic, envelope))


class FakeAuthStore:
    """Serializable transactions over in-memory state: a failed transaction leaves no trace."""

    def __init__(self) -> None:
        self.state = _State()
        self._lock = asyncio.Lock()
        self.commits = 0

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[FakeTx]:
        async with self._lock:
            working = copy.deepcopy(self.state)
            yield FakeTx(working)
            self.state = working
            self.commits += 1

    def emitted(self) -> list[Envelope]:
        return [envelope for _, envelope in self.state.outbox]


class RecordingMailer:
    """Keeps what would have been sent."""

    def __init__(self) -> None:
        self.sent: list[Email] = []

    async def send(self, email: Email) -> None:
        self.sent.append(email)

    def last_to(self, address: str) -> Email:
        return next(email for email in reversed(self.sent) if email.to.lower() == address.lower())


class FakeClock:
    """A settable clock, UTC. It starts at the current minute unless told otherwise: what keeps real time beside
    it (an HTTP client's cookie jar, a browser) must see the cookies it dates as current. A fixed start date made
    the 14-day refresh cookie expire in the client's jar two weeks later, and the cookie refresh test fail."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime.now(UTC).replace(second=0, microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)
