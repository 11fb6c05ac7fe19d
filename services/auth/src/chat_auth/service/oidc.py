"""Signing in with an OpenID Connect provider (Google): start, callback, the CLI's code exchange, linking.

Accounts are found by (issuer, subject) only. A verified email that no account has yet creates one; a verified
email that an account already has is never linked on its own: the owner proves the account's password first.
"""

from __future__ import annotations

import hmac
import re
import secrets
import unicodedata
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

import structlog
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from chat_auth.domain.errors import AuthError, Conflict, InvalidCredentials
from chat_auth.domain.model import Identity, OidcState, User
from chat_auth.domain.names import USERNAME_MAX, clean_display_name, normalize_email, normalize_username
from chat_auth.domain.secrets import secret_hash
from chat_auth.service import events, limits, sessions
from chat_auth.service.context import AuthContext, Client
from chat_auth.service.ports import Tx
from chat_auth.service.sessions import SecondFactorRequired, SignedIn

log = structlog.get_logger("chat.auth.oidc")

STATE_TTL = timedelta(minutes=10)
LINK_TTL = timedelta(minutes=10)
CLI_CODE_TTL = timedelta(seconds=60)
LINK_ATTEMPTS = 3
"""Wrong passwords a pending link survives; after that the user starts the provider sign-in again."""
RETURN_TO_MAX = 1024
CLI_CALLBACK_PATH = "/callback"

Mode = Literal["web", "cli"]
_Kind = Literal["sign_in", "link", "cli_code"]

_SECRET = re.compile(r"^[A-Za-z0-9_-]{43,128}$")
"""What our random values (``secrets.token_urlsafe(32)`` and longer) and S256 challenges look like."""
_PKCE_VERIFIER = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")
_PROVIDER_ERRORS = {
    "access_denied": ("oidc_access_denied", "The sign-in was cancelled at the provider.", 400),
    "temporarily_unavailable": ("oidc_provider_unavailable", "The provider is not answering; try again.", 503),
    "server_error": ("oidc_provider_unavailable", "The provider is not answering; try again.", 503),
}
_SUFFIX_ROOM = 4
"""Characters kept free at the end of a derived username for a disambiguating number."""


# --- the port ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProviderIdentity:
    """What a validated ID token says about the person (signature, iss, aud, exp, iat and nonce already checked)."""

    issuer: str
    subject: str
    email: str | None = None
    email_verified: bool = False
    name: str | None = None
    preferred_username: str | None = None


class OidcProvider(Protocol):
    """An OpenID Connect provider, configured by its issuer URL.

    ``authorization_url`` and ``exchange`` raise ``AuthError`` with ``oidc_provider_unavailable`` (503) when the
    provider cannot be reached or answers nonsense, and ``oidc_token_invalid`` (400) when it refuses the code or
    its ID token fails a check.
    """

    @property
    def issuer(self) -> str: ...

    async def authorization_url(self, *, state: str, nonce: str, code_challenge: str) -> str:
        """Where to send the browser: the code flow with ``state``, ``nonce`` and an S256 PKCE challenge."""

    async def exchange(self, *, code: str, code_verifier: str, nonce: str) -> ProviderIdentity:
        """Trade the code (with its PKCE verifier) at the token endpoint and validate the ID token."""


# --- errors -----------------------------------------------------------------------------------------------------


def oidc_disabled() -> AuthError:
    return AuthError("oidc_disabled", "Sign-in with an external provider is not configured here.", status=404)


def state_invalid() -> AuthError:
    return AuthError(
        "oidc_state_invalid",
        "This sign-in attempt has expired, was already used or started in another browser; start again.",
        status=400,
    )


def token_invalid() -> AuthError:
    return AuthError("oidc_token_invalid", "The provider's answer could not be verified; start again.", status=400)


def provider_unavailable() -> AuthError:
    return AuthError(
        "oidc_provider_unavailable", "The sign-in provider is not answering; try again.", status=503, retry_after=5
    )


def email_unverified() -> AuthError:
    return AuthError(
        "oidc_email_unverified", "The provider did not confirm an email address for this account.", status=400
    )


def _provider_refusal(error: str) -> AuthError:
    code, message, status = _PROVIDER_ERRORS.get(
        error, ("oidc_provider_error", "The provider refused the sign-in; start again.", 400)
    )
    return AuthError(code, message, status=status)


# --- pure pieces ------------------------------------------------------------------------------------------------


def check_return_to(value: str | None) -> str:
    """A same-origin path to come back to: starts with one ``/``, no scheme, host, backslash, fragment or control
    characters. Empty means ``/``."""
    if value is None or value == "":
        return "/"
    if (
        len(value) > RETURN_TO_MAX
        or not value.startswith("/")
        or value.startswith("//")
        or "\\" in value
        or "#" in value
        or any(ch.isspace() or unicodedata.category(ch).startswith("C") for ch in value)
    ):
        raise AuthError("invalid_return_to", "return_to must be a path on this site, like /rooms.", status=422)
    return value


def pkce_challenge(verifier: str) -> str:
    """The S256 code challenge of a PKCE verifier (RFC 7636 §4.2)."""
    challenge: str = create_s256_code_challenge(verifier)
    return challenge


def _slug(raw: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", raw).encode("ascii", "ignore").decode().lower()
    dotted = re.sub(r"[^a-z0-9]+", ".", ascii_text)
    return dotted.strip(".")[: USERNAME_MAX - _SUFFIX_ROOM].strip(".")


def username_base(identity: ProviderIdentity) -> str:
    """A username to start from: ``preferred_username``, else the email's local part (without ``+tag``), else the
    name; folded to ASCII, lower case, other characters turned into dots; ``user`` when nothing usable is left."""
    local = identity.email.rsplit("@", 1)[0].split("+", 1)[0] if identity.email else None
    for raw in (identity.preferred_username, local, identity.name):
        slug = _slug(raw) if raw else ""
        if slug:
            return slug
    return "user"


def username_candidates(base: str, *, random_tries: int = 20) -> Iterator[str]:
    """Valid usernames from ``base``: itself, then ``base2`` … ``base9``, then random four-digit suffixes."""

    def valid(candidate: str) -> str | None:
        try:
            return normalize_username(candidate)[0]
        except AuthError:
            return None

    tries = [base, *(f"{base}{n}" for n in range(2, 10))]
    tries += [f"{base}{secrets.randbelow(9000) + 1000}" for _ in range(random_tries)]
    for candidate in tries:
        shown = valid(candidate)
        if shown is not None:
            yield shown


def display_name_for(identity: ProviderIdentity, username: str) -> str:
    """The provider's ``name`` when it is a valid display name, else the username."""
    if identity.name:
        try:
            return clean_display_name(identity.name[:100])
        except AuthError:
            pass
    return username


# --- outcomes ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Started:
    """Send the browser to ``authorization_url``; keep ``browser_secret`` in its binding cookie."""

    authorization_url: str
    browser_secret: str


@dataclass(frozen=True, slots=True)
class Destination:
    """Where the browser goes once the callback is handled: a path of ours, or the CLI's loopback listener."""

    mode: Mode
    return_to: str
    cli_port: int | None = None


@dataclass(frozen=True, slots=True)
class SignedInWeb:
    signed: SignedIn


@dataclass(frozen=True, slots=True)
class SecondFactorNeeded:
    challenge: SecondFactorRequired


@dataclass(frozen=True, slots=True)
class CliCodeIssued:
    """Single use, valid 60 s, redeemable only with the verifier of the challenge the CLI sent at the start."""

    one_time_code: str


@dataclass(frozen=True, slots=True)
class LinkRequired:
    """An account already has this email: prove its password with this token to link the identity."""

    link_token: str


@dataclass(frozen=True, slots=True)
class Refused:
    """The provider refused or a check failed after the state was verified: ``error`` says which."""

    error: AuthError


Outcome = SignedInWeb | SecondFactorNeeded | CliCodeIssued | LinkRequired | Refused


@dataclass(frozen=True, slots=True)
class CallbackResult:
    destination: Destination
    outcome: Outcome


# --- use cases --------------------------------------------------------------------------------------------------


def enabled(ctx: AuthContext, provider: OidcProvider | None) -> OidcProvider:
    """The provider, or 404 ``oidc_disabled`` when none is configured."""
    if provider is None or not ctx.settings.oidc_client_id:
        raise oidc_disabled()
    return provider


async def start(
    ctx: AuthContext,
    provider: OidcProvider | None,
    *,
    return_to: str | None,
    browser_secret: str | None,
    client: Client,
    mode: Mode = "web",
    cli_port: int | None = None,
    cli_challenge: str | None = None,
) -> Started:
    """Remember a new sign-in attempt (state, nonce, PKCE verifier, bound to this browser) and say where to go."""
    oidc = enabled(ctx, provider)
    target = check_return_to(return_to)
    if mode == "cli" and (
        cli_port is None or not 1024 <= cli_port <= 65535 or cli_challenge is None or not _SECRET.match(cli_challenge)
    ):
        raise AuthError(
            "invalid_cli_request", "CLI sign-in needs port (1024–65535) and an S256 code_challenge.", status=422
        )
    now = ctx.clock()
    async with ctx.store.transaction() as tx:
        await limits.enforce(tx, f"oidc:{client.ip}", ctx.limits.auth_calls, now)
    # A browser that already has a binding value keeps it, so two tabs can sign in at once.
    browser = browser_secret if browser_secret and _SECRET.match(browser_secret) else secrets.token_urlsafe(32)
    state, nonce, verifier = secrets.token_urlsafe(32), secrets.token_urlsafe(32), secrets.token_urlsafe(48)
    url = await oidc.authorization_url(state=state, nonce=nonce, code_challenge=pkce_challenge(verifier))
    extra: dict[str, Any] = {"kind": "sign_in", "mode": mode}
    if mode == "cli":
        extra |= {"cli_port": cli_port, "cli_challenge": cli_challenge}
    async with ctx.store.transaction() as tx:
        await tx.add_oidc_state(
            OidcState(
                state_hash=secret_hash(state),
                browser_hash=secret_hash(browser),
                nonce=nonce,
                code_verifier=verifier,
                return_to=target,
                created_at=now,
                expires_at=now + STATE_TTL,
                extra=extra,
            )
        )
    return Started(authorization_url=url, browser_secret=browser)


async def callback(
    ctx: AuthContext,
    provider: OidcProvider | None,
    *,
    state: str | None,
    code: str | None,
    error: str | None,
    browser_secret: str | None,
    client: Client,
) -> CallbackResult:
    """Finish a sign-in attempt. Raises ``oidc_state_invalid`` when the state is unknown, spent, expired or was
    started in another browser; every later failure comes back as ``Refused`` with its destination."""
    oidc = enabled(ctx, provider)
    now = ctx.clock()
    if error and not state:
        # Some providers drop the state from error redirects. Nothing is signed in on this path, so the only
        # trust needed is in the destination: the site's root, never a place named by the request.
        return CallbackResult(Destination(mode="web", return_to="/"), Refused(_provider_refusal(error)))
    async with ctx.store.transaction() as tx:
        await limits.enforce(tx, f"oidc:{client.ip}", ctx.limits.auth_calls, now)
        pending = await tx.take_oidc_state(secret_hash(state)) if state else None
    if (
        pending is None
        or not _is(pending, "sign_in", now)
        or not browser_secret
        or not hmac.compare_digest(pending.browser_hash, secret_hash(browser_secret))
    ):
        raise state_invalid()
    mode: Mode = "cli" if pending.extra.get("mode") == "cli" else "web"
    destination = Destination(
        mode=mode, return_to=pending.return_to, cli_port=pending.extra.get("cli_port") if mode == "cli" else None
    )
    if error:
        log.info("oidc.provider_refused", error=error[:64])
        return CallbackResult(destination, Refused(_provider_refusal(error)))
    if not code:
        return CallbackResult(destination, Refused(token_invalid()))
    try:
        identity = await oidc.exchange(code=code, code_verifier=pending.code_verifier, nonce=pending.nonce)
        account = await _account_for(ctx, identity, client=client, now=now)
        if isinstance(account, LinkRequired):
            outcome: Outcome = account
        elif mode == "cli":
            outcome = await _issue_cli_code(ctx, account, challenge=str(pending.extra["cli_challenge"]), now=now)
        else:
            signed = await sign_in(ctx, account, client=client)
            outcome = SignedInWeb(signed) if isinstance(signed, SignedIn) else SecondFactorNeeded(signed)
    except AuthError as exc:
        log.info("oidc.callback_refused", code=exc.code)
        outcome = Refused(exc)
    return CallbackResult(destination, outcome)


async def sign_in(ctx: AuthContext, user: User, *, client: Client) -> SignedIn | SecondFactorRequired:
    """Open a session for an account the provider vouched for; an account with TOTP still needs its code."""
    if user.disabled_at is not None:
        raise AuthError("account_disabled", "This account is disabled.", status=403)
    now = ctx.clock()
    if user.totp_enabled:
        # The second factor protects the account whichever way the first one was proven.
        return await sessions.second_factor_challenge(ctx, user, now)
    async with ctx.store.transaction() as tx:
        signed = await sessions.open_session(ctx, tx, user, method="google", client=client, now=now)
    log.info("auth.signed_in", user_id=str(user.id), session_id=str(signed.session.id), method="google")
    return signed


async def exchange_cli_code(
    ctx: AuthContext, *, one_time_code: str, code_verifier: str, client: Client
) -> SignedIn | SecondFactorRequired:
    """Redeem the one-time code the CLI's loopback listener received, with the verifier of its challenge."""
    now = ctx.clock()
    async with ctx.store.transaction() as tx:
        await limits.enforce(tx, f"oidc:{client.ip}", ctx.limits.auth_calls, now)
        pending = await tx.take_oidc_state(secret_hash(one_time_code))
        user = (
            await tx.user_by_id(uuid.UUID(pending.extra["user_id"]))
            if pending and _is(pending, "cli_code", now)
            else None
        )
    if (
        pending is None
        or user is None
        or not _PKCE_VERIFIER.match(code_verifier)
        or not hmac.compare_digest(pkce_challenge(code_verifier), pending.code_verifier)
    ):
        raise AuthError("oidc_code_invalid", "This code has expired or was already used; sign in again.", status=400)
    return await sign_in(ctx, user, client=client)


async def link(ctx: AuthContext, *, link_token: str, password: str, client: Client) -> SignedIn | SecondFactorRequired:
    """Link a pending provider identity to the account that has its email, once the account's password is proven;
    then sign in. A wrong password counts as a failed login; the third one voids the pending link."""
    now = ctx.clock()
    token_hash = secret_hash(link_token)
    async with ctx.store.transaction() as tx:
        await limits.enforce(tx, f"oidc:{client.ip}", ctx.limits.auth_calls, now)
        pending = await tx.take_oidc_state(token_hash)
        user = (
            await tx.user_by_id(uuid.UUID(pending.extra["user_id"])) if pending and _is(pending, "link", now) else None
        )
        if pending is None or user is None:
            raise AuthError("oidc_link_invalid", "This link request has expired; sign in with the provider again.")
        account = sessions.account_key(user.email)
        # Raising here rolls the take back: a throttled attempt does not spend the pending link.
        await limits.check_login_delay(tx, account=account, ip=client.ip, now=now)
    ok = ctx.hasher.verify(user.password_hash, password)
    async with ctx.store.transaction() as tx:
        if not ok:
            await limits.record_login_failure(tx, account=account, ip=client.ip, now=now)
            attempts = int(pending.extra.get("attempts", 0)) + 1
            if attempts < LINK_ATTEMPTS:
                await tx.add_oidc_state(replace(pending, extra={**pending.extra, "attempts": attempts}))
        else:
            await limits.clear_login_failures(tx, account=account, ip=client.ip)
            user = await _link_identity(tx, user, pending, now)
    if not ok:
        log.info("oidc.link_failed", user_id=str(user.id))
        raise InvalidCredentials()
    log.info("oidc.linked", user_id=str(user.id), issuer=pending.extra["issuer"])
    return await sign_in(ctx, user, client=client)


# --- internals --------------------------------------------------------------------------------------------------


def _is(pending: OidcState, kind: _Kind, now: datetime) -> bool:
    return pending.extra.get("kind") == kind and now < pending.expires_at


class _Retry(Exception):
    """A concurrent sign-in created the same account or identity first: look again."""


async def _account_for(
    ctx: AuthContext, identity: ProviderIdentity, *, client: Client, now: datetime
) -> User | LinkRequired:
    for _ in range(3):
        try:
            async with ctx.store.transaction() as tx:
                return await _resolve(ctx, tx, identity, client=client, now=now)
        except _Retry:
            continue
    raise AuthError("conflict", "Another sign-in changed this account at the same time; try again.", status=409)


async def _resolve(
    ctx: AuthContext, tx: Tx, identity: ProviderIdentity, *, client: Client, now: datetime
) -> User | LinkRequired:
    linked = await tx.identity(identity.issuer, identity.subject)
    if linked is not None:
        user = await tx.user_by_id(linked.user_id)
        if user is None:
            raise _Retry  # the account was deleted after the read: its identities went with it
        return user
    if not identity.email or not identity.email_verified:
        raise email_unverified()
    try:
        shown_email, email_key = normalize_email(identity.email)
    except AuthError as exc:
        raise email_unverified() from exc
    existing = await tx.user_by_email(email_key)
    if existing is None:
        await limits.enforce(tx, f"register:{client.ip}", ctx.limits.registrations, now)
        return await _create_account(tx, identity, shown_email=shown_email, email_key=email_key, now=now)
    if existing.password_hash is None:
        raise AuthError(
            "oidc_account_conflict",
            "An account with this email signs in another way; sign in with it, or reset its password to link.",
            status=409,
        )
    link_token = secrets.token_urlsafe(32)
    await tx.add_oidc_state(
        OidcState(
            state_hash=secret_hash(link_token),
            browser_hash=b"",
            nonce="",
            code_verifier="",
            return_to="",
            created_at=now,
            expires_at=now + LINK_TTL,
            extra={
                "kind": "link",
                "user_id": str(existing.id),
                "issuer": identity.issuer,
                "subject": identity.subject,
                "email": shown_email,
                "attempts": 0,
            },
        )
    )
    log.info("oidc.link_required", user_id=str(existing.id))
    return LinkRequired(link_token)


async def _create_account(
    tx: Tx, identity: ProviderIdentity, *, shown_email: str, email_key: str, now: datetime
) -> User:
    for candidate in username_candidates(username_base(identity)):
        shown_username, username_key = normalize_username(candidate)
        if await tx.user_by_username(username_key) is not None:
            continue
        user = User(
            id=uuid.uuid4(),
            email=shown_email,
            email_normalized=email_key,
            username=shown_username,
            username_normalized=username_key,
            display_name=display_name_for(identity, shown_username),
            password_hash=None,
            created_at=now,
            updated_at=now,
            email_verified_at=now,  # the provider verified it
        )
        try:
            await tx.add_user(user)
        except Conflict as exc:
            if exc.field == "username":
                continue
            raise _Retry from exc  # the same email registered concurrently
        try:
            await tx.add_identity(
                Identity(
                    issuer=identity.issuer, subject=identity.subject, user_id=user.id, email=shown_email, created_at=now
                )
            )
        except Conflict as exc:
            raise _Retry from exc
        await events.registered(tx, user, now)
        log.info("auth.registered", user_id=str(user.id), method="oidc")
        return user
    raise AuthError("username_taken", "No free username could be derived; try again.", status=409)


async def _issue_cli_code(ctx: AuthContext, user: User, *, challenge: str, now: datetime) -> CliCodeIssued:
    if user.disabled_at is not None:
        raise AuthError("account_disabled", "This account is disabled.", status=403)
    code = secrets.token_urlsafe(32)
    async with ctx.store.transaction() as tx:
        await tx.add_oidc_state(
            OidcState(
                state_hash=secret_hash(code),
                browser_hash=b"",
                nonce="",
                code_verifier=challenge,
                return_to="",
                created_at=now,
                expires_at=now + CLI_CODE_TTL,
                extra={"kind": "cli_code", "user_id": str(user.id)},
            )
        )
    return CliCodeIssued(code)


async def _link_identity(tx: Tx, user: User, pending: OidcState, now: datetime) -> User:
    email = str(pending.extra["email"])
    try:
        await tx.add_identity(
            Identity(
                issuer=str(pending.extra["issuer"]),
                subject=str(pending.extra["subject"]),
                user_id=user.id,
                email=email,
                created_at=now,
            )
        )
    except Conflict as exc:
        raise AuthError(
            "oidc_identity_taken", "This provider account is already linked to an account.", status=409
        ) from exc
    current = await tx.user_by_id(user.id, for_update=True)
    if current is None:
        raise AuthError("oidc_link_invalid", "This link request has expired; sign in with the provider again.")
    if not current.email_verified and normalize_email(email)[1] == current.email_normalized:
        # The provider has just confirmed this very address, and the password proved the account: verified.
        current = replace(current, email_verified_at=now, updated_at=now)
        await tx.update_user(current)
        await events.updated(tx, current, now)
    return current
