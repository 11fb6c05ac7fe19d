"""Contact and block routes, mounted under /api/rooms/contacts and /api/rooms/blocks."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel

from chat_rooms.entrypoints.deps import CurrentActor, bind_context
from chat_rooms.entrypoints.schemas import UserRef
from chat_rooms.service import contacts
from chat_rooms.service.context import RoomsContext
from chat_runtime.problems import problem_responses


class ContactOut(BaseModel):
    user_id: uuid.UUID
    username: str | None
    display_name: str | None
    state: str
    since: datetime


class ContactState(BaseModel):
    state: str


class BlockOut(BaseModel):
    user_id: uuid.UUID
    created_at: datetime


def _problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    described = {
        401: "Not signed in",
        403: "Blocked",
        404: "No such user, request, contact or block",
        422: "Invalid body",
        429: "Too many requests",
    }
    return problem_responses({s: described[s] for s in statuses})


def build_contacts_router(ctx: RoomsContext) -> APIRouter:
    router = APIRouter(tags=["contacts"], dependencies=[Depends(bind_context(ctx))])

    @router.get(
        "/contacts",
        response_model=list[ContactOut],
        summary="My contacts and pending requests",
        responses=_problems(401),
    )
    async def list_contacts(actor: CurrentActor) -> list[ContactOut]:
        return [
            ContactOut(
                user_id=c.other_id,
                username=c.other.username if c.other else None,
                display_name=c.other.display_name if c.other else None,
                state=c.state,
                since=c.since,
            )
            for c in await contacts.contacts(ctx, actor)
        ]

    @router.post(
        "/contacts",
        response_model=ContactState,
        summary="Ask someone to be a contact (a crossing request accepts)",
        responses=_problems(401, 403, 404, 422, 429),
    )
    async def request(body: UserRef, actor: CurrentActor) -> ContactState:
        return ContactState(state=await contacts.request(ctx, actor, other_id=body.user_id))

    @router.post(
        "/contacts/{user_id}/accept", status_code=204, summary="Accept their request", responses=_problems(401, 404)
    )
    async def accept(user_id: uuid.UUID, actor: CurrentActor) -> Response:
        await contacts.accept(ctx, actor, other_id=user_id)
        return Response(status_code=204)

    @router.delete(
        "/contacts/{user_id}",
        response_model=ContactState,
        summary="Decline their request, cancel mine, or remove the contact",
        responses=_problems(401, 404),
    )
    async def end(user_id: uuid.UUID, actor: CurrentActor) -> ContactState:
        return ContactState(state=await contacts.end(ctx, actor, other_id=user_id))

    @router.get("/blocks", response_model=list[BlockOut], summary="Whom I have blocked", responses=_problems(401))
    async def list_blocks(actor: CurrentActor) -> list[BlockOut]:
        return [BlockOut(user_id=b.blocked, created_at=b.created_at) for b in await contacts.blocks(ctx, actor)]

    @router.post("/blocks", status_code=204, summary="Block someone", responses=_problems(401, 404, 422))
    async def block(body: UserRef, actor: CurrentActor) -> Response:
        await contacts.block(ctx, actor, other_id=body.user_id)
        return Response(status_code=204)

    @router.delete("/blocks/{user_id}", status_code=204, summary="Unblock someone", responses=_problems(401, 404))
    async def unblock(user_id: uuid.UUID, actor: CurrentActor) -> Response:
        await contacts.unblock(ctx, actor, other_id=user_id)
        return Response(status_code=204)

    return router
