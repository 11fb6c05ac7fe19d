"""Accounts: register, verify the email, reset or change the password, edit the profile, delete, disable."""

from __future__ import annotations

import hmac
import uuid
from dataclasses import replace
from datetime import datetime, timedelta

import structlog

from chat_auth.domain.errors import AuthError, Conflict, InvalidCode
from chat_auth.domain.model import CodePurpose, EmailCode, User
from chat_auth.domain.names import clean_display_name, normalize_email, normalize_username
from chat_auth.domain.passwords import check_password
from chat_auth.domain.secrets import code_hash, new_email_code
from chat_auth.service import events, limits, mail
from chat_auth.service.context import AuthContext, Client
from chat_auth.service.keys import active_key
from chat_auth.service.ports import Tx
from chat_auth.service.sessions import Principal, find_account, revoke_all, verify_token

log = structlog.get_logger("chat.auth.accounts")

RESET_TTL_MINUTES = 10


async def register(
    ctx: AuthContext, *, email: str, username: str, password: str, display_name: str | None, client: Client
) -> None:
    """Create an account and email a verification code.

    The answer is the same whether or not the address already has an account (that owner gets a notice
    instead of a code), so registering cannot be used to find out who has one. Usernames are public, so a
    taken one is reported.
    """
    now = ctx.clock()
    shown_email, email_key = normalize_email(email)
    shown_username, username_key = normalize_username(username)
    name = clean_display_name(display_name) if display_name else shown_username
    clean_password = check_password(password, username=username_key, email=email_key)
    password_hash = ctx.hasher.hash(clean_password)
    async with ctx.store.transaction() as tx:
        await limits.enforce(tx, f"register:{client.ip}", ctx.limits.registrations, now)
    async with ctx.store.transaction() as tx:
        existing = await tx.user_by_email(email_key)
        if existing is not None:
            ctx.mail.send_later(mail.already_registered_email(ctx.settings.product_name, existing.email))
            log.info("auth.register_existing_email")
            return
        user = User(
            id=uuid.uuid4(),
            email=shown_email,
            email_normalized=email_key,
            username=shown_username,
            username_normalized=username_key,
            display_name=name,
            password_hash=password_hash,
            created_at=now,
            updated_at=now,
        )
        try:
            await tx.add_user(user)
        except Conflict as exc:
            if exc.field == "username":
                raise AuthError("username_taken", "This username is taken.", status=409) from exc
            return  # the same address registered concurrently: answer as for an existing one
        code = await _new_code(ctx, tx, user, "verify_email", now)
        await events.registered(tx, user, now)
    ctx.mail.send_later(
        mail.verification_email(ctx.settings.product_name, user.email, code, ctx.settings.code_ttl_minutes)
    )
    log.info("auth.registered", user_id=str(user.id))


async def _new_code(ctx: AuthContext, tx: Tx, user: User, purpose: CodePurpose, now: datetime) -> str:
    code = new_email_code()
    await tx.add_code(
        EmailCode(
            id=uuid.uuid4(),
            user_id=user.id,
            purpose=purpose,
            code_hash=code_hash(ctx.pepper, user_id=user.id, purpose=purpose, code=code),
            created_at=now,
            expires_at=now + ctx.code_ttl,
        )
    )
    return code


async def _check_code(
    ctx: AuthContext, tx: Tx, user: User | None, purpose: CodePurpose, code: str, client: Client
) -> User:
    """Spend one attempt on ``code``; the user when it is right. Wrong, expired, used, or unknown account:
    the same invalid_code."""
    now = ctx.clock()
    await limits.enforce(tx, f"code-check-ip:{client.ip}", ctx.limits.auth_calls, now)
    if user is None:
        raise InvalidCode()
    await limits.enforce(tx, f"code-check:{purpose}:{user.id}", ctx.limits.code_checks, now)
    stored = await tx.active_code(user.id, purpose, now)
    if stored is None or stored.attempts >= ctx.settings.code_max_attempts:
        raise InvalidCode()
    expected = code_hash(ctx.pepper, user_id=user.id, purpose=purpose, code=code.strip())
    if not hmac.compare_digest(expected, stored.code_hash):
        attempts = stored.attempts + 1
        spent = attempts >= ctx.settings.code_max_attempts
        await tx.update_code(replace(stored, attempts=attempts, consumed_at=now if spent else None))
        raise InvalidCode()
    await tx.update_code(replace(stored, attempts=stored.attempts + 1, consumed_at=now))
    return user


async def verify_email(ctx: AuthContext, *, email: str, code: str, client: Client) -> None:
    """Mark the address verified with the emailed code."""
    now = ctx.clock()
    _, email_key = normalize_email(email)
    failure: AuthError | None = None
    async with ctx.store.transaction() as tx:
        user = await tx.user_by_email(email_key)
        try:
            user = await _check_code(ctx, tx, user, "verify_email", code, client)
        except AuthError as exc:
            failure = exc  # attempts must be counted even though the answer is an error: commit, then raise
        else:
            locked = await tx.user_by_id(user.id, for_update=True)
            if locked is not None and not locked.email_verified:
                verified = replace(locked, email_verified_at=now, updated_at=now)
                await tx.update_user(verified)
                await events.updated(tx, verified, now)
    if failure is not None:
        raise failure


async def resend_verification(ctx: AuthContext, *, email: str, client: Client) -> None:
    """Send a new code if the address has an unverified account; the same answer otherwise."""
    now = ctx.clock()
    _, email_key = normalize_email(email)
    async with ctx.store.transaction() as tx:
        await limits.enforce(tx, f"code-request-ip:{client.ip}", ctx.limits.auth_calls, now)
        await limits.enforce(tx, f"code-request:verify_email:{email_key}", ctx.limits.code_requests, now)
    async with ctx.store.transaction() as tx:
        user = await tx.user_by_email(email_key)
        if user is None or user.email_verified:
            return
        code = await _new_code(ctx, tx, user, "verify_email", now)
    ctx.mail.send_later(
        mail.verification_email(ctx.settings.product_name, user.email, code, ctx.settings.code_ttl_minutes)
    )


async def forgot_password(ctx: AuthContext, *, email: str, client: Client) -> None:
    """Email a reset code if the address has an account; the same answer, in the same time, otherwise."""
    now = ctx.clock()
    _, email_key = normalize_email(email)
    async with ctx.store.transaction() as tx:
        await limits.enforce(tx, f"code-request-ip:{client.ip}", ctx.limits.auth_calls, now)
        await limits.enforce(tx, f"code-request:reset_password:{email_key}", ctx.limits.code_requests, now)
    async with ctx.store.transaction() as tx:
        user = await tx.user_by_email(email_key)
        if user is None or user.disabled_at is not None:
            return
        code = await _new_code(ctx, tx, user, "reset_password", now)
    ctx.mail.send_later(mail.reset_email(ctx.settings.product_name, user.email, code, ctx.settings.code_ttl_minutes))


async def verify_reset_code(ctx: AuthContext, *, email: str, code: str, client: Client) -> tuple[str, datetime]:
    """Exchange a correct reset code for a short-lived, single-use reset token (typ=reset)."""
    now = ctx.clock()
    _, email_key = normalize_email(email)
    failure: AuthError | None = None
    async with ctx.store.transaction() as tx:
        found = await tx.user_by_email(email_key)
        try:
            user = await _check_code(ctx, tx, found, "reset_password", code, client)
        except AuthError as exc:
            failure = exc
        else:
            key = await active_key(ctx, tx)
    if failure is not None:
        raise failure
    issued = ctx.issuer.issue(
        key,
        typ="reset",
        subject=user.id,
        session_id=uuid.uuid4(),
        now=now,
        ttl=timedelta(minutes=RESET_TTL_MINUTES),
    )
    return issued.token, issued.expires_at


async def reset_password(ctx: AuthContext, *, reset_token: str, new_password: str) -> None:
    """Set a new password with a reset token. Signs out every session, does not sign in, leaves TOTP on."""
    verified = await verify_token(ctx, reset_token, typ="reset")
    now = ctx.clock()
    async with ctx.store.transaction() as tx:
        user = await tx.user_by_id(verified.sub, for_update=True)
        if user is None:
            raise AuthError("invalid_token", "The reset link is no longer valid.", status=401)
        clean = check_password(new_password, username=user.username_normalized, email=user.email_normalized)
        if not await tx.consume_jti(verified.jti, verified.expires_at):
            raise AuthError("token_used", "This reset was already used; request a new code.", status=401)
        changed = replace(user, password_hash=ctx.hasher.hash(clean), updated_at=now)
        await tx.update_user(changed)
        await revoke_all(ctx, tx, user.id, reason="password_reset")
    ctx.mail.send_later(mail.password_changed_email(ctx.settings.product_name, user.email))
    log.info("auth.password_reset", user_id=str(user.id))


async def change_password(ctx: AuthContext, principal: Principal, *, current: str, new: str, client: Client) -> int:
    """Change the password (the current one is required); ends every other session. Returns how many."""
    now = ctx.clock()
    account = f"user:{principal.user.username_normalized}"
    async with ctx.store.transaction() as tx:
        await limits.check_login_delay(tx, account=account, ip=client.ip, now=now)
    if not ctx.hasher.verify(principal.user.password_hash, current):
        async with ctx.store.transaction() as tx:
            await limits.record_login_failure(tx, account=account, ip=client.ip, now=now)
        raise AuthError("invalid_credentials", "The current password is wrong.", status=401)
    clean = check_password(new, username=principal.user.username_normalized, email=principal.user.email_normalized)
    async with ctx.store.transaction() as tx:
        user = await tx.user_by_id(principal.user.id, for_update=True)
        if user is None:
            raise AuthError("session_revoked", "This session has ended; sign in again.", status=401)
        await tx.update_user(replace(user, password_hash=ctx.hasher.hash(clean), updated_at=now))
        ended = await revoke_all(ctx, tx, user.id, reason="password_changed", keep=principal.session.id)
    ctx.mail.send_later(mail.password_changed_email(ctx.settings.product_name, principal.user.email))
    return len(ended)


async def update_profile(
    ctx: AuthContext, principal: Principal, *, display_name: str | None = None, username: str | None = None
) -> User:
    """Change the display name and/or username; a taken username is 409."""
    now = ctx.clock()
    async with ctx.store.transaction() as tx:
        user = await tx.user_by_id(principal.user.id, for_update=True)
        if user is None:
            raise AuthError("session_revoked", "This session has ended; sign in again.", status=401)
        changed = user
        if display_name is not None:
            changed = replace(changed, display_name=clean_display_name(display_name))
        if username is not None:
            shown, key = normalize_username(username)
            changed = replace(changed, username=shown, username_normalized=key)
        if changed == user:
            return user
        changed = replace(changed, updated_at=now)
        try:
            await tx.update_user(changed)
        except Conflict as exc:
            raise AuthError("username_taken", "This username is taken.", status=409) from exc
        await events.updated(tx, changed, now)
    return changed


async def set_avatar(ctx: AuthContext, principal: Principal, *, content_type: str, data: bytes) -> User:
    """Store a new avatar (already size-checked and sniffed by the caller)."""
    now = ctx.clock()
    async with ctx.store.transaction() as tx:
        user = await tx.user_by_id(principal.user.id, for_update=True)
        if user is None:
            raise AuthError("session_revoked", "This session has ended; sign in again.", status=401)
        await tx.set_avatar(user.id, content_type=content_type, data=data)
        changed = replace(user, avatar_version=user.avatar_version + 1, updated_at=now)
        await tx.update_user(changed)
        await events.updated(tx, changed, now)
    return changed


async def remove_avatar(ctx: AuthContext, principal: Principal) -> User:
    now = ctx.clock()
    async with ctx.store.transaction() as tx:
        user = await tx.user_by_id(principal.user.id, for_update=True)
        if user is None:
            raise AuthError("session_revoked", "This session has ended; sign in again.", status=401)
        await tx.delete_avatar(user.id)
        changed = replace(user, avatar_version=0, updated_at=now)
        await tx.update_user(changed)
        await events.updated(tx, changed, now)
    return changed


async def set_disabled(ctx: AuthContext, *, identifier: str, disabled: bool) -> User | None:
    """Disable an account, which ends every session everywhere and refuses sign-in, or enable it again (an
    operator's action); None when no account has that email address or username."""
    now = ctx.clock()
    async with ctx.store.transaction() as tx:
        found = await find_account(tx, identifier)
        user = await tx.user_by_id(found.id, for_update=True) if found is not None else None
        if user is None:
            return None
        user = replace(user, disabled_at=(user.disabled_at or now) if disabled else None, updated_at=now)
        await tx.update_user(user)
        if disabled:
            await revoke_all(ctx, tx, user.id, reason="account_disabled")
    log.info("auth.account_disabled" if disabled else "auth.account_enabled", user_id=str(user.id))
    return user


async def delete_account(ctx: AuthContext, principal: Principal, *, password: str | None) -> None:
    """Delete the caller's account; password accounts must confirm with the password."""
    if principal.user.password_hash is not None and not ctx.hasher.verify(principal.user.password_hash, password or ""):
        raise AuthError("invalid_credentials", "The password is wrong.", status=401)
    now = ctx.clock()
    async with ctx.store.transaction() as tx:
        await events.sessions_revoked(tx, principal.user.id, None, "account_deleted", now)
        await tx.delete_user(principal.user.id)
        await events.deleted(tx, principal.user.id, now)
    log.info("auth.account_deleted", user_id=str(principal.user.id))
