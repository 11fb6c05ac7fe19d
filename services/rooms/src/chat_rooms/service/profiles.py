"""Who is who: user ids to public profiles and back, from the users projection (chat.users.events).

Only what the users topic carries is ever shown (username, display name, avatar); deleted accounts are dropped
from the projection, so they are simply not found. Usernames are public in this product (the auth service
answers "taken" on sign-up), so a lookup by username reveals nothing new.
"""

from __future__ import annotations

import unicodedata
import uuid
from collections.abc import Sequence
from typing import Final

from chat_rooms.domain.errors import RoomsError
from chat_rooms.domain.model import UserProfile
from chat_rooms.service.context import Actor, RoomsContext

MAX_IDS: Final = 100
"""Ids one lookup may ask for (after removing repeats)."""


async def profiles(ctx: RoomsContext, actor: Actor, user_ids: Sequence[uuid.UUID]) -> list[UserProfile]:
    """The known profiles among ``user_ids``, in the order asked; unknown and deleted users are left out."""
    del actor  # any signed-in user may ask
    wanted = list(dict.fromkeys(user_ids))
    if not 1 <= len(wanted) <= MAX_IDS:
        raise RoomsError("invalid_ids", f"Ask for 1 to {MAX_IDS} distinct user ids.", status=422)
    async with ctx.store.transaction() as tx:
        found = {profile.user_id: profile for profile in await tx.users(wanted)}
    return [found[user_id] for user_id in wanted if user_id in found]


async def profile_by_username(ctx: RoomsContext, actor: Actor, username: str) -> UserProfile:
    """The user holding ``username`` (NFKC, any case: as the auth service compares usernames), or
    ``user_not_found``."""
    del actor
    async with ctx.store.transaction() as tx:
        found = await tx.user_by_username(unicodedata.normalize("NFKC", username.strip()))
    if found is None:
        raise RoomsError("user_not_found", "No such user.", status=404)
    return found


def parse_ids(raw: str) -> list[uuid.UUID]:
    """``ids=<uuid>,<uuid>…`` as uuids; ``invalid_ids`` when any part is not one."""
    parts = [part.strip() for part in raw.split(",")]
    try:
        return [uuid.UUID(part) for part in parts if part]
    except ValueError:
        raise RoomsError("invalid_ids", "ids must be user ids separated by commas.", status=422) from None
