"""One suite, every ``AttachmentStore`` (the in-memory fake in unit tests, GridFS in integration tests).

A test module subclasses ``AttachmentStoreContract`` (the subclass's name starts with ``Test``) and provides an
``attachments`` fixture returning a fresh, empty store. Instants are whole milliseconds, as the upload use case
makes them (MongoDB keeps no finer).
"""

from __future__ import annotations

import random
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from chat_messages.domain.model import Attachment
from chat_messages.service.ports import AttachmentStore

T0 = datetime(2030, 1, 1, 12, 30, 15, 123000, tzinfo=UTC)
LARGE = 600 * 1024
"""More than two GridFS chunks (255 KiB each) and not a whole number of them."""


def an_attachment(
    room_id: uuid.UUID | None = None,
    *,
    uploader_id: uuid.UUID | None = None,
    filename: str = "photo.png",
    content_type: str = "image/png",
    size: int = 3,
    width: int | None = 3,
    height: int | None = 2,
    at: datetime = T0,
) -> Attachment:
    return Attachment(
        id=uuid.uuid4(),
        room_id=room_id or uuid.uuid4(),
        uploader_id=uploader_id or uuid.uuid4(),
        filename=filename,
        content_type=content_type,
        size=size,
        created_at=at,
        width=width,
        height=height,
    )


def some_bytes(size: int, *, seed: int = 7) -> bytes:
    return random.Random(seed).randbytes(size)  # noqa: S311 (test data, not secrets)


async def stored(
    attachments: AttachmentStore, attachment: Attachment | None = None, data: bytes = b"abc"
) -> Attachment:
    """Put ``attachment`` (a new one by default) with ``data``, its size set to match."""
    attachment = replace(attachment or an_attachment(), size=len(data))
    await attachments.put(attachment, data)
    return attachment


class AttachmentStoreContract:
    async def test_a_stored_file_reads_back_exactly(self, attachments: AttachmentStore) -> None:
        attachment = await stored(attachments, data=b"\x89PNG\r\n")
        assert await attachments.get(attachment.room_id, attachment.id) == attachment
        assert await attachments.open(attachment.room_id, attachment.id) == b"\x89PNG\r\n"

    async def test_every_byte_value_of_a_file_larger_than_a_chunk_reads_back(
        self, attachments: AttachmentStore
    ) -> None:
        data = bytes(range(256)) * 4 + some_bytes(LARGE)
        attachment = await stored(attachments, an_attachment(content_type="application/zip", width=None), data)
        assert await attachments.open(attachment.room_id, attachment.id) == data
        found = await attachments.get(attachment.room_id, attachment.id)
        assert found is not None
        assert found.size == len(data)

    async def test_descriptions_keep_names_missing_sizes_and_the_instant(self, attachments: AttachmentStore) -> None:
        attachment = await stored(
            attachments,
            an_attachment(
                filename="Zeugnis – März 2030 ✓.pdf",
                content_type="application/pdf",
                width=None,
                height=None,
                at=T0 + timedelta(days=3, milliseconds=7),
            ),
        )
        found = await attachments.get(attachment.room_id, attachment.id)
        assert found == attachment
        assert found is not None
        assert found.created_at.utcoffset() == timedelta(0)

    async def test_unknown_ids_find_nothing(self, attachments: AttachmentStore) -> None:
        attachment = await stored(attachments)
        assert await attachments.get(attachment.room_id, uuid.uuid4()) is None
        assert await attachments.open(attachment.room_id, uuid.uuid4()) is None

    async def test_a_file_is_found_only_in_its_own_room(self, attachments: AttachmentStore) -> None:
        attachment = await stored(attachments)
        other_room = uuid.uuid4()
        assert await attachments.get(other_room, attachment.id) is None
        assert await attachments.open(other_room, attachment.id) is None

    async def test_delete_removes_the_file_and_only_in_its_own_room(self, attachments: AttachmentStore) -> None:
        doomed, kept = await stored(attachments), await stored(attachments)
        await attachments.delete(uuid.uuid4(), doomed.id)  # not its room: nothing happens
        assert await attachments.get(doomed.room_id, doomed.id) == doomed

        await attachments.delete(doomed.room_id, doomed.id)
        assert await attachments.get(doomed.room_id, doomed.id) is None
        assert await attachments.open(doomed.room_id, doomed.id) is None
        assert await attachments.open(kept.room_id, kept.id) == b"abc"
        await attachments.delete(doomed.room_id, doomed.id)  # again: harmless

    async def test_drop_room_removes_every_file_of_the_room_and_nothing_else(
        self, attachments: AttachmentStore
    ) -> None:
        room_id, other_room = uuid.uuid4(), uuid.uuid4()
        dropped = [await stored(attachments, an_attachment(room_id), some_bytes(10, seed=n)) for n in range(12)]
        big = await stored(attachments, an_attachment(room_id), some_bytes(LARGE))
        kept = await stored(attachments, an_attachment(other_room), b"kept")

        await attachments.drop_room(room_id)
        for attachment in [*dropped, big]:
            assert await attachments.get(room_id, attachment.id) is None
            assert await attachments.open(room_id, attachment.id) is None
        assert await attachments.get(other_room, kept.id) == kept
        assert await attachments.open(other_room, kept.id) == b"kept"
        await attachments.drop_room(room_id)  # again: harmless
        await attachments.drop_room(uuid.uuid4())  # a room without files

    async def test_a_room_can_hold_many_files_from_many_uploaders(self, attachments: AttachmentStore) -> None:
        room_id = uuid.uuid4()
        uploaders = [uuid.uuid4(), uuid.uuid4()]
        files = [
            await stored(attachments, an_attachment(room_id, uploader_id=uploaders[n % 2]), f"file {n}".encode())
            for n in range(6)
        ]
        for n, attachment in enumerate(files):
            assert await attachments.get(room_id, attachment.id) == attachment
            assert await attachments.open(room_id, attachment.id) == f"file {n}".encode()
