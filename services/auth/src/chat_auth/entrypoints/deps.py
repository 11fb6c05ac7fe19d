"""FastAPI dependencies of the auth routes, as Annotated aliases.

The router binds the service's AuthContext to each request (``bind_context``); everything else reads it from
there, so the same routes serve in the all-in-one app and in the auth service's own process.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request

from chat_auth.domain.errors import AuthError
from chat_auth.service.context import AuthContext, Client
from chat_auth.service.sessions import Principal, authenticate

_STATE_KEY = "chat_auth_context"


def bind_context(ctx: AuthContext) -> Callable[[Request], None]:
    """A router-level dependency that makes ``ctx`` available to the request's other dependencies."""

    def bind(request: Request) -> None:
        setattr(request.state, _STATE_KEY, ctx)

    return bind


def get_context(request: Request) -> AuthContext:
    ctx: AuthContext = getattr(request.state, _STATE_KEY)
    return ctx


def get_client(request: Request) -> Client:
    """The caller's address (X-Forwarded-For's first hop only when configured) and user agent."""
    ctx = get_context(request)
    ip = request.client.host if request.client else "unknown"
    if ctx.settings.trust_forwarded_for:
        first = request.headers.get("x-forwarded-for", "").split(",")[0].strip()
        if first:
            ip = first
    return Client(ip=ip[:64], user_agent=request.headers.get("user-agent", "")[:300])


def bearer_token(request: Request) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError("unauthenticated", "Send an access token: Authorization: Bearer <token>.", status=401)
    return token.strip()


async def get_principal(request: Request) -> Principal:
    return await authenticate(get_context(request), bearer_token(request))


ContextDep = Annotated[AuthContext, Depends(get_context)]
ClientDep = Annotated[Client, Depends(get_client)]
CurrentUser = Annotated[Principal, Depends(get_principal)]
