"""FastAPI dependencies of the rooms routes, as Annotated aliases (the router binds the context per request)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request

from chat_rooms.service.context import Actor, RoomsContext
from chat_runtime.principal import bearer_token, verify_access

_STATE_KEY = "chat_rooms_context"


def bind_context(ctx: RoomsContext) -> Callable[[Request], None]:
    def bind(request: Request) -> None:
        setattr(request.state, _STATE_KEY, ctx)

    return bind


def get_context(request: Request) -> RoomsContext:
    ctx: RoomsContext = getattr(request.state, _STATE_KEY)
    return ctx


async def get_actor(request: Request) -> Actor:
    token = await verify_access(get_context(request).verifier, bearer_token(request))
    return Actor.from_token(token)


CurrentActor = Annotated[Actor, Depends(get_actor)]
