"""The auth store on PostgreSQL: one ``engine.begin()`` block per transaction, SQLAlchemy Core queries."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import fields
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    RowMapping,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as upsert
from sqlalchemy.ext.asyncio import AsyncEngine

from chat_auth.adapters.postgres.tables import (
    EMAIL_TAKEN,
    IDENTITY_TAKEN,
    USERNAME_TAKEN,
    avatars,
    email_codes,
    identities,
    oidc_states,
    recovery_codes,
    refresh_tokens,
    sessions,
    signing_keys,
    throttle_failures,
    throttle_hits,
    used_jtis,
    users,
)
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
from chat_runtime import pg_throttle
from chat_runtime.pg_store import PgStore, PgTx

_CONFLICTS: Mapping[str, str] = {EMAIL_TAKEN: "email", USERNAME_TAKEN: "username", IDENTITY_TAKEN: "identity"}

_KEEP_FOR = timedelta(days=1)
"""Throttle windows and used jtis are deleted this long after they stop mattering."""
_USER_AGENT_CHARS = 300
_IP_CHARS = 64


class PostgresAuthStore(PgStore["PostgresTx"]):
    """``AuthStore`` on PostgreSQL; ``on_commit`` runs after each commit that queued events."""

    def __init__(self, engine: AsyncEngine, *, on_commit: Callable[[], None] | None = None) -> None:
        super().__init__(engine, PostgresTx, on_commit=on_commit)


class PostgresTx(PgTx):
    """``Tx`` on one connection inside an open transaction."""

    conflicts = _CONFLICTS
    conflict = Conflict

    # accounts

    async def add_user(self, user: User) -> None:
        await self._write_unique(insert(users).values(_columns(user)))

    async def user_by_id(self, user_id: uuid.UUID, *, for_update: bool = False) -> User | None:
        query = select(users).where(users.c.id == user_id)
        if for_update:
            query = query.with_for_update()
        return await self._one(query, User)

    async def user_by_email(self, email_normalized: str) -> User | None:
        return await self._one(select(users).where(users.c.email_normalized == email_normalized), User)

    async def user_by_username(self, username_normalized: str) -> User | None:
        return await self._one(select(users).where(users.c.username_normalized == username_normalized), User)

    async def update_user(self, user: User) -> None:
        values = _columns(user, exclude="id")
        await self._write_unique(update(users).where(users.c.id == user.id).values(values))

    async def delete_user(self, user_id: uuid.UUID) -> None:
        # Everything else that belongs to the user goes with it through ON DELETE CASCADE.
        await self._db.execute(delete(users).where(users.c.id == user_id))

    # avatars

    async def set_avatar(self, user_id: uuid.UUID, *, content_type: str, data: bytes) -> None:
        statement = upsert(avatars).values(user_id=user_id, content_type=content_type, data=data)
        statement = statement.on_conflict_do_update(
            index_elements=[avatars.c.user_id],
            set_={
                "content_type": statement.excluded.content_type,
                "data": statement.excluded.data,
                "updated_at": func.now(),
            },
        )
        await self._db.execute(statement)

    async def avatar(self, user_id: uuid.UUID) -> tuple[str, bytes] | None:
        query = select(avatars.c.content_type, avatars.c.data).where(avatars.c.user_id == user_id)
        row = (await self._db.execute(query)).first()
        return None if row is None else (row.content_type, row.data)

    async def delete_avatar(self, user_id: uuid.UUID) -> None:
        await self._db.execute(delete(avatars).where(avatars.c.user_id == user_id))

    # external identities

    async def add_identity(self, identity: Identity) -> None:
        await self._write_unique(insert(identities).values(_columns(identity)))

    async def identity(self, issuer: str, subject: str) -> Identity | None:
        query = select(identities).where(identities.c.issuer == issuer, identities.c.subject == subject)
        return await self._one(query, Identity)

    async def identities_of(self, user_id: uuid.UUID) -> Sequence[Identity]:
        query = (
            select(identities)
            .where(identities.c.user_id == user_id)
            .order_by(identities.c.created_at, identities.c.issuer, identities.c.subject)
        )
        return await self._all(query, Identity)

    # sessions and refresh tokens

    async def add_session(self, session: Session) -> None:
        await self._db.execute(insert(sessions).values(_session_columns(session)))

    async def session(self, session_id: uuid.UUID, *, for_update: bool = False) -> Session | None:
        query = select(sessions).where(sessions.c.id == session_id)
        if for_update:
            query = query.with_for_update()
        return await self._one(query, Session)

    async def update_session(self, session: Session) -> None:
        values = _session_columns(session)
        del values["id"]
        await self._db.execute(update(sessions).where(sessions.c.id == session.id).values(values))

    async def sessions_of(self, user_id: uuid.UUID) -> Sequence[Session]:
        query = (
            select(sessions)
            .where(sessions.c.user_id == user_id)
            .order_by(sessions.c.created_at.desc(), sessions.c.id.desc())
        )
        return await self._all(query, Session)

    async def revoke_sessions(
        self, user_id: uuid.UUID, *, reason: RevocationReason, at: datetime, keep: uuid.UUID | None = None
    ) -> Sequence[uuid.UUID]:
        # "Active" as in Session.active(at): an expired session is left as it is, it already ended.
        statement = (
            update(sessions)
            .where(sessions.c.user_id == user_id, sessions.c.revoked_at.is_(None), sessions.c.expires_at > at)
            .values(revoked_at=at, revoked_reason=reason)
            .returning(sessions.c.id)
        )
        if keep is not None:
            statement = statement.where(sessions.c.id != keep)
        return list((await self._db.execute(statement)).scalars())

    async def add_refresh_token(self, token: RefreshToken) -> None:
        await self._db.execute(insert(refresh_tokens).values(_columns(token)))

    async def refresh_token(self, token_hash: bytes) -> RefreshToken | None:
        query = select(refresh_tokens).where(refresh_tokens.c.token_hash == token_hash).with_for_update()
        return await self._one(query, RefreshToken)

    async def mark_refresh_token_used(self, token_hash: bytes, at: datetime) -> None:
        statement = update(refresh_tokens).where(refresh_tokens.c.token_hash == token_hash).values(used_at=at)
        await self._db.execute(statement)

    # email codes

    async def add_code(self, code: EmailCode) -> None:
        await self._db.execute(
            update(email_codes)
            .where(
                email_codes.c.user_id == code.user_id,
                email_codes.c.purpose == code.purpose,
                email_codes.c.consumed_at.is_(None),
            )
            .values(consumed_at=code.created_at)
        )
        await self._db.execute(insert(email_codes).values(_columns(code)))

    async def active_code(self, user_id: uuid.UUID, purpose: CodePurpose, now: datetime) -> EmailCode | None:
        query = (
            select(email_codes)
            .where(
                email_codes.c.user_id == user_id,
                email_codes.c.purpose == purpose,
                email_codes.c.consumed_at.is_(None),
                email_codes.c.expires_at > now,
            )
            .order_by(email_codes.c.created_at.desc())
            .limit(1)
            .with_for_update()
        )
        return await self._one(query, EmailCode)

    async def update_code(self, code: EmailCode) -> None:
        values = _columns(code, exclude="id")
        await self._db.execute(update(email_codes).where(email_codes.c.id == code.id).values(values))

    # TOTP recovery codes

    async def replace_recovery_codes(self, user_id: uuid.UUID, code_hashes: Sequence[bytes]) -> None:
        await self._db.execute(delete(recovery_codes).where(recovery_codes.c.user_id == user_id))
        if code_hashes:
            rows = [{"user_id": user_id, "code_hash": code_hash} for code_hash in code_hashes]
            await self._db.execute(upsert(recovery_codes).values(rows).on_conflict_do_nothing())

    async def use_recovery_code(self, user_id: uuid.UUID, code_hash: bytes, at: datetime) -> bool:
        statement = (
            update(recovery_codes)
            .where(
                recovery_codes.c.user_id == user_id,
                recovery_codes.c.code_hash == code_hash,
                recovery_codes.c.used_at.is_(None),
            )
            .values(used_at=at)
            .returning(recovery_codes.c.code_hash)
        )
        return (await self._db.execute(statement)).first() is not None

    async def recovery_codes_left(self, user_id: uuid.UUID) -> int:
        query = (
            select(func.count())
            .select_from(recovery_codes)
            .where(recovery_codes.c.user_id == user_id, recovery_codes.c.used_at.is_(None))
        )
        return int((await self._db.execute(query)).scalar_one())

    # single-use tokens

    async def consume_jti(self, jti: str, expires_at: datetime) -> bool:
        # Judged by the caller's clock, not the database's: a token expiring a day before this one has
        # certainly expired, since single-use tokens live far less than a day.
        await self._prune(used_jtis, used_jtis.c.expires_at < expires_at - _KEEP_FOR)
        statement = (
            upsert(used_jtis).values(jti=jti, expires_at=expires_at).on_conflict_do_nothing().returning(used_jtis.c.jti)
        )
        return (await self._db.execute(statement)).first() is not None

    # signing keys

    async def signing_keys(self) -> Sequence[SigningKey]:
        query = (
            select(signing_keys)
            .where(signing_keys.c.withdrawn_at.is_(None))
            .order_by(signing_keys.c.created_at.desc(), signing_keys.c.kid.desc())
        )
        return await self._all(query, SigningKey)

    async def signing_key(self, kid: str) -> SigningKey | None:
        return await self._one(select(signing_keys).where(signing_keys.c.kid == kid), SigningKey)

    async def add_signing_key(self, key: SigningKey) -> None:
        await self._db.execute(insert(signing_keys).values(_columns(key)))

    async def retire_signing_key(self, kid: str, at: datetime) -> None:
        await self._db.execute(update(signing_keys).where(signing_keys.c.kid == kid).values(retired_at=at))

    async def withdraw_signing_key(self, kid: str, at: datetime) -> None:
        statement = (
            update(signing_keys)
            .where(signing_keys.c.kid == kid)
            .values(
                withdrawn_at=func.coalesce(signing_keys.c.withdrawn_at, at),
                retired_at=func.coalesce(signing_keys.c.retired_at, at),
                private_key_encrypted=b"",
            )
        )
        await self._db.execute(statement)

    async def withdrawn_signing_kids(self) -> Sequence[str]:
        query = select(signing_keys.c.kid).where(signing_keys.c.withdrawn_at.is_not(None))
        return list((await self._db.execute(query)).scalars())

    async def delete_signing_keys_retired_before(self, before: datetime) -> int:
        statement = delete(signing_keys).where(
            signing_keys.c.retired_at.is_not(None),
            signing_keys.c.retired_at < before,
            signing_keys.c.withdrawn_at.is_(None),
        )
        return (await self._db.execute(statement)).rowcount

    # OIDC

    async def add_oidc_state(self, state: OidcState) -> None:
        # Abandoned sign-ins would otherwise pile up; the new state's creation time is "now".
        await self._prune(oidc_states, oidc_states.c.expires_at < state.created_at)
        await self._db.execute(insert(oidc_states).values(_columns(state)))

    async def take_oidc_state(self, state_hash: bytes) -> OidcState | None:
        statement = delete(oidc_states).where(oidc_states.c.state_hash == state_hash).returning(*oidc_states.c)
        row = (await self._db.execute(statement)).first()
        return None if row is None else OidcState(**row._mapping)

    # throttling

    async def hit(self, key: str, *, window: timedelta, now: datetime) -> int:
        return await pg_throttle.hit(self._db, throttle_hits, key, window=window, now=now)

    async def failures(self, key: str) -> Failures:
        count, last_at = await pg_throttle.failures(self._db, throttle_failures, key)
        return Failures(count=count, last_at=last_at)

    async def record_failure(self, key: str, now: datetime) -> Failures:
        count, last_at = await pg_throttle.record_failure(self._db, throttle_failures, key, now)
        return Failures(count=count, last_at=last_at)

    async def clear_failures(self, key: str) -> None:
        await pg_throttle.clear_failures(self._db, throttle_failures, key)

    # events

    # helpers


def _columns(record: Any, *, exclude: str | None = None) -> dict[str, Any]:
    return {f.name: getattr(record, f.name) for f in fields(record) if f.name != exclude}


def _session_columns(session: Session) -> dict[str, Any]:
    # Both come from the client's request; a long header must not turn a sign-in into an error.
    values = _columns(session)
    values["user_agent"] = session.user_agent[:_USER_AGENT_CHARS]
    values["ip"] = session.ip[:_IP_CHARS]
    return values


def _failures(row: RowMapping) -> Failures:
    # Row.count is tuple.count, hence the mapping.
    return Failures(count=row["count"], last_at=row["last_at"])
