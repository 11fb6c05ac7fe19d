"""Signing in and out: password login, the second factor, refresh rotation, session management."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import structlog

from chat_auth.domain.errors import AuthError, InvalidCredentials
from chat_auth.domain.model import AuthMethod, RefreshToken, RevocationReason, Session, User
from chat_auth.domain.names import normalize_email, normalize_username
from chat_auth.domain.secrets import new_refresh_token, refresh_token_hash
from chat_auth.service import events, limits
from chat_auth.service.context import AuthContext, Client
from chat_auth.service.keys import active_key
from chat_auth.service.ports import Tx
from chat_runtime.tokens import JwksUnavailable, TokenError, VerifiedToken

log = structlog.get_logger("chat.auth.sessions")

MFA_TTL = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class SignedIn:
    """A new or refreshed session: an access token and the refresh token that continues it."""

    user: User
    session: Session
    access_token: str
    access_expires_at: datetime
    refresh_token: str
    refresh_expires_at: datetime


@dataclass(frozen=True, slots=True)
class SecondFactorRequired:
    """The password was right and the account has TOTP: finish with the code and this token."""

    mfa_token: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller of an authenticated request."""

    user: User
    session: Session
    token: VerifiedToken


def account_key(identifier: str) -> str:
    """The throttling key for what the caller typed, the same whether or not such an account exists."""
    try:
        return (
            "email:" + normalize_email(identifier)[1]
            if "@" in identifier
            else "user:" + normalize_username(identifier)[1]
        )
    except AuthError:
        return "raw:" + identifier.strip().casefold()[:200]


async def find_account(tx: Tx, identifier: str) -> User | None:
    """The account an email address or username names, if any."""
    try:
        if "@" in identifier:
            return await tx.user_by_email(normalize_email(identifier)[1])
        return await tx.user_by_username(normalize_username(identifier)[1])
    except AuthError:
        return None


async def verify_token(ctx: AuthContext, token: str, *, typ: str) -> VerifiedToken:
    """Verify one of our own tokens; every failure is a 401 with the verifier's code."""
    try:
        return await ctx.verifier.verify(token, typ=typ)
    except TokenError as exc:
        raise AuthError(exc.code, "The token is not valid.", status=401) from exc
    except JwksUnavailable as exc:
        raise AuthError("unavailable", "Signing keys cannot be read right now.", status=503, retry_after=5) from exc


async def authenticate(ctx: AuthContext, token: str) -> Principal:
    """An access token whose session is still active and whose account still exists."""
    verified = await verify_token(ctx, token, typ="access")
    async with ctx.store.transaction() as tx:
        session = await tx.session(verified.sid)
        user = await tx.user_by_id(verified.sub)
    now = ctx.clock()
    if session is None or user is None or session.user_id != user.id or not session.active(now):
        raise AuthError("session_revoked", "This session has ended; sign in again.", status=401)
    if user.disabled_at is not None:
        raise AuthError("account_disabled", "This account is disabled.", status=403)
    return Principal(user=user, session=session, token=verified)


async def open_session(
    ctx: AuthContext, tx: Tx, user: User, *, method: AuthMethod, client: Client, now: datetime
) -> SignedIn:
    session = Session(
        id=uuid.uuid4(),
        user_id=user.id,
        created_at=now,
        last_used_at=now,
        expires_at=now + ctx.session_max_age,
        auth_method=method,
        user_agent=client.user_agent[:300],
        ip=client.ip[:64],
    )
    await tx.add_session(session)
    return await _tokens(ctx, tx, user, session, now=now)


async def _tokens(ctx: AuthContext, tx: Tx, user: User, session: Session, *, now: datetime) -> SignedIn:
    refresh, refresh_hash = new_refresh_token()
    refresh_expires = min(now + ctx.refresh_ttl, session.expires_at)
    await tx.add_refresh_token(
        RefreshToken(token_hash=refresh_hash, session_id=session.id, created_at=now, expires_at=refresh_expires)
    )
    key = await active_key(ctx, tx)
    access = ctx.issuer.issue(
        key,
        typ="access",
        subject=user.id,
        session_id=session.id,
        now=now,
        ttl=ctx.access_ttl,
        extra={"username": user.username, "email_verified": user.email_verified},
    )
    return SignedIn(
        user=user,
        session=session,
        access_token=access.token,
        access_expires_at=access.expires_at,
        refresh_token=refresh,
        refresh_expires_at=refresh_expires,
    )


async def login(ctx: AuthContext, *, identifier: str, password: str, client: Client) -> SignedIn | SecondFactorRequired:
    """Password sign-in. Unknown account and wrong password answer alike, in about the same time."""
    now = ctx.clock()
    account = account_key(identifier)
    async with ctx.store.transaction() as tx:
        await limits.enforce(tx, f"auth:{client.ip}", ctx.limits.auth_calls, now)
        await limits.check_login_delay(tx, account=account, ip=client.ip, now=now)
        user = await find_account(tx, identifier)
    ok = ctx.hasher.verify(user.password_hash if user else None, password)
    async with ctx.store.transaction() as tx:
        if not ok or user is None:
            await limits.record_login_failure(tx, account=account, ip=client.ip, now=now)
            failed = True
        else:
            failed = False
            await limits.clear_login_failures(tx, account=account, ip=client.ip)
            current = await tx.user_by_id(user.id, for_update=True)
            if current is None:
                failed = True
            else:
                user = current
                if user.password_hash and ctx.hasher.needs_rehash(user.password_hash):
                    user = replace(user, password_hash=ctx.hasher.hash(password))
                    await tx.update_user(user)
    if failed or user is None:
        log.info("auth.login_failed", account=account)
        raise InvalidCredentials()
    if user.disabled_at is not None:
        raise AuthError("account_disabled", "This account is disabled.", status=403)
    if user.totp_enabled:
        return await second_factor_challenge(ctx, user, now)
    async with ctx.store.transaction() as tx:
        signed_in = await open_session(ctx, tx, user, method="password", client=client, now=now)
    log.info("auth.signed_in", user_id=str(user.id), session_id=str(signed_in.session.id))
    return signed_in


async def second_factor_challenge(ctx: AuthContext, user: User, now: datetime) -> SecondFactorRequired:
    async with ctx.store.transaction() as tx:
        key = await active_key(ctx, tx)
    # The session id in an mfa token is a throwaway: the real session (and its id) is created only after the
    # second factor, so nothing issued before it can be reused after it.
    issued = ctx.issuer.issue(key, typ="mfa", subject=user.id, session_id=uuid.uuid4(), now=now, ttl=MFA_TTL)
    return SecondFactorRequired(mfa_token=issued.token, expires_at=issued.expires_at)


async def complete_second_factor(
    ctx: AuthContext, *, user: User, mfa: VerifiedToken, method: AuthMethod, client: Client
) -> SignedIn:
    """Open the session once the second factor checked out; the mfa token works only once."""
    async with ctx.store.transaction() as tx:
        return await open_after_second_factor(ctx, tx, user=user, mfa=mfa, method=method, client=client)


async def open_after_second_factor(
    ctx: AuthContext, tx: Tx, *, user: User, mfa: VerifiedToken, method: AuthMethod, client: Client
) -> SignedIn:
    """Spend the mfa token and open the session inside the caller's transaction, so a replayed token rolls back
    whatever the caller spent checking the second factor (a TOTP step, a recovery code)."""
    if not await tx.consume_jti(mfa.jti, mfa.expires_at):
        raise AuthError("token_used", "This sign-in step was already completed; sign in again.", status=401)
    return await open_session(ctx, tx, user, method=method, client=client, now=ctx.clock())


async def refresh(ctx: AuthContext, *, refresh_token: str) -> SignedIn:
    """Rotate: the presented token is spent and a new one issued; presenting a spent one ends the session."""
    now = ctx.clock()
    reused = False
    async with ctx.store.transaction() as tx:
        token = await tx.refresh_token(refresh_token_hash(refresh_token))
        if token is None:
            raise AuthError("invalid_refresh_token", "Sign in again.", status=401)
        session = await tx.session(token.session_id, for_update=True)
        if session is None or not session.active(now):
            raise AuthError("session_revoked", "This session has ended; sign in again.", status=401)
        user = await tx.user_by_id(session.user_id)
        if user is None or user.disabled_at is not None:
            raise AuthError("session_revoked", "This session has ended; sign in again.", status=401)
        if token.used_at is not None:
            # A spent token came back: either the client retried or someone stole it. Either way the family is
            # no longer trustworthy, so the whole session ends (RFC 9700 §4.14.2).
            await _revoke(tx, session, "refresh_reuse", now)
            reused = True
        elif now >= token.expires_at:
            raise AuthError("invalid_refresh_token", "Sign in again.", status=401)
        else:
            await tx.mark_refresh_token_used(token.token_hash, now)
            session = replace(session, last_used_at=now)
            await tx.update_session(session)
            return await _tokens(ctx, tx, user, session, now=now)
    if reused:
        log.warning("auth.refresh_token_reused", session_id=str(token.session_id))
    raise AuthError(
        "refresh_token_reused", "This sign-in was used twice and has been ended; sign in again.", status=401
    )


async def _revoke(tx: Tx, session: Session, reason: RevocationReason, now: datetime) -> None:
    await tx.update_session(replace(session, revoked_at=now, revoked_reason=reason))
    await events.sessions_revoked(tx, session.user_id, [session.id], reason, now)


async def logout(ctx: AuthContext, principal: Principal) -> None:
    """End the caller's session."""
    now = ctx.clock()
    async with ctx.store.transaction() as tx:
        session = await tx.session(principal.session.id, for_update=True)
        if session is not None and session.revoked_at is None:
            await _revoke(tx, session, "logout", now)


async def logout_refresh(ctx: AuthContext, *, refresh_token: str) -> None:
    """End the session a refresh token belongs to (web sign-out with the cookie); unknown tokens are ignored."""
    now = ctx.clock()
    async with ctx.store.transaction() as tx:
        token = await tx.refresh_token(refresh_token_hash(refresh_token))
        session = await tx.session(token.session_id, for_update=True) if token else None
        if session is not None and session.revoked_at is None:
            await _revoke(tx, session, "logout", now)


async def revoke_all(
    ctx: AuthContext, tx: Tx, user_id: uuid.UUID, *, reason: RevocationReason, keep: uuid.UUID | None = None
) -> Sequence[uuid.UUID]:
    """End every session of a user (but ``keep``) and tell the gateways."""
    now = ctx.clock()
    ended = await tx.revoke_sessions(user_id, reason=reason, at=now, keep=keep)
    await events.sessions_revoked(tx, user_id, list(ended), reason, now)
    return ended


async def logout_all(ctx: AuthContext, principal: Principal) -> int:
    async with ctx.store.transaction() as tx:
        return len(await revoke_all(ctx, tx, principal.user.id, reason="logout_all"))


async def end_other_sessions(ctx: AuthContext, principal: Principal) -> int:
    async with ctx.store.transaction() as tx:
        return len(await revoke_all(ctx, tx, principal.user.id, reason="ended_others", keep=principal.session.id))


async def list_sessions(ctx: AuthContext, principal: Principal) -> list[Session]:
    """The caller's active sessions, newest first."""
    now = ctx.clock()
    async with ctx.store.transaction() as tx:
        return [s for s in await tx.sessions_of(principal.user.id) if s.active(now)]


async def end_session(ctx: AuthContext, principal: Principal, session_id: uuid.UUID) -> None:
    """End one of the caller's sessions; someone else's is 404 like a missing one."""
    now = ctx.clock()
    async with ctx.store.transaction() as tx:
        session = await tx.session(session_id, for_update=True)
        if session is None or session.user_id != principal.user.id or not session.active(now):
            raise AuthError("session_not_found", "No such session.", status=404)
        await _revoke(tx, session, "ended", now)
