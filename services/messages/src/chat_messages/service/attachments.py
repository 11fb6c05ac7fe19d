"""Attachments: uploading a file to a room, downloading it, and checking the files a message may carry.

Members only, like reading: a room the caller is not in answers 404 (``room_not_found``), and a file of another
room answers 404 (``attachment_not_found``) as if it did not exist. The content type is sniffed from the bytes.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from chat_messages.domain import blocks, files
from chat_messages.domain.errors import AttachmentNotFound, MessagesError, Rejection, RoomNotFound
from chat_messages.domain.model import Attachment, RoomState
from chat_messages.service.context import MessagesContext, Reader
from chat_messages.service.ports import AttachmentStore

_MILLISECOND_US = 1000


async def _room_of_member(ctx: MessagesContext, reader: Reader, room_id: uuid.UUID) -> RoomState:
    room = await ctx.store.room(room_id)
    member = await ctx.store.member(room_id, reader.user_id) if room is not None and not room.deleted else None
    if room is None or member is None:
        raise RoomNotFound()
    return room


async def may_upload(ctx: MessagesContext, reader: Reader, room_id: uuid.UUID) -> None:
    """Raise unless the reader may upload to the room: a member (404 otherwise) of a room not archived (409) and
    not closed by a block (403: nothing uploaded could be sent there)."""
    room = await _room_of_member(ctx, reader, room_id)
    if room.archived:
        raise MessagesError("room_archived", "The room is archived (read-only).", status=409)
    if (refusal := blocks.write_refusal(room)) is not None:
        raise MessagesError(refusal.code, refusal.message, status=403)


def too_large(ctx: MessagesContext) -> MessagesError:
    limit = ctx.settings.attachment_max_bytes
    return MessagesError("payload_too_large", f"Files are limited to {limit} bytes.", status=413, limit=limit)


async def upload(
    ctx: MessagesContext,
    reader: Reader,
    room_id: uuid.UUID,
    *,
    filename: str | None,
    data: bytes,
    attachments: AttachmentStore,
) -> Attachment:
    """Store ``data`` as a file of the room. Checked in this order: membership (404), archived room (409), a direct
    room closed by a block (403), size (413), empty (422), sniffed type among ``settings.attachment_types`` (415).
    The name is cleaned; the instant is kept to the millisecond (what MongoDB stores), so the result equals what
    later reads return."""
    await may_upload(ctx, reader, room_id)
    if len(data) > ctx.settings.attachment_max_bytes:
        raise too_large(ctx)
    if not data:
        raise MessagesError("attachment_empty", "The file is empty.", status=422)
    sniffed = files.sniff(data)
    if sniffed is None or sniffed.content_type not in ctx.settings.attachment_types:
        allowed = ", ".join(ctx.settings.attachment_types)
        raise MessagesError(
            "unsupported_media_type", f"This kind of file cannot be uploaded (accepted: {allowed}).", status=415
        )
    now = ctx.clock()
    attachment = Attachment(
        id=uuid.uuid4(),
        room_id=room_id,
        uploader_id=reader.user_id,
        filename=files.clean_filename(filename),
        content_type=sniffed.content_type,
        size=len(data),
        created_at=now.replace(microsecond=now.microsecond // _MILLISECOND_US * _MILLISECOND_US),
        width=sniffed.width,
        height=sniffed.height,
    )
    await attachments.put(attachment, data)
    return attachment


async def download(
    ctx: MessagesContext, reader: Reader, room_id: uuid.UUID, attachment_id: uuid.UUID, *, attachments: AttachmentStore
) -> tuple[Attachment, bytes]:
    """The file's description and bytes, for members of its room (archived rooms included)."""
    found = await describe(ctx, reader, room_id, attachment_id, attachments=attachments)
    data = await attachments.open(room_id, attachment_id)
    if data is None:
        raise AttachmentNotFound()
    return found, data


async def describe(
    ctx: MessagesContext, reader: Reader, room_id: uuid.UUID, attachment_id: uuid.UUID, *, attachments: AttachmentStore
) -> Attachment:
    """The file's description alone (name, size, type), for the same readers as ``download``."""
    await _room_of_member(ctx, reader, room_id)
    found = await attachments.get(room_id, attachment_id)
    if found is None:
        raise AttachmentNotFound()
    return found


async def validate_for_send(
    store: AttachmentStore, room_id: uuid.UUID, sender_id: uuid.UUID, attachment_ids: Sequence[uuid.UUID]
) -> None:
    """Raise ``Rejection("invalid")`` unless every id names a file of this room uploaded by the sender, each once."""
    if len(set(attachment_ids)) != len(attachment_ids):
        raise Rejection("invalid", "An attachment is listed more than once.")
    for attachment_id in attachment_ids:
        found = await store.get(room_id, attachment_id)
        if found is None or found.uploader_id != sender_id:
            raise Rejection("invalid", "Attach only files you uploaded to this room.")
