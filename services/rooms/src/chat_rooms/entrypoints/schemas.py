"""Request and response bodies of the rooms API. Unknown fields are rejected; every string is bounded."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from chat_rooms.domain.rules import DESCRIPTION_MAX, GROUP_DM_MAX_MEMBERS, NAME_MAX, TOPIC_MAX

T = TypeVar("T")


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreateRoom(Body):
    kind: Literal["public", "private", "password", "group_dm"]
    name: Annotated[str | None, Field(max_length=NAME_MAX * 2, examples=["general"])] = None
    topic: Annotated[str | None, Field(max_length=TOPIC_MAX * 2)] = None
    description: Annotated[str | None, Field(max_length=DESCRIPTION_MAX * 2)] = None
    avatar_url: Annotated[str | None, Field(max_length=2048, pattern=r"^(https://|/)\S*$")] = None
    history: Literal["shared", "joined"] | None = None
    password: Annotated[str | None, Field(max_length=256)] = None
    members: Annotated[list[uuid.UUID], Field(max_length=GROUP_DM_MAX_MEMBERS)] = []


class UpdateRoom(Body):
    name: Annotated[str | None, Field(max_length=NAME_MAX * 2)] = None
    topic: Annotated[str | None, Field(max_length=TOPIC_MAX * 2)] = None
    description: Annotated[str | None, Field(max_length=DESCRIPTION_MAX * 2)] = None
    avatar_url: Annotated[str | None, Field(max_length=2048, pattern=r"^(https://|/)\S*$")] = None
    history: Literal["shared", "joined"] | None = None
    password: Annotated[str | None, Field(max_length=256)] = None


class OpenDirect(Body):
    user_id: uuid.UUID


class JoinRoom(Body):
    password: Annotated[str | None, Field(max_length=256)] = None


class UserRef(Body):
    user_id: uuid.UUID


class Moderation(Body):
    reason: Annotated[str | None, Field(max_length=500)] = None


class BanRequest(Body):
    user_id: uuid.UUID
    reason: Annotated[str | None, Field(max_length=500)] = None


class RoleChange(Body):
    role: Literal["admin", "member"]


class RoomOut(BaseModel):
    id: uuid.UUID
    kind: str
    name: str | None
    topic: str | None
    description: str | None
    avatar_url: str | None
    history: str
    archived: bool
    blocked: bool = Field(
        description="direct rooms: one of the two blocked the other, so nobody can write in it until it is lifted"
    )
    password_protected: bool
    member_count: int
    created_by: uuid.UUID
    created_at: datetime
    version: int
    my_role: str | None = Field(description="the caller's role, or null when not a member")
    joined_at: datetime | None = None


class MemberOut(BaseModel):
    user_id: uuid.UUID
    role: str
    joined_at: datetime


class InvitationOut(BaseModel):
    room: RoomOut
    invited_by: uuid.UUID
    created_at: datetime


class BanOut(BaseModel):
    user_id: uuid.UUID
    banned_by: uuid.UUID
    reason: str | None
    created_at: datetime


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page; null on the last page")


class ServiceInfo(BaseModel):
    service: str
    version: str
    dm_policy: str


class UserOut(BaseModel):
    """A user's public profile, as the users projection knows it (no email, nothing the users topic lacks)."""

    user_id: uuid.UUID
    username: str
    display_name: str
    avatar_url: str | None = None
