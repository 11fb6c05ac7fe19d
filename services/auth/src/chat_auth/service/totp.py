"""Authenticator-app second factor: set up, confirm, disable, recovery codes, and signing in with a code.

Every code check runs with the user's row locked and records the step it used, so a code works once even when
two requests race. Wrong codes are counted per account (and per sign-in attempt); the count is committed even
though the answer is an error.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import structlog

from chat_auth.domain import totp
from chat_auth.domain.errors import AuthError
from chat_auth.domain.model import User
from chat_auth.domain.secrets import new_recovery_codes
from chat_auth.domain.throttle import Limit
from chat_auth.service import limits, sessions
from chat_auth.service.context import AuthContext, Client
from chat_auth.service.ports import Tx
from chat_auth.service.sessions import Principal, SignedIn

log = structlog.get_logger("chat.auth.totp")

MFA_TOKEN_WINDOW = timedelta(days=1)
"""Attempts per mfa token are counted in a window far longer than the token lives (5 minutes)."""


@dataclass(frozen=True, slots=True)
class TotpSetup:
    """A pending secret, shown once, in the forms an authenticator app takes."""

    secret: str = field(repr=False)
    otpauth_uri: str
    qr_svg: str


@dataclass(frozen=True, slots=True)
class TotpStatus:
    enabled: bool
    recovery_codes_left: int


def _invalid_code() -> AuthError:
    return AuthError("invalid_totp_code", "The code is wrong, expired or already used.", status=400)


def _invalid_recovery_code() -> AuthError:
    return AuthError("invalid_recovery_code", "The recovery code is wrong or already used.", status=400)


def _session_ended() -> AuthError:
    return AuthError("session_revoked", "This session has ended; sign in again.", status=401)


def _failure_key(user_id: uuid.UUID) -> str:
    return f"totp:{user_id}"


async def _locked_user(tx: Tx, user_id: uuid.UUID) -> User:
    user = await tx.user_by_id(user_id, for_update=True)
    if user is None:
        raise _session_ended()
    return user


async def _refuse_while_locked_out(ctx: AuthContext, tx: Tx, user_id: uuid.UUID, now: datetime) -> None:
    failures = await tx.failures(_failure_key(user_id))
    remaining = totp.lockout_remaining(failures, limit=ctx.limits.totp_attempts, now=now)
    if remaining > 0:
        raise AuthError(
            "rate_limited",
            "Too many wrong codes; try again later.",
            status=429,
            retry_after=float(math.ceil(remaining)),
        )


async def _count_wrong_code(ctx: AuthContext, tx: Tx, user_id: uuid.UUID, now: datetime) -> None:
    key = _failure_key(user_id)
    if totp.failure_streak_expired(await tx.failures(key), limit=ctx.limits.totp_attempts, now=now):
        await tx.clear_failures(key)
    await tx.record_failure(key, now)


async def _spend_code(ctx: AuthContext, tx: Tx, user: User, code: str, now: datetime) -> User | None:
    """Check ``code`` against the user's secret (the row is locked by the caller). Right: the user with the
    step recorded, written back. Wrong, stale or replayed: None, with the failure counted."""
    await _refuse_while_locked_out(ctx, tx, user.id, now)
    sealed = user.totp_secret_encrypted
    step = None
    if sealed is not None:
        secret = totp.open_secret(ctx.sealer, sealed)
        step = totp.matching_step(secret, code, now=now, last_step=user.totp_last_step)
    if step is None:
        await _count_wrong_code(ctx, tx, user.id, now)
        return None
    await tx.clear_failures(_failure_key(user.id))
    spent = replace(user, totp_last_step=step)
    await tx.update_user(spent)
    return spent


async def _new_recovery_codes(ctx: AuthContext, tx: Tx, user_id: uuid.UUID) -> list[str]:
    codes = new_recovery_codes()
    hashes = [totp.recovery_code_hash(ctx.pepper, user_id=user_id, code=code) for code in codes]
    await tx.replace_recovery_codes(user_id, hashes)
    return codes


def _already_enabled() -> AuthError:
    return AuthError("totp_already_enabled", "Two-factor sign-in is already on.", status=409)


def _not_enabled() -> AuthError:
    return AuthError("totp_not_enabled", "Two-factor sign-in is not on.", status=409)


async def status(ctx: AuthContext, principal: Principal) -> TotpStatus:
    """Whether the caller's account has TOTP on, and how many unused recovery codes remain."""
    async with ctx.store.transaction() as tx:
        user = await tx.user_by_id(principal.user.id)
        if user is None:
            raise _session_ended()
        left = await tx.recovery_codes_left(user.id) if user.totp_enabled else 0
    return TotpStatus(enabled=user.totp_enabled, recovery_codes_left=left)


async def begin_setup(ctx: AuthContext, principal: Principal) -> TotpSetup:
    """Store a new secret, sealed and not yet enabled (a previous pending one is replaced); it is shown once."""
    now = ctx.clock()
    secret = totp.new_secret()
    async with ctx.store.transaction() as tx:
        user = await _locked_user(tx, principal.user.id)
        if user.totp_enabled:
            raise _already_enabled()
        pending = replace(
            user,
            totp_secret_encrypted=totp.seal_secret(ctx.sealer, secret),
            totp_enabled_at=None,
            totp_last_step=None,
            updated_at=now,
        )
        await tx.update_user(pending)
    uri = totp.otpauth_uri(secret, account=user.username, issuer=ctx.settings.totp_issuer)
    return TotpSetup(secret=secret, otpauth_uri=uri, qr_svg=totp.qr_svg(uri))


async def confirm_setup(ctx: AuthContext, principal: Principal, *, code: str) -> list[str]:
    """Turn TOTP on once the app shows a right code for the pending secret; the recovery codes, shown once."""
    now = ctx.clock()
    codes: list[str] = []
    async with ctx.store.transaction() as tx:
        user = await _locked_user(tx, principal.user.id)
        if user.totp_enabled:
            raise _already_enabled()
        if user.totp_secret_encrypted is None:
            raise AuthError("totp_setup_required", "Start the setup first.", status=409)
        spent = await _spend_code(ctx, tx, user, code, now)
        if spent is not None:
            await tx.update_user(replace(spent, totp_enabled_at=now, updated_at=now))
            codes = await _new_recovery_codes(ctx, tx, user.id)
    # Raised after the commit so the wrong attempt stays counted.
    if spent is None:
        raise _invalid_code()
    log.info("auth.totp_enabled", user_id=str(user.id))
    return codes


async def disable(
    ctx: AuthContext, principal: Principal, *, code: str | None, password: str | None, client: Client
) -> None:
    """Turn TOTP off with a current code or the account password; the secret and recovery codes are deleted."""
    if (code is None) == (password is None):
        raise AuthError("validation_failed", "Send either a code or the password.", status=422)
    if not principal.user.totp_enabled:
        raise _not_enabled()
    now = ctx.clock()
    if password is not None:
        await _check_password(ctx, principal, password, client, now)
    async with ctx.store.transaction() as tx:
        user = await _locked_user(tx, principal.user.id)
        if not user.totp_enabled:
            raise _not_enabled()
        proven: User | None = user
        if code is not None:
            proven = await _spend_code(ctx, tx, user, code, now)
        if proven is not None:
            off = replace(proven, totp_secret_encrypted=None, totp_enabled_at=None, totp_last_step=None, updated_at=now)
            await tx.update_user(off)
            await tx.replace_recovery_codes(user.id, [])
    if proven is None:
        raise _invalid_code()
    log.info("auth.totp_disabled", user_id=str(user.id))


async def _check_password(ctx: AuthContext, principal: Principal, password: str, client: Client, now: datetime) -> None:
    # The same throttle as a password sign-in: this is a password guess like any other.
    account = f"user:{principal.user.username_normalized}"
    async with ctx.store.transaction() as tx:
        await limits.check_login_delay(tx, account=account, ip=client.ip, now=now)
    if not ctx.hasher.verify(principal.user.password_hash, password):
        async with ctx.store.transaction() as tx:
            await limits.record_login_failure(tx, account=account, ip=client.ip, now=now)
        raise AuthError("invalid_credentials", "The password is wrong.", status=401)


async def regenerate_recovery_codes(ctx: AuthContext, principal: Principal, *, code: str) -> list[str]:
    """Replace every recovery code (a current TOTP code is required); the new ones, shown once."""
    now = ctx.clock()
    codes: list[str] = []
    async with ctx.store.transaction() as tx:
        user = await _locked_user(tx, principal.user.id)
        if not user.totp_enabled:
            raise _not_enabled()
        spent = await _spend_code(ctx, tx, user, code, now)
        if spent is not None:
            codes = await _new_recovery_codes(ctx, tx, user.id)
    if spent is None:
        raise _invalid_code()
    log.info("auth.recovery_codes_replaced", user_id=str(user.id))
    return codes


async def complete_login(
    ctx: AuthContext, *, mfa_token: str, code: str | None, recovery_code: str | None, client: Client
) -> SignedIn:
    """Second step of a password sign-in: a TOTP code or a recovery code, then a new session."""
    if (code is None) == (recovery_code is None):
        raise AuthError("validation_failed", "Send either a code or a recovery code.", status=422)
    mfa = await sessions.verify_token(ctx, mfa_token, typ="mfa")
    now = ctx.clock()
    per_token = Limit(ctx.limits.totp_attempts.count, MFA_TOKEN_WINDOW)
    async with ctx.store.transaction() as tx:
        await limits.enforce(tx, f"auth:{client.ip}", ctx.limits.auth_calls, now)
        await limits.enforce(tx, f"totp-mfa:{mfa.jti}", per_token, now)
    failure: AuthError | None = None
    async with ctx.store.transaction() as tx:
        user = await tx.user_by_id(mfa.sub, for_update=True)
        if user is None or not user.totp_enabled:
            raise AuthError("token_invalid", "This sign-in step is no longer valid; sign in again.", status=401)
        if user.disabled_at is not None:
            raise AuthError("account_disabled", "This account is disabled.", status=403)
        if code is not None:
            spent = await _spend_code(ctx, tx, user, code, now)
            if spent is None:
                failure = _invalid_code()
            else:
                user = spent
        elif recovery_code is not None:
            await _refuse_while_locked_out(ctx, tx, user.id, now)
            digest = totp.recovery_code_hash(ctx.pepper, user_id=user.id, code=recovery_code)
            if await tx.use_recovery_code(user.id, digest, now):
                await tx.clear_failures(_failure_key(user.id))
                log.info("auth.recovery_code_used", user_id=str(user.id), left=await tx.recovery_codes_left(user.id))
            else:
                await _count_wrong_code(ctx, tx, user.id, now)
                failure = _invalid_recovery_code()
        if failure is None:
            signed_in = await sessions.open_after_second_factor(
                ctx, tx, user=user, mfa=mfa, method="totp", client=client
            )
    if failure is not None:
        raise failure
    log.info("auth.signed_in", user_id=str(user.id), session_id=str(signed_in.session.id), second_factor=True)
    return signed_in


async def login_with_code_only(ctx: AuthContext, *, username: str, code: str, client: Client) -> SignedIn:
    """Opt-in passwordless sign-in with a username and a TOTP code; 404 unless the deployment turned it on.

    Unknown account, account without TOTP and wrong code answer alike. Its own strict limits (per account
    and per address, every attempt counted) keep its failures from locking the owner's normal second step.
    """
    if not ctx.settings.passwordless_totp_login:
        raise AuthError("not_found", "Not found.", status=404)
    now = ctx.clock()
    account = sessions.account_key(username)
    async with ctx.store.transaction() as tx:
        await limits.enforce(tx, f"auth:{client.ip}", ctx.limits.auth_calls, now)
        await limits.enforce(tx, f"totp-only-ip:{client.ip}", ctx.limits.totp_attempts, now)
        await limits.enforce(tx, f"totp-only:{account}", ctx.limits.totp_attempts, now)
    async with ctx.store.transaction() as tx:
        found = await sessions.find_account(tx, username)
        user = await tx.user_by_id(found.id, for_update=True) if found is not None else None
        step = None
        if user is not None and user.totp_enabled and user.totp_secret_encrypted is not None:
            secret = totp.open_secret(ctx.sealer, user.totp_secret_encrypted)
            step = totp.matching_step(secret, code, now=now, last_step=user.totp_last_step)
        if user is None or step is None:
            raise AuthError("invalid_credentials", "Wrong username or code.", status=401)
        if user.disabled_at is not None:
            raise AuthError("account_disabled", "This account is disabled.", status=403)
        user = replace(user, totp_last_step=step)
        await tx.update_user(user)
        # Same transaction as the step it used: the session exists only if the code was spent.
        signed_in = await sessions.open_session(ctx, tx, user, method="totp", client=client, now=now)
    log.info("auth.signed_in", user_id=str(user.id), session_id=str(signed_in.session.id), passwordless=True)
    return signed_in
