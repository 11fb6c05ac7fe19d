"""HTTP routes of the rooms service, mounted under /api/rooms."""

from __future__ import annotations

import uuid
from importlib.metadata import version
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response

from chat_rooms.domain.model import Membership, Room
from chat_rooms.domain.rules import search_key
from chat_rooms.domain.search import MAX_PAGE
from chat_rooms.entrypoints import cursors
from chat_rooms.entrypoints.deps import CurrentActor, bind_context
from chat_rooms.entrypoints.http_contacts import build_contacts_router
from chat_rooms.entrypoints.http_users import build_users_router
from chat_rooms.entrypoints.schemas import (
    BanOut,
    BanRequest,
    CreateRoom,
    InvitationOut,
    JoinRoom,
    MemberOut,
    Moderation,
    OpenDirect,
    Page,
    RoleChange,
    RoomOut,
    ServiceInfo,
    UpdateRoom,
    UserRef,
)
from chat_rooms.service import direct, rooms
from chat_rooms.service.context import RoomsContext
from chat_runtime.problems import problem_responses

_DESCRIBED = {
    401: "Not signed in or the token is not valid",
    403: "Not allowed (not_member, forbidden_role, banned, blocked, wrong_room_password, email_unverified)",
    404: "No such room, or one you may not see",
    409: "Not possible in the room's state (room_archived, already_member, owner_must_transfer, room_full…)",
    422: "The body or query does not match the schema or the rules",
    429: "Rate limited; see retry_after",
}

Limit = Annotated[int, Query(ge=1, le=MAX_PAGE)]
Cursor = Annotated[str | None, Query(max_length=512)]


def _problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return problem_responses({status: _DESCRIBED[status] for status in statuses})


def room_out(room: Room, membership: Membership | None) -> RoomOut:
    return RoomOut(
        id=room.id,
        kind=room.kind,
        name=room.name,
        topic=room.topic,
        description=room.description,
        avatar_url=room.avatar_url,
        history=room.history,
        archived=room.archived,
        blocked=room.blocked,
        password_protected=room.kind == "password",
        member_count=room.member_count,
        created_by=room.created_by,
        created_at=room.created_at,
        version=room.version,
        my_role=membership.role if membership else None,
        joined_at=membership.joined_at if membership else None,
    )


def build_router(ctx: RoomsContext) -> APIRouter:
    """The rooms service's routes, bound to ``ctx``."""
    router = APIRouter(tags=["rooms"], dependencies=[Depends(bind_context(ctx))])
    # Fixed paths first: /contacts, /blocks and /users must not be taken for a /{room_id}.
    router.include_router(build_contacts_router(ctx))
    router.include_router(build_users_router(ctx))

    @router.get("/about", summary="Which service answers here, and its version", response_model=ServiceInfo)
    async def about() -> ServiceInfo:
        return ServiceInfo(service="rooms", version=version("chat-rooms"), dm_policy=ctx.settings.dm_policy)

    @router.post(
        "",
        status_code=201,
        response_model=RoomOut,
        summary="Create a room (public, private, password or group DM)",
        responses=_problems(401, 403, 404, 422, 429),
    )
    async def create(body: CreateRoom, actor: CurrentActor) -> RoomOut:
        view = await rooms.create_room(
            ctx,
            actor,
            kind=body.kind,
            name=body.name,
            topic=body.topic,
            description=body.description,
            avatar_url=body.avatar_url,
            history=body.history,
            password=body.password,
            members=tuple(body.members),
        )
        return room_out(view.room, view.membership)

    @router.get(
        "",
        response_model=Page[RoomOut],
        summary="The public directory: public and password rooms, searchable by name",
        responses=_problems(401, 422),
    )
    async def directory(
        actor: CurrentActor,
        q: Annotated[str | None, Query(max_length=80, description="part of the name, any case")] = None,
        cursor: Cursor = None,
        limit: Limit = 50,
    ) -> Page[RoomOut]:
        found = await rooms.directory(ctx, query=q, after=cursors.name_cursor(cursor), limit=limit + 1)
        page = found[:limit]
        more = len(found) > limit
        next_cursor = cursors.encode(search_key(page[-1].name or ""), str(page[-1].id)) if more and page else None
        return Page[RoomOut](items=[room_out(r, None) for r in page], next_cursor=next_cursor)

    @router.get("/mine", response_model=Page[RoomOut], summary="My rooms with my role", responses=_problems(401, 422))
    async def mine(actor: CurrentActor, cursor: Cursor = None, limit: Limit = 50) -> Page[RoomOut]:
        found = await rooms.my_rooms(ctx, actor, after=cursors.time_cursor(cursor), limit=limit + 1)
        page = found[:limit]
        last = page[-1] if page else None
        next_cursor = (
            cursors.encode(last.joined_at.isoformat(), str(last.room.id))
            if len(found) > limit and last is not None and last.joined_at is not None
            else None
        )
        return Page[RoomOut](
            items=[
                room_out(item.room, Membership(item.room.id, actor.user_id, item.role, item.joined_at))
                if item.role and item.joined_at
                else room_out(item.room, None)
                for item in page
            ],
            next_cursor=next_cursor,
        )

    @router.get(
        "/invitations", response_model=list[InvitationOut], summary="Rooms I am invited to", responses=_problems(401)
    )
    async def my_invitations(actor: CurrentActor) -> list[InvitationOut]:
        return [
            InvitationOut(room=room_out(room, None), invited_by=invitation.invited_by, created_at=invitation.created_at)
            for invitation, room in await rooms.invitations(ctx, actor)
        ]

    @router.post(
        "/direct",
        response_model=RoomOut,
        summary="Open (or get) the direct conversation with someone",
        responses={201: {"description": "Created", "model": RoomOut}, **_problems(401, 403, 404, 422)},
    )
    async def open_direct(body: OpenDirect, actor: CurrentActor, response: Response) -> RoomOut:
        view, created = await direct.open_direct(ctx, actor, other_id=body.user_id)
        response.status_code = 201 if created else 200
        return room_out(view.room, view.membership)

    @router.get("/{room_id}", response_model=RoomOut, summary="A room", responses=_problems(401, 404))
    async def get(room_id: uuid.UUID, actor: CurrentActor) -> RoomOut:
        view = await rooms.get_room(ctx, actor, room_id)
        return room_out(view.room, view.membership)

    @router.patch(
        "/{room_id}",
        response_model=RoomOut,
        summary="Change the room's settings",
        responses=_problems(401, 403, 404, 409, 422),
    )
    async def update(room_id: uuid.UUID, body: UpdateRoom, actor: CurrentActor) -> RoomOut:
        view = await rooms.update_room(ctx, actor, room_id, changes=body.model_dump(exclude_unset=True))
        return room_out(view.room, view.membership)

    @router.post(
        "/{room_id}/archive",
        response_model=RoomOut,
        summary="Make the room read-only",
        responses=_problems(401, 403, 404, 409),
    )
    async def archive(room_id: uuid.UUID, actor: CurrentActor) -> RoomOut:
        view = await rooms.archive(ctx, actor, room_id)
        return room_out(view.room, view.membership)

    @router.post(
        "/{room_id}/unarchive",
        response_model=RoomOut,
        summary="Make the room writable again",
        responses=_problems(401, 403, 404, 409),
    )
    async def unarchive(room_id: uuid.UUID, actor: CurrentActor) -> RoomOut:
        view = await rooms.unarchive(ctx, actor, room_id)
        return room_out(view.room, view.membership)

    @router.delete(
        "/{room_id}", status_code=204, summary="Delete the room (owner)", responses=_problems(401, 403, 404, 409)
    )
    async def delete(room_id: uuid.UUID, actor: CurrentActor) -> Response:
        await rooms.delete(ctx, actor, room_id)
        return Response(status_code=204)

    @router.post(
        "/{room_id}/join",
        response_model=RoomOut,
        summary="Join (password rooms need the password)",
        responses=_problems(401, 403, 404, 409, 429),
    )
    async def join(room_id: uuid.UUID, actor: CurrentActor, body: JoinRoom | None = None) -> RoomOut:
        view = await rooms.join(ctx, actor, room_id, password=body.password if body else None)
        return room_out(view.room, view.membership)

    @router.post("/{room_id}/leave", status_code=204, summary="Leave the room", responses=_problems(401, 403, 404, 409))
    async def leave(room_id: uuid.UUID, actor: CurrentActor) -> Response:
        await rooms.leave(ctx, actor, room_id)
        return Response(status_code=204)

    @router.get(
        "/{room_id}/members",
        response_model=Page[MemberOut],
        summary="Members, oldest first",
        responses=_problems(401, 403, 404, 422),
    )
    async def list_members(
        room_id: uuid.UUID, actor: CurrentActor, cursor: Cursor = None, limit: Limit = 100
    ) -> Page[MemberOut]:
        found = await rooms.members(ctx, actor, room_id, after=cursors.time_cursor(cursor), limit=limit + 1)
        page = found[:limit]
        next_cursor = (
            cursors.encode(page[-1].joined_at.isoformat(), str(page[-1].user_id)) if len(found) > limit else None
        )
        return Page[MemberOut](
            items=[MemberOut(user_id=m.user_id, role=m.role, joined_at=m.joined_at) for m in page],
            next_cursor=next_cursor,
        )

    @router.get(
        "/{room_id}/members/{user_id}",
        response_model=MemberOut,
        summary="Is this user a member, and with which role (for other services)",
        responses=_problems(401, 404),
    )
    async def member(room_id: uuid.UUID, user_id: uuid.UUID, actor: CurrentActor) -> MemberOut:
        found = await rooms.membership_of(ctx, actor, room_id, user_id)
        return MemberOut(user_id=found.user_id, role=found.role, joined_at=found.joined_at)

    @router.post(
        "/{room_id}/invitations",
        status_code=204,
        summary="Invite someone",
        responses=_problems(401, 403, 404, 409, 422),
    )
    async def invite(room_id: uuid.UUID, body: UserRef, actor: CurrentActor) -> Response:
        await rooms.invite(ctx, actor, room_id, user_id=body.user_id)
        return Response(status_code=204)

    @router.post(
        "/{room_id}/invitation/accept",
        response_model=RoomOut,
        summary="Accept my invitation",
        responses=_problems(401, 403, 404, 409),
    )
    async def accept(room_id: uuid.UUID, actor: CurrentActor) -> RoomOut:
        view = await rooms.accept(ctx, actor, room_id)
        return room_out(view.room, view.membership)

    @router.post(
        "/{room_id}/invitation/decline", status_code=204, summary="Decline my invitation", responses=_problems(401, 404)
    )
    async def decline(room_id: uuid.UUID, actor: CurrentActor) -> Response:
        await rooms.decline(ctx, actor, room_id)
        return Response(status_code=204)

    @router.post(
        "/{room_id}/members/{user_id}/kick",
        status_code=204,
        summary="Remove a member",
        responses=_problems(401, 403, 404, 409),
    )
    async def kick(
        room_id: uuid.UUID, user_id: uuid.UUID, actor: CurrentActor, body: Moderation | None = None
    ) -> Response:
        await rooms.kick(ctx, actor, room_id, user_id=user_id, reason=body.reason if body else None)
        return Response(status_code=204)

    @router.put(
        "/{room_id}/members/{user_id}/role",
        response_model=MemberOut,
        summary="Make a member an admin or a member",
        responses=_problems(401, 403, 404, 409, 422),
    )
    async def role(room_id: uuid.UUID, user_id: uuid.UUID, body: RoleChange, actor: CurrentActor) -> MemberOut:
        changed = await rooms.change_role(ctx, actor, room_id, user_id=user_id, role=body.role)
        return MemberOut(user_id=changed.user_id, role=changed.role, joined_at=changed.joined_at)

    @router.post(
        "/{room_id}/transfer",
        status_code=204,
        summary="Give ownership to another member",
        responses=_problems(401, 403, 404, 409, 422),
    )
    async def transfer(room_id: uuid.UUID, body: UserRef, actor: CurrentActor) -> Response:
        await rooms.transfer_ownership(ctx, actor, room_id, user_id=body.user_id)
        return Response(status_code=204)

    @router.get(
        "/{room_id}/bans",
        response_model=list[BanOut],
        summary="Who is banned (admins)",
        responses=_problems(401, 403, 404),
    )
    async def list_bans(room_id: uuid.UUID, actor: CurrentActor) -> list[BanOut]:
        return [
            BanOut(user_id=b.user_id, banned_by=b.banned_by, reason=b.reason, created_at=b.created_at)
            for b in await rooms.bans(ctx, actor, room_id)
        ]

    @router.post(
        "/{room_id}/bans",
        status_code=204,
        summary="Ban someone (they leave and cannot come back)",
        responses=_problems(401, 403, 404, 409, 422),
    )
    async def ban(room_id: uuid.UUID, body: BanRequest, actor: CurrentActor) -> Response:
        await rooms.ban(ctx, actor, room_id, user_id=body.user_id, reason=body.reason)
        return Response(status_code=204)

    @router.delete(
        "/{room_id}/bans/{user_id}", status_code=204, summary="Lift a ban", responses=_problems(401, 403, 404, 409)
    )
    async def unban(room_id: uuid.UUID, user_id: uuid.UUID, actor: CurrentActor) -> Response:
        await rooms.unban(ctx, actor, room_id, user_id=user_id)
        return Response(status_code=204)

    return router
