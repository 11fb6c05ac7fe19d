"""HTTP routes for attachments, mounted under /api/messages with the other routes: upload a file to a room (the
raw body is the file) and download it.

Downloads are served so that a browser never runs them: the sniffed type, ``nosniff``, a sandboxing CSP that
allows nothing, and ``Content-Disposition: attachment`` for everything but images.
"""

from __future__ import annotations

import uuid
from contextlib import aclosing
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote, unquote

from fastapi import APIRouter, Depends, Header, Request, Response
from pydantic import BaseModel, Field

from chat_messages.domain.errors import MessagesError
from chat_messages.domain.files import IMAGE_TYPES
from chat_messages.domain.model import Attachment
from chat_messages.entrypoints.http import CurrentReader, _bind
from chat_messages.service import attachments as use_cases
from chat_messages.service.context import MessagesContext
from chat_messages.service.ports import AttachmentStore
from chat_runtime.problems import problem_responses

MAX_FILENAME_HEADER = 4096
"""Characters of ``X-Filename`` (URL-encoded: 200 characters of 4 UTF-8 bytes take 2,400)."""
DOWNLOAD_ROUTE = "download_attachment"

_DESCRIBED = {
    401: "Not signed in or the token is not valid",
    403: "A direct room closed by a block between its two people (user_blocked)",
    404: "No such room or file, or one you may not see",
    409: "The room is archived",
    413: "The file is larger than the service accepts",
    415: "This kind of file is not accepted (the type is sniffed from the bytes)",
    422: "Empty file, or a filename header that is not URL-encoded UTF-8",
}
_UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "The file's bytes; its type is sniffed from them, the Content-Type header is ignored",
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}

_DOWNLOADED: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The file's bytes, with the sniffed type (image/png, application/pdf, …)",
        "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
    }
}


def _problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return problem_responses({s: _DESCRIBED[s] for s in statuses})


class AttachmentOut(BaseModel):
    id: uuid.UUID
    filename: str
    content_type: str = Field(description="sniffed from the bytes")
    size: int = Field(description="bytes")
    width: int | None = Field(description="pixels, for images whose header tells it")
    height: int | None = Field(description="pixels, for images whose header tells it")
    created_at: datetime


def attachment_out(attachment: Attachment) -> AttachmentOut:
    return AttachmentOut(
        id=attachment.id,
        filename=attachment.filename,
        content_type=attachment.content_type,
        size=attachment.size,
        width=attachment.width,
        height=attachment.height,
        created_at=attachment.created_at,
    )


def decode_filename(header: str | None) -> str | None:
    """The ``X-Filename`` header, percent-decoded as UTF-8 (``+`` stays a plus); 422 unless it is ASCII that
    decodes to valid UTF-8."""
    if header is None:
        return None
    if header.isascii():
        try:
            return unquote(header, encoding="utf-8", errors="strict")
        except UnicodeDecodeError:
            pass
    raise MessagesError("invalid_filename", "X-Filename must be the URL-encoded (UTF-8) file name.", status=422)


def content_disposition(attachment: Attachment) -> str:
    """``inline`` for images, ``attachment`` otherwise; an ASCII ``filename`` for old clients and the exact name
    as RFC 5987 ``filename*``."""
    kind = "inline" if attachment.content_type in IMAGE_TYPES else "attachment"
    fallback = "".join(ch if " " <= ch <= "~" and ch not in '"\\%' else "_" for ch in attachment.filename)
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(attachment.filename, safe='')}"


def _declared_length(request: Request) -> int | None:
    value = request.headers.get("content-length")
    return int(value) if value is not None and value.isdigit() else None


async def _read_at_most(request: Request, limit: int) -> bytes:
    """The body, or its first ``limit + 1`` bytes when it is longer (the rest is never read)."""
    body = bytearray()
    async with aclosing(request.stream()) as chunks:
        async for chunk in chunks:
            body += chunk
            if len(body) > limit:
                break
    return bytes(body[: limit + 1])


def build_attachments_router(ctx: MessagesContext, attachments: AttachmentStore) -> APIRouter:
    """The attachment routes, bound to ``ctx`` and the file store."""
    router = APIRouter(tags=["attachments"], dependencies=[Depends(_bind(ctx))])

    @router.post(
        "/rooms/{room_id}/attachments",
        status_code=201,
        response_model=AttachmentOut,
        summary="Upload a file to a room: the raw body is the file, X-Filename its URL-encoded name",
        responses=_problems(401, 403, 404, 409, 413, 415, 422),
        openapi_extra=_UPLOAD_BODY,
    )
    async def upload(
        room_id: uuid.UUID,
        request: Request,
        response: Response,
        reader: CurrentReader,
        x_filename: Annotated[str | None, Header(max_length=MAX_FILENAME_HEADER)] = None,
    ) -> AttachmentOut:
        filename = decode_filename(x_filename)
        limit = ctx.settings.attachment_max_bytes
        declared = _declared_length(request)
        if declared is not None and declared > limit:
            await use_cases.may_upload(ctx, reader, room_id)  # a non-member learns nothing more than 404
            raise use_cases.too_large(ctx)
        data = await _read_at_most(request, limit)
        stored = await use_cases.upload(ctx, reader, room_id, filename=filename, data=data, attachments=attachments)
        response.headers["Location"] = str(
            request.url_for(DOWNLOAD_ROUTE, room_id=str(room_id), attachment_id=str(stored.id))
        )
        return attachment_out(stored)

    @router.get(
        "/rooms/{room_id}/attachments/{attachment_id}/info",
        summary="A file's name, size and type, without its bytes",
        responses=_problems(401, 404, 422),
    )
    async def describe(room_id: uuid.UUID, attachment_id: uuid.UUID, reader: CurrentReader) -> AttachmentOut:
        return attachment_out(await use_cases.describe(ctx, reader, room_id, attachment_id, attachments=attachments))

    @router.get(
        "/rooms/{room_id}/attachments/{attachment_id}",
        name=DOWNLOAD_ROUTE,
        summary="A file of a room, with its sniffed type",
        response_class=Response,
        responses=_DOWNLOADED | _problems(401, 404, 422),
    )
    async def download(room_id: uuid.UUID, attachment_id: uuid.UUID, reader: CurrentReader) -> Response:
        found, data = await use_cases.download(ctx, reader, room_id, attachment_id, attachments=attachments)
        return Response(
            data,
            media_type=found.content_type,
            headers={
                "X-Content-Type-Options": "nosniff",
                "Content-Security-Policy": "default-src 'none'; sandbox",
                "Content-Disposition": content_disposition(found),
                "Cache-Control": "private, max-age=3600",
            },
        )

    return router
