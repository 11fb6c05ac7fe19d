"""HTTP routes of the auth service, mounted under /api/auth."""

from __future__ import annotations

import uuid
from importlib.metadata import version
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from chat_auth.domain.avatars import sniff_image
from chat_auth.domain.errors import AuthError
from chat_auth.entrypoints.deps import ClientDep, ContextDep, CurrentUser, bind_context
from chat_auth.entrypoints.http_oidc import build_oidc_router
from chat_auth.entrypoints.http_totp import build_totp_router
from chat_auth.entrypoints.responses import REFRESH_COOKIE, problems, signed_in, signed_in_or_challenge
from chat_auth.entrypoints.schemas import (
    Accepted,
    DeleteAccount,
    EmailCodeRequest,
    EmailOnly,
    LoginRequest,
    MfaRequired,
    PasswordChange,
    PasswordReset,
    Profile,
    ProfileUpdate,
    RefreshRequest,
    RegisterRequest,
    ResetTokenResponse,
    ServiceInfo,
    SessionsEnded,
    SessionView,
    TokenResponse,
)
from chat_auth.service import accounts, keys, sessions
from chat_auth.service.context import AuthContext
from chat_auth.service.events import avatar_url
from chat_auth.service.oidc import OidcProvider


def _profile(principal_user: Any) -> Profile:
    user = principal_user
    return Profile(
        id=user.id,
        email=user.email,
        email_verified=user.email_verified,
        username=user.username,
        display_name=user.display_name,
        avatar_url=avatar_url(user),
        totp_enabled=user.totp_enabled,
        has_password=user.password_hash is not None,
        created_at=user.created_at,
    )


def build_router(ctx: AuthContext, oidc: OidcProvider | None = None) -> APIRouter:
    """The auth service's routes, bound to ``ctx``."""
    router = APIRouter(tags=["auth"], dependencies=[Depends(bind_context(ctx))])

    @router.get("/", summary="Which service answers here, and what it offers", response_model=ServiceInfo)
    async def about() -> ServiceInfo:
        return ServiceInfo(
            service="auth",
            version=version("chat-auth"),
            oidc_enabled=bool(ctx.settings.oidc_client_id),
            oidc_provider=ctx.settings.oidc_provider_name if ctx.settings.oidc_client_id else None,
            passwordless_totp_login=ctx.settings.passwordless_totp_login,
        )

    @router.get("/.well-known/jwks.json", summary="Public keys that verify access tokens (JWKS)")
    async def jwks() -> JSONResponse:
        document = await keys.published_keys(ctx)
        return JSONResponse(document, headers={"Cache-Control": "public, max-age=300"})

    @router.post(
        "/register",
        status_code=202,
        response_model=Accepted,
        summary="Create an account; a code is emailed",
        responses=problems(409, 422, 429),
    )
    async def register(body: RegisterRequest, client: ClientDep) -> Accepted:
        await accounts.register(
            ctx,
            email=body.email,
            username=body.username,
            password=body.password,
            display_name=body.display_name,
            client=client,
        )
        return Accepted(message="If this address can be registered, a verification code is on its way.")

    @router.post(
        "/email/verify",
        response_model=Accepted,
        summary="Verify the email address with the emailed code",
        responses=problems(400, 422, 429),
    )
    async def verify_email(body: EmailCodeRequest, client: ClientDep) -> Accepted:
        await accounts.verify_email(ctx, email=body.email, code=body.code, client=client)
        return Accepted(message="The email address is verified.")

    @router.post(
        "/email/resend",
        status_code=202,
        response_model=Accepted,
        summary="Send a new verification code",
        responses=problems(422, 429),
    )
    async def resend(body: EmailOnly, client: ClientDep) -> Accepted:
        await accounts.resend_verification(ctx, email=body.email, client=client)
        return Accepted(message="If this address has an unverified account, a new code is on its way.")

    @router.post(
        "/login",
        response_model=TokenResponse | MfaRequired,
        summary="Sign in with email or username and password",
        responses=problems(401, 403, 422, 429),
    )
    async def login(body: LoginRequest, client: ClientDep, response: Response) -> TokenResponse | MfaRequired:
        result = await sessions.login(ctx, identifier=body.identifier, password=body.password, client=client)
        return signed_in_or_challenge(ctx, result, response)

    @router.post(
        "/token/refresh",
        response_model=TokenResponse,
        summary="Trade a refresh token (body or cookie) for new tokens; the old one stops working",
        responses=problems(401, 422),
    )
    async def refresh(request: Request, response: Response, body: RefreshRequest | None = None) -> TokenResponse:
        token = (body.refresh_token if body else None) or request.cookies.get(REFRESH_COOKIE)
        if not token:
            raise AuthError("invalid_refresh_token", "Send the refresh token or its cookie.", status=401)
        return signed_in(ctx, await sessions.refresh(ctx, refresh_token=token), response)

    @router.post("/logout", status_code=204, summary="End this session", responses=problems(401))
    async def logout(principal: CurrentUser, response: Response) -> Response:
        await sessions.logout(ctx, principal)
        response = Response(status_code=204)
        response.delete_cookie(REFRESH_COOKIE, path=ctx.settings.cookie_path)
        return response

    @router.post("/logout-all", status_code=204, summary="End every session of this account", responses=problems(401))
    async def logout_all(principal: CurrentUser) -> Response:
        await sessions.logout_all(ctx, principal)
        response = Response(status_code=204)
        response.delete_cookie(REFRESH_COOKIE, path=ctx.settings.cookie_path)
        return response

    @router.get("/sessions", response_model=list[SessionView], summary="My active sessions", responses=problems(401))
    async def list_sessions(principal: CurrentUser) -> list[SessionView]:
        return [
            SessionView(
                id=s.id,
                created_at=s.created_at,
                last_used_at=s.last_used_at,
                expires_at=s.expires_at,
                user_agent=s.user_agent,
                ip=s.ip,
                auth_method=s.auth_method,
                current=s.id == principal.session.id,
            )
            for s in await sessions.list_sessions(ctx, principal)
        ]

    @router.delete(
        "/sessions/{session_id}",
        status_code=204,
        summary="End one of my sessions",
        responses=problems(401, 404),
    )
    async def end_session(session_id: uuid.UUID, principal: CurrentUser) -> Response:
        await sessions.end_session(ctx, principal, session_id)
        return Response(status_code=204)

    @router.post(
        "/sessions/end-others",
        response_model=SessionsEnded,
        summary="End every session but this one",
        responses=problems(401),
    )
    async def end_others(principal: CurrentUser) -> SessionsEnded:
        return SessionsEnded(sessions_ended=await sessions.end_other_sessions(ctx, principal))

    @router.get("/me", response_model=Profile, summary="My account", responses=problems(401))
    async def me(principal: CurrentUser) -> Profile:
        return _profile(principal.user)

    @router.patch(
        "/me",
        response_model=Profile,
        summary="Change my display name or username",
        responses=problems(401, 409, 422),
    )
    async def update_me(body: ProfileUpdate, principal: CurrentUser) -> Profile:
        return _profile(
            await accounts.update_profile(ctx, principal, display_name=body.display_name, username=body.username)
        )

    @router.post("/me/delete", status_code=204, summary="Delete my account", responses=problems(401, 422))
    async def delete_me(body: DeleteAccount, principal: CurrentUser) -> Response:
        await accounts.delete_account(ctx, principal, password=body.password)
        response = Response(status_code=204)
        response.delete_cookie(REFRESH_COOKIE, path=ctx.settings.cookie_path)
        return response

    @router.put(
        "/me/avatar",
        response_model=Profile,
        summary="Upload my avatar (the raw image as the body: PNG, JPEG, GIF or WebP)",
        responses=problems(401, 413, 415, 422),
    )
    async def put_avatar(request: Request, principal: CurrentUser) -> Profile:
        data = await request.body()
        content_type = sniff_image(data, max_bytes=ctx.settings.avatar_max_bytes)
        return _profile(await accounts.set_avatar(ctx, principal, content_type=content_type, data=data))

    @router.delete("/me/avatar", response_model=Profile, summary="Remove my avatar", responses=problems(401))
    async def delete_avatar(principal: CurrentUser) -> Profile:
        return _profile(await accounts.remove_avatar(ctx, principal))

    @router.get("/users/{user_id}/avatar", summary="A user's avatar image", responses=problems(404))
    async def get_avatar(user_id: uuid.UUID) -> Response:
        async with ctx.store.transaction() as tx:
            found = await tx.avatar(user_id)
        if found is None:
            raise AuthError("not_found", "No avatar.", status=404)
        content_type, data = found
        return Response(
            data,
            media_type=content_type,
            headers={
                "X-Content-Type-Options": "nosniff",
                "Content-Security-Policy": "default-src 'none'; sandbox",
                "Content-Disposition": "inline",
                "Cache-Control": "public, max-age=86400",
            },
        )

    @router.post(
        "/password/change",
        response_model=SessionsEnded,
        summary="Change my password (needs the current one); ends my other sessions",
        responses=problems(401, 422, 429),
    )
    async def change_password(body: PasswordChange, principal: CurrentUser, client: ClientDep) -> SessionsEnded:
        ended = await accounts.change_password(
            ctx, principal, current=body.current_password, new=body.new_password, client=client
        )
        return SessionsEnded(sessions_ended=ended)

    @router.post(
        "/password/forgot",
        status_code=202,
        response_model=Accepted,
        summary="Email a password reset code",
        responses=problems(422, 429),
    )
    async def forgot(body: EmailOnly, client: ClientDep) -> Accepted:
        await accounts.forgot_password(ctx, email=body.email, client=client)
        return Accepted(message="If this address has an account, a reset code is on its way.")

    @router.post(
        "/password/reset/verify",
        response_model=ResetTokenResponse,
        summary="Trade the emailed reset code for a one-time reset token",
        responses=problems(400, 422, 429),
    )
    async def verify_reset(body: EmailCodeRequest, client: ClientDep) -> ResetTokenResponse:
        token, expires = await accounts.verify_reset_code(ctx, email=body.email, code=body.code, client=client)
        return ResetTokenResponse(reset_token=token, expires_at=expires)

    @router.post(
        "/password/reset",
        status_code=204,
        summary="Set a new password with the reset token; signs out everywhere, does not sign in",
        responses=problems(401, 422),
    )
    async def reset(body: PasswordReset) -> Response:
        await accounts.reset_password(ctx, reset_token=body.reset_token, new_password=body.new_password)
        return Response(status_code=204)

    router.include_router(build_totp_router(ctx))
    router.include_router(build_oidc_router(ctx, oidc))
    return router


__all__ = ["REFRESH_COOKIE", "ContextDep", "build_router"]
