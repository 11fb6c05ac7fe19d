"""The message as clients see it: one shape for an item of a history page (the messages service's HTTP API) and a
live or replayed ``message:new`` (the gateway), so a client handles both alike."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MentionOut(_Out):
    user_id: uuid.UUID
    username: str


class Reaction(_Out):
    emoji: str
    count: int
    user_ids: list[uuid.UUID]


class MessageOut(_Out):
    """A message as a history page item and ``message:new`` (live or replayed) carry it."""

    id: uuid.UUID
    room_id: uuid.UUID
    seq: int
    sender_id: uuid.UUID
    client_msg_id: str
    body: str = Field(description="plain text: render it as text, never as HTML; empty when deleted")
    created_at: datetime
    edited_at: datetime | None
    deleted: bool
    deleted_by: uuid.UUID | None
    reply_to: uuid.UUID | None
    attachment_ids: list[uuid.UUID]
    mentions: list[MentionOut]
    mentions_room: bool
    reactions: list[Reaction]
    version: int = Field(description="grows with each edit, deletion or reaction change")
