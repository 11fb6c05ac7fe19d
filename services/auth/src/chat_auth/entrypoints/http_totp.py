"""HTTP routes of the authenticator-app second factor, mounted under /api/auth with the other auth routes."""

from __future__ import annotations

from typing import Annotated, Self

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, Field, model_validator

from chat_auth.domain.errors import AuthError
from chat_auth.entrypoints.deps import ClientDep, CurrentUser, bind_context
from chat_auth.entrypoints.responses import problems, signed_in
from chat_auth.entrypoints.schemas import Body, Code, Password, TokenResponse
from chat_auth.service import totp
from chat_auth.service.context import AuthContext
from chat_contracts.fields import Token

# The cookie /login sets (entrypoints/http.py). Not imported from there: http.py includes this router, and the
# import would go in a circle.

RecoveryCode = Annotated[str, Field(min_length=10, max_length=32, examples=["k7m2q-x9hfa"])]


class TotpCode(Body):
    code: Code


class TotpDisable(Body):
    code: Code | None = None
    password: Password | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if (self.code is None) == (self.password is None):
            raise ValueError("send either code or password")
        return self


class TotpLogin(Body):
    mfa_token: Token
    code: Code | None = None
    recovery_code: RecoveryCode | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if (self.code is None) == (self.recovery_code is None):
            raise ValueError("send either code or recovery_code")
        return self


class TotpOnlyLogin(Body):
    username: Annotated[str, Field(min_length=1, max_length=254, description="username or email address")]
    code: Code


class TotpSetupResponse(BaseModel):
    secret: str = Field(description="base32, for typing into the app by hand; shown only now")
    otpauth_uri: str
    qr_svg: str = Field(description="the otpauth URI as a QR code, a standalone SVG document")


class RecoveryCodes(BaseModel):
    recovery_codes: list[str] = Field(description="each works once; shown only now")


class TotpStatusResponse(BaseModel):
    enabled: bool
    recovery_codes_left: int


def build_totp_router(ctx: AuthContext) -> APIRouter:
    """The two-factor routes, bound to ``ctx``."""
    router = APIRouter(tags=["auth"], dependencies=[Depends(bind_context(ctx))])

    def passwordless_enabled() -> None:
        # A dependency runs before the body is validated: when off, the route is a 404 whatever is sent.
        if not ctx.settings.passwordless_totp_login:
            raise AuthError("not_found", "Not found.", status=404)

    @router.get("/totp", response_model=TotpStatusResponse, summary="My two-factor state", responses=problems(401))
    async def get_status(principal: CurrentUser) -> TotpStatusResponse:
        found = await totp.status(ctx, principal)
        return TotpStatusResponse(enabled=found.enabled, recovery_codes_left=found.recovery_codes_left)

    @router.post(
        "/totp/setup",
        response_model=TotpSetupResponse,
        summary="Start two-factor setup: a new secret to scan; nothing changes until it is confirmed",
        responses=problems(401, 409),
    )
    async def setup(principal: CurrentUser, response: Response) -> TotpSetupResponse:
        pending = await totp.begin_setup(ctx, principal)
        response.headers["Cache-Control"] = "no-store"
        return TotpSetupResponse(secret=pending.secret, otpauth_uri=pending.otpauth_uri, qr_svg=pending.qr_svg)

    @router.post(
        "/totp/confirm",
        response_model=RecoveryCodes,
        summary="Turn two-factor sign-in on with a code from the app; answers the recovery codes once",
        responses=problems(400, 401, 409, 422, 429),
    )
    async def confirm(body: TotpCode, principal: CurrentUser, response: Response) -> RecoveryCodes:
        codes = await totp.confirm_setup(ctx, principal, code=body.code)
        response.headers["Cache-Control"] = "no-store"
        return RecoveryCodes(recovery_codes=codes)

    @router.post(
        "/totp/disable",
        status_code=204,
        summary="Turn two-factor sign-in off with a current code or the password",
        responses=problems(400, 401, 409, 422, 429),
    )
    async def disable(body: TotpDisable, principal: CurrentUser, client: ClientDep) -> Response:
        await totp.disable(ctx, principal, code=body.code, password=body.password, client=client)
        return Response(status_code=204)

    @router.post(
        "/totp/recovery-codes",
        response_model=RecoveryCodes,
        summary="Replace my recovery codes (needs a current code); answers the new ones once",
        responses=problems(400, 401, 409, 422, 429),
    )
    async def regenerate(body: TotpCode, principal: CurrentUser, response: Response) -> RecoveryCodes:
        codes = await totp.regenerate_recovery_codes(ctx, principal, code=body.code)
        response.headers["Cache-Control"] = "no-store"
        return RecoveryCodes(recovery_codes=codes)

    @router.post(
        "/login/totp",
        response_model=TokenResponse,
        summary="Finish signing in with the mfa token and an app code or a recovery code",
        responses=problems(400, 401, 403, 422, 429),
    )
    async def login_totp(body: TotpLogin, client: ClientDep, response: Response) -> TokenResponse:
        signed = await totp.complete_login(
            ctx, mfa_token=body.mfa_token, code=body.code, recovery_code=body.recovery_code, client=client
        )
        return signed_in(ctx, signed, response)

    @router.post(
        "/login/totp-only",
        response_model=TokenResponse,
        summary="Sign in with username and app code alone (only when the deployment turned it on)",
        responses=problems(401, 403, 404, 422, 429),
        dependencies=[Depends(passwordless_enabled)],
    )
    async def login_totp_only(body: TotpOnlyLogin, client: ClientDep, response: Response) -> TokenResponse:
        signed = await totp.login_with_code_only(ctx, username=body.username, code=body.code, client=client)
        return signed_in(ctx, signed, response)

    return router


__all__ = ["build_totp_router"]
