"""User lookups, mounted under /api/rooms/users: ids to profiles and a username to its user."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query

from chat_rooms.domain.model import UserProfile
from chat_rooms.entrypoints.deps import CurrentActor, bind_context
from chat_rooms.entrypoints.schemas import UserOut
from chat_rooms.service import profiles
from chat_rooms.service.context import RoomsContext
from chat_runtime.problems import problem_responses

_IDS_MAX_LENGTH = profiles.MAX_IDS * 37
"""100 uuids in their 36-character form and the commas between them."""


def _problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    described = {
        401: "Not signed in or the token is not valid",
        404: "No user has this username (user_not_found)",
        422: "Not 1 to 100 user ids (invalid_ids), or a username that cannot be one (validation_failed)",
    }
    return problem_responses({s: described[s] for s in statuses})


def user_out(profile: UserProfile) -> UserOut:
    return UserOut(
        user_id=profile.user_id,
        username=profile.username,
        display_name=profile.display_name,
        avatar_url=profile.avatar_url,
    )


def build_users_router(ctx: RoomsContext) -> APIRouter:
    router = APIRouter(tags=["users"], dependencies=[Depends(bind_context(ctx))])

    @router.get(
        "/users",
        response_model=list[UserOut],
        summary="Profiles of up to 100 users by id (unknown and deleted users are left out)",
        responses=_problems(401, 422),
    )
    async def by_ids(
        actor: CurrentActor,
        ids: Annotated[
            str,
            Query(
                min_length=1,
                max_length=_IDS_MAX_LENGTH,
                description="1 to 100 distinct user ids separated by commas (repeats are ignored)",
                examples=["663f0732-5f1e-4c55-9d1e-0f6e2b8f4a10,0b9a2d8e-3c4f-4e6a-8b1d-2f7c9e5a6d31"],
            ),
        ],
    ) -> list[UserOut]:
        found = await profiles.profiles(ctx, actor, profiles.parse_ids(ids))
        return [user_out(profile) for profile in found]

    @router.get(
        "/users/by-username/{username}",
        response_model=UserOut,
        summary="The user with this username, in any case",
        responses=_problems(401, 404, 422),
    )
    async def by_username(
        actor: CurrentActor,
        username: Annotated[str, Path(min_length=1, max_length=64, description="a username, any case")],
    ) -> UserOut:
        return user_out(await profiles.profile_by_username(ctx, actor, username))

    return router
