"""An in-memory ``AttachmentStore`` for unit tests, with the same promises as the GridFS one."""

from __future__ import annotations

import uuid

from chat_messages.domain.model import Attachment


class FakeAttachmentStore:
    def __init__(self) -> None:
        self.files: dict[uuid.UUID, tuple[Attachment, bytes]] = {}

    async def put(self, attachment: Attachment, data: bytes) -> None:
        self.files[attachment.id] = (attachment, bytes(data))

    async def get(self, room_id: uuid.UUID, attachment_id: uuid.UUID) -> Attachment | None:
        found = self.files.get(attachment_id)
        return found[0] if found is not None and found[0].room_id == room_id else None

    async def open(self, room_id: uuid.UUID, attachment_id: uuid.UUID) -> bytes | None:
        found = self.files.get(attachment_id)
        return found[1] if found is not None and found[0].room_id == room_id else None

    async def delete(self, room_id: uuid.UUID, attachment_id: uuid.UUID) -> None:
        found = self.files.get(attachment_id)
        if found is not None and found[0].room_id == room_id:
            del self.files[attachment_id]

    async def drop_room(self, room_id: uuid.UUID) -> None:
        for attachment_id in [key for key, (attachment, _) in self.files.items() if attachment.room_id == room_id]:
            del self.files[attachment_id]
