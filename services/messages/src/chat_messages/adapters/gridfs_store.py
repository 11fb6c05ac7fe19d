"""``AttachmentStore`` on MongoDB GridFS (pymongo's async bucket), bucket "attachments".

Representation:

- ``attachments.files``: one document per file, ``_id`` = the attachment id (UUID, BSON binary subtype 4),
  ``filename`` = the cleaned name, and ``metadata`` = {room_id, uploader_id, filename, content_type, size,
  width, height, created_at}. ``created_at`` is a BSON date (milliseconds; the upload use case rounds to that).
- ``attachments.chunks``: GridFS chunks (``files_id``, ``n``, ``data``).

Every read is scoped by ``metadata.room_id``: a file id of another room finds nothing. Deleting removes the
chunks before the file document, so a deletion cut short leaves a file document that the next ``delete`` or
``drop_room`` still finds, never chunks nobody can reach.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC
from typing import Any, Final

from bson.binary import UuidRepresentation
from bson.codec_options import CodecOptions
from gridfs import AsyncGridFSBucket
from gridfs.errors import CorruptGridFile, NoFile
from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.write_concern import WriteConcern

from chat_messages.domain.model import Attachment

Document = dict[str, Any]

BUCKET: Final = "attachments"
FILES_BY_ROOM: Final = "room"
DELETE_BATCH: Final = 500
"""File ids removed per round trip when a room is dropped."""
INDEXES: Final[dict[str, list[IndexModel]]] = {
    f"{BUCKET}.files": [
        IndexModel([("filename", ASCENDING), ("uploadDate", ASCENDING)]),  # the index GridFS drivers expect
        IndexModel([("metadata.room_id", ASCENDING)], name=FILES_BY_ROOM),
    ],
    f"{BUCKET}.chunks": [IndexModel([("files_id", ASCENDING), ("n", ASCENDING)], unique=True)],
}

_CODEC_OPTIONS: Final[CodecOptions[Document]] = CodecOptions(
    document_class=dict, tz_aware=True, tzinfo=UTC, uuid_representation=UuidRepresentation.STANDARD
)


def metadata_document(attachment: Attachment) -> Document:
    return {
        "room_id": attachment.room_id,
        "uploader_id": attachment.uploader_id,
        "filename": attachment.filename,
        "content_type": attachment.content_type,
        "size": attachment.size,
        "width": attachment.width,
        "height": attachment.height,
        "created_at": attachment.created_at,
    }


def attachment_from(doc: Document) -> Attachment:
    meta = doc["metadata"]
    return Attachment(
        id=doc["_id"],
        room_id=meta["room_id"],
        uploader_id=meta["uploader_id"],
        filename=meta["filename"],
        content_type=meta["content_type"],
        size=meta["size"],
        created_at=meta["created_at"],
        width=meta["width"],
        height=meta["height"],
    )


class GridFsAttachmentStore:
    """Files of messages in one MongoDB database (call ``ensure_indexes`` once first)."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._bind(db.with_options(codec_options=_CODEC_OPTIONS))

    def _bind(self, db: AsyncDatabase[Document]) -> None:
        self._db = db
        self._bucket = AsyncGridFSBucket(db, bucket_name=BUCKET)
        self._files = db[f"{BUCKET}.files"]
        self._chunks = db[f"{BUCKET}.chunks"]

    def use_write_concern(self, concern: WriteConcern) -> None:
        """Write with ``concern`` from now on (the service settles it at start, once the server said what it is)."""
        self._bind(self._db.with_options(write_concern=concern))

    async def ensure_indexes(self) -> None:
        """The GridFS indexes and the room index; harmless when they exist."""
        for collection, models in INDEXES.items():
            await self._db[collection].create_indexes(models)

    async def put(self, attachment: Attachment, data: bytes) -> None:
        """Write the file under ``attachment.id``, which must be new (the use case draws a random UUID)."""
        await self._bucket.upload_from_stream_with_id(
            attachment.id, attachment.filename, data, metadata=metadata_document(attachment)
        )

    async def get(self, room_id: uuid.UUID, attachment_id: uuid.UUID) -> Attachment | None:
        doc = await self._files.find_one({"_id": attachment_id, "metadata.room_id": room_id})
        return None if doc is None else attachment_from(doc)

    async def open(self, room_id: uuid.UUID, attachment_id: uuid.UUID) -> bytes | None:
        async for grid_out in self._bucket.find({"_id": attachment_id, "metadata.room_id": room_id}, limit=1):
            try:
                data: bytes = await grid_out.read()
                return data
            except (CorruptGridFile, NoFile):  # deleted while it was being read
                return None
        return None

    async def delete(self, room_id: uuid.UUID, attachment_id: uuid.UUID) -> None:
        if await self._files.find_one({"_id": attachment_id, "metadata.room_id": room_id}, {"_id": 1}) is None:
            return
        await self._remove([attachment_id])

    async def drop_room(self, room_id: uuid.UUID) -> None:
        while batch := [
            doc["_id"] async for doc in self._files.find({"metadata.room_id": room_id}, {"_id": 1}).limit(DELETE_BATCH)
        ]:
            await self._remove(batch)

    async def _remove(self, file_ids: Sequence[uuid.UUID]) -> None:
        await self._chunks.delete_many({"files_id": {"$in": list(file_ids)}})
        await self._files.delete_many({"_id": {"$in": list(file_ids)}})
