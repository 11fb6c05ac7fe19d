"""HTTP routes of provider sign-in (Google), mounted under /api/auth/oidc. The flow is in docs/auth-oidc.md."""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import Field

from chat_auth.entrypoints.deps import ClientDep, bind_context
from chat_auth.entrypoints.responses import problems, signed_in, signed_in_or_challenge
from chat_auth.entrypoints.schemas import Body, MfaRequired, Password, TokenResponse
from chat_auth.service import oidc
from chat_auth.service.context import AuthContext
from chat_auth.service.sessions import SecondFactorRequired, SignedIn
from chat_contracts.fields import Token

BROWSER_COOKIE = "chat_oidc_browser"
"""Binds a sign-in attempt to the browser that started it. SameSite=Lax: the provider's redirect back to the
callback is a cross-site top-level GET, which Lax cookies accompany and Strict ones would not."""

QueryValue = Annotated[str | None, Query(max_length=2048)]


class OidcExchangeRequest(Body):
    one_time_code: Token
    code_verifier: Annotated[
        str,
        Field(
            min_length=43,
            max_length=128,
            pattern=r"^[A-Za-z0-9._~-]+$",
            description="The PKCE verifier whose S256 challenge the CLI sent to /oidc/start",
        ),
    ]


class OidcLinkRequest(Body):
    link_token: Token
    password: Password


def _wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


def _redirect(url: str) -> RedirectResponse:
    response = RedirectResponse(url, status_code=302)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _to_destination(destination: oidc.Destination, params: dict[str, str]) -> RedirectResponse:
    """Web: our path with the values in the fragment (never sent to a server, kept out of logs). CLI: the
    loopback listener with them in the query."""
    if destination.mode == "cli":
        return _redirect(f"http://127.0.0.1:{destination.cli_port}{oidc.CLI_CALLBACK_PATH}?{urlencode(params)}")
    return _redirect(f"{destination.return_to}#{urlencode(params)}")


def build_oidc_router(ctx: AuthContext, provider: oidc.OidcProvider | None) -> APIRouter:
    """Provider sign-in routes bound to ``ctx``; every route answers 404 ``oidc_disabled`` without a provider."""

    def token_or_mfa(result: SignedIn | SecondFactorRequired, response: Response) -> TokenResponse | MfaRequired:
        return signed_in_or_challenge(ctx, result, response)

    router = APIRouter(prefix="/oidc", tags=["auth"], dependencies=[Depends(bind_context(ctx))])
    browser_cookie_path = ctx.settings.cookie_path.rstrip("/") + "/oidc"

    @router.get(
        "/start",
        status_code=302,
        response_class=RedirectResponse,
        summary="Begin signing in with the provider: redirects the browser there",
        responses=problems(404, 422, 429, 503),
    )
    async def start(
        request: Request,
        client: ClientDep,
        return_to: Annotated[str | None, Query(max_length=oidc.RETURN_TO_MAX, examples=["/rooms"])] = None,
        mode: Annotated[Literal["web", "cli"], Query(description="cli: finish on a loopback listener")] = "web",
        port: Annotated[int | None, Query(ge=1024, le=65535, description="cli: the loopback listener's port")] = None,
        code_challenge: Annotated[
            str | None, Query(max_length=128, description="cli: S256 challenge of the verifier sent to /exchange")
        ] = None,
    ) -> Response:
        started = await oidc.start(
            ctx,
            provider,
            return_to=return_to,
            browser_secret=request.cookies.get(BROWSER_COOKIE),
            client=client,
            mode=mode,
            cli_port=port,
            cli_challenge=code_challenge,
        )
        response = _redirect(started.authorization_url)
        response.set_cookie(
            BROWSER_COOKIE,
            started.browser_secret,
            max_age=int(oidc.STATE_TTL.total_seconds()),
            path=browser_cookie_path,
            secure=ctx.settings.secure_cookies,
            httponly=True,
            samesite="lax",
        )
        return response

    @router.get(
        "/callback",
        status_code=302,
        response_class=RedirectResponse,
        summary="Where the provider sends the browser back; signs in and redirects to return_to",
        description=(
            "Web: sets the refresh cookie and redirects to return_to; the page then calls POST /token/refresh. "
            "Needs a second factor: return_to#mfa_token=…; an existing password account has the email: "
            "return_to#link_required=…; a failure: return_to#oidc_error=<code> for browsers (Accept: text/html), "
            "a problem document otherwise. CLI: the same values in the query of http://127.0.0.1:<port>/callback, "
            "and one_time_code=… on success."
        ),
        responses=problems(400, 403, 404, 409, 422, 429, 503),
    )
    async def callback(
        request: Request, client: ClientDep, state: QueryValue = None, code: QueryValue = None, error: QueryValue = None
    ) -> Response:
        result = await oidc.callback(
            ctx,
            provider,
            state=state,
            code=code,
            error=error,
            browser_secret=request.cookies.get(BROWSER_COOKIE),
            client=client,
        )
        destination, outcome = result.destination, result.outcome
        if isinstance(outcome, oidc.Refused):
            if not _wants_html(request):
                raise outcome.error
            return _to_destination(destination, {"oidc_error": outcome.error.code})
        if isinstance(outcome, oidc.SignedInWeb):
            response = _redirect(destination.return_to)
            signed_in(ctx, outcome.signed, response)  # the refresh cookie; the access token stays out of URLs
            return response
        if isinstance(outcome, oidc.SecondFactorNeeded):
            return _to_destination(destination, {"mfa_token": outcome.challenge.mfa_token})
        if isinstance(outcome, oidc.LinkRequired):
            return _to_destination(destination, {"link_required": outcome.link_token})
        return _to_destination(destination, {"one_time_code": outcome.one_time_code})

    @router.post(
        "/exchange",
        response_model=TokenResponse | MfaRequired,
        summary="CLI: trade the one-time code from the loopback redirect (and the PKCE verifier) for tokens",
        responses=problems(400, 403, 404, 422, 429),
    )
    async def exchange(body: OidcExchangeRequest, client: ClientDep, response: Response) -> TokenResponse | MfaRequired:
        oidc.enabled(ctx, provider)
        result = await oidc.exchange_cli_code(
            ctx, one_time_code=body.one_time_code, code_verifier=body.code_verifier, client=client
        )
        return token_or_mfa(result, response)

    @router.post(
        "/link",
        response_model=TokenResponse | MfaRequired,
        summary="Link the provider identity to the account with its email by proving the password; signs in",
        responses=problems(400, 401, 403, 404, 409, 422, 429),
    )
    async def link(body: OidcLinkRequest, client: ClientDep, response: Response) -> TokenResponse | MfaRequired:
        oidc.enabled(ctx, provider)
        result = await oidc.link(ctx, link_token=body.link_token, password=body.password, client=client)
        return token_or_mfa(result, response)

    return router


__all__ = ["BROWSER_COOKIE", "build_oidc_router"]
