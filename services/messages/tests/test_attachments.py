"""Attachments on the in-memory stores: the upload and download routes (members only, limits, sniffed types,
safe download headers), the use cases behind them, the checks a send will make, and the store contract."""

from __future__ import annotations

import struct
import uuid
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from chat_contracts import rooms as rooms_ev
from chat_messages.bootstrap import MessagesModule, build_context
from chat_messages.domain.errors import MessagesError, Rejection
from chat_messages.domain.model import Attachment
from chat_messages.entrypoints.http_attachments import content_disposition
from chat_messages.service import attachments as use_cases
from chat_messages.service.context import Reader
from chat_messages.service.ports import AttachmentStore
from chat_messages.settings import MessagesSettings
from chat_messages.testing.attachment_contract import AttachmentStoreContract, an_attachment
from chat_messages.testing.fake_attachments import FakeAttachmentStore
from chat_messages.testing.fakes import FakeClock, FakeMessageStore, RecordingPublisher
from chat_messages.testing.harness import MessagesHarness, Person, serve
from chat_runtime.settings import load_settings
from chat_runtime.testing.tokens import TokenMint

MAX_BYTES = 2048


def png(width: int, height: int) -> bytes:
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    rows = b"".join(b"\x00" + b"\x00\x00\x00" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


PNG = png(3, 2)
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n%%EOF\n"


@dataclass
class Files:
    msgs: MessagesHarness
    store: FakeAttachmentStore

    def url(self, room_id: uuid.UUID, attachment_id: uuid.UUID | None = None) -> str:
        base = f"/api/messages/rooms/{room_id}/attachments"
        return base if attachment_id is None else f"{base}/{attachment_id}"

    async def upload(
        self, person: Person, room_id: uuid.UUID, data: Any, *, filename: str | None = "photo.png", **headers: str
    ) -> httpx.Response:
        sent = dict(person.headers) | headers
        if filename is not None:
            sent["X-Filename"] = quote(filename, safe="")
        return await self.msgs.http.post(self.url(room_id), content=data, headers=sent)

    async def download(self, person: Person, room_id: uuid.UUID, attachment_id: uuid.UUID | str) -> httpx.Response:
        return await self.msgs.http.get(self.url(room_id, uuid.UUID(str(attachment_id))), headers=person.headers)

    async def info(self, person: Person, room_id: uuid.UUID, attachment_id: uuid.UUID | str) -> httpx.Response:
        url = f"{self.url(room_id, uuid.UUID(str(attachment_id)))}/info"
        return await self.msgs.http.get(url, headers=person.headers)


@pytest.fixture
async def files(tmp_path: Path) -> AsyncIterator[Files]:
    settings = load_settings(MessagesSettings, data_dir=tmp_path, attachment_max_bytes=MAX_BYTES)
    clock = FakeClock()
    mint = TokenMint(issuer=settings.auth_issuer, audience=settings.auth_audience, clock=clock)
    store = FakeAttachmentStore()
    ctx = build_context(
        settings,
        store=FakeMessageStore(),
        attachments=store,
        publisher=RecordingPublisher(),
        jwks=mint.jwks,
        clock=clock,
    )
    async with serve(MessagesModule(settings=settings, context=ctx), mint) as harness:
        yield Files(msgs=harness, store=store)


def problem_code(response: httpx.Response) -> str:
    assert response.headers["content-type"] == "application/problem+json"
    code = response.json()["code"]
    assert isinstance(code, str)
    return code


class TestFakeAttachmentStore(AttachmentStoreContract):
    @pytest.fixture
    def attachments(self) -> AttachmentStore:
        return FakeAttachmentStore()


# upload and download over HTTP


async def test_a_member_uploads_an_image_and_everyone_in_the_room_downloads_it(files: Files) -> None:
    ada, bob = await files.msgs.person("ada"), await files.msgs.person("bob")
    room = await files.msgs.room(ada, bob)
    files.msgs.clock.now = files.msgs.clock.now.replace(microsecond=123456)

    uploaded = await files.upload(ada, room, PNG, filename="holiday photo.png", **{"Content-Type": "text/html"})
    assert uploaded.status_code == 201, uploaded.text
    body = uploaded.json()
    assert body == {
        "id": body["id"],
        "filename": "holiday photo.png",
        "content_type": "image/png",  # the bytes decide, not the client's Content-Type
        "size": len(PNG),
        "width": 3,
        "height": 2,
        "created_at": "2026-11-21T12:00:00.123000Z",
    }
    assert uploaded.headers["location"] == f"http://messages.test{files.url(room, uuid.UUID(body['id']))}"
    (stored,) = files.store.files.values()
    assert stored[0].uploader_id == ada.id
    assert stored[0].room_id == room

    got = await files.download(bob, room, body["id"])
    assert got.status_code == 200
    assert got.content == PNG
    assert got.headers["content-type"] == "image/png"
    assert got.headers["x-content-type-options"] == "nosniff"
    assert got.headers["content-security-policy"] == "default-src 'none'; sandbox"
    assert got.headers["content-disposition"] == (
        "inline; filename=\"holiday photo.png\"; filename*=UTF-8''holiday%20photo.png"
    )
    assert got.headers["cache-control"] == "private, max-age=3600"
    assert got.headers["content-length"] == str(len(PNG))


async def test_documents_download_as_attachments_with_their_exact_name(files: Files) -> None:
    ada = await files.msgs.person("ada")
    room = await files.msgs.room(ada)
    name = 'Zeugnis "März" 2030.pdf'
    uploaded = await files.upload(ada, room, PDF, filename=name)
    assert uploaded.status_code == 201
    assert (uploaded.json()["content_type"], uploaded.json()["filename"]) == ("application/pdf", name)
    assert (uploaded.json()["width"], uploaded.json()["height"]) == (None, None)

    got = await files.download(ada, room, uploaded.json()["id"])
    assert got.content == PDF
    assert got.headers["content-type"] == "application/pdf"
    assert got.headers["content-disposition"] == (
        "attachment; filename=\"Zeugnis _M_rz_ 2030.pdf\"; filename*=UTF-8''Zeugnis%20%22M%C3%A4rz%22%202030.pdf"
    )


async def test_a_files_description_is_told_without_its_bytes_to_the_same_readers(files: Files) -> None:
    ada, bob, eve = await files.msgs.person("ada"), await files.msgs.person("bob"), await files.msgs.person("eve")
    room, other = await files.msgs.room(ada, bob), await files.msgs.room(ada)
    uploaded = (await files.upload(ada, room, PDF, filename="minutes.pdf")).json()

    told = await files.info(bob, room, uploaded["id"])
    assert told.status_code == 200, told.text
    assert told.headers["content-type"] == "application/json"
    assert told.json() == uploaded
    assert problem_code(await files.info(eve, room, uploaded["id"])) == "room_not_found"
    assert problem_code(await files.info(ada, other, uploaded["id"])) == "attachment_not_found"
    assert problem_code(await files.info(ada, room, uuid.uuid4())) == "attachment_not_found"
    files.store.files.clear()
    assert problem_code(await files.info(ada, room, uploaded["id"])) == "attachment_not_found"


async def test_text_is_served_as_utf8_text_for_download(files: Files) -> None:
    ada = await files.msgs.person("ada")
    room = await files.msgs.room(ada)
    text = "Grüße\n<b>not html</b>\n".encode()
    uploaded = await files.upload(ada, room, text, filename="notes.txt")
    assert uploaded.json()["content_type"] == "text/plain"
    got = await files.download(ada, room, uploaded.json()["id"])
    assert got.content == text
    assert got.headers["content-type"] == "text/plain; charset=utf-8"
    assert got.headers["content-disposition"].startswith("attachment;")


async def test_the_file_name_is_cleaned_and_defaults_to_file(files: Files) -> None:
    ada = await files.msgs.person("ada")
    room = await files.msgs.room(ada)
    traversal = await files.upload(ada, room, PNG, filename="../../etc/pass\x00wd")
    assert traversal.json()["filename"] == "passwd"
    unnamed = await files.upload(ada, room, PNG, filename=None)
    assert unnamed.json()["filename"] == "file"
    plus = await files.upload(ada, room, PNG, filename=None, **{"X-Filename": "a+b%20c.png"})
    assert plus.json()["filename"] == "a+b c.png"


@pytest.mark.parametrize("header", ["%FF%FE.png", "caf\u00e9.png"])
async def test_a_filename_header_that_is_not_url_encoded_utf8_is_refused(files: Files, header: str) -> None:
    ada = await files.msgs.person("ada")
    room = await files.msgs.room(ada)
    response = await files.msgs.http.post(
        files.url(room),
        content=PNG,
        headers=[(k.encode(), v.encode()) for k, v in ada.headers.items()] + [(b"X-Filename", header.encode())],
    )
    assert response.status_code == 422
    assert problem_code(response) == "invalid_filename"


async def test_non_members_get_404_for_upload_and_download_like_a_missing_room(files: Files) -> None:
    ada, eve = await files.msgs.person("ada"), await files.msgs.person("eve")
    room = await files.msgs.room(ada)
    uploaded = await files.upload(ada, room, PNG)

    refused = await files.upload(eve, room, PNG)
    assert refused.status_code == 404
    assert problem_code(refused) == "room_not_found"
    assert problem_code(await files.download(eve, room, uploaded.json()["id"])) == "room_not_found"
    missing_room = await files.upload(ada, uuid.uuid4(), PNG)
    assert problem_code(missing_room) == "room_not_found"
    too_big_elsewhere = await files.upload(eve, room, b"x" * (MAX_BYTES + 1))
    assert problem_code(too_big_elsewhere) == "room_not_found"  # not 413: nothing is learnt about the room
    assert len(files.store.files) == 1


async def test_a_file_of_another_room_is_not_found_through_my_room(files: Files) -> None:
    ada = await files.msgs.person("ada")
    mine, other = await files.msgs.room(ada), await files.msgs.room(ada)
    uploaded = await files.upload(ada, other, PNG)
    response = await files.download(ada, mine, uploaded.json()["id"])
    assert response.status_code == 404
    assert problem_code(response) == "attachment_not_found"
    assert problem_code(await files.download(ada, mine, uuid.uuid4())) == "attachment_not_found"


async def test_a_member_who_left_loses_access(files: Files) -> None:
    ada, bob = await files.msgs.person("ada"), await files.msgs.person("bob")
    room = await files.msgs.room(ada, bob)
    uploaded = await files.upload(bob, room, PNG)
    await files.msgs.room_event(room, rooms_ev.MemberLeft, user_id=bob.id)
    assert (await files.download(bob, room, uploaded.json()["id"])).status_code == 404
    assert (await files.download(ada, room, uploaded.json()["id"])).status_code == 200


async def test_a_file_over_the_limit_is_refused_413(files: Files) -> None:
    ada = await files.msgs.person("ada")
    room = await files.msgs.room(ada)
    at_limit = await files.upload(ada, room, b"x" * MAX_BYTES, filename="a.txt")
    assert at_limit.status_code == 201
    over = await files.upload(ada, room, b"x" * (MAX_BYTES + 1), filename="a.txt")
    assert over.status_code == 413
    assert problem_code(over) == "payload_too_large"
    assert over.json()["limit"] == MAX_BYTES


async def test_a_streamed_body_without_a_length_is_cut_at_the_limit(files: Files) -> None:
    ada = await files.msgs.person("ada")
    room = await files.msgs.room(ada)

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(40):
            yield b"y" * 512

    response = await files.upload(ada, room, chunks(), filename="a.txt")
    assert response.status_code == 413
    assert problem_code(response) == "payload_too_large"

    async def small() -> AsyncIterator[bytes]:
        yield b"hello "
        yield b"world"

    fine = await files.upload(ada, room, small(), filename="a.txt")
    assert fine.status_code == 201
    assert (await files.download(ada, room, fine.json()["id"])).content == b"hello world"


@pytest.mark.parametrize(
    "data",
    [
        b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>',
        b"<!DOCTYPE html><script>alert(1)</script>",
        b"MZ\x90\x00\x03\x00\x00\x00",
    ],
)
async def test_svg_html_and_executables_are_refused_415(files: Files, data: bytes) -> None:
    ada = await files.msgs.person("ada")
    room = await files.msgs.room(ada)
    response = await files.upload(ada, room, data, filename="picture.png")
    assert response.status_code == 415
    assert problem_code(response) == "unsupported_media_type"
    assert files.store.files == {}


async def test_a_type_the_settings_do_not_accept_is_refused_415(files: Files) -> None:
    ada = await files.msgs.person("ada")
    room = await files.msgs.room(ada)
    files.msgs.module.context.settings.attachment_types = ["image/png"]
    assert (await files.upload(ada, room, PDF, filename="a.pdf")).status_code == 415
    assert (await files.upload(ada, room, PNG)).status_code == 201


async def test_an_empty_file_is_refused_422(files: Files) -> None:
    ada = await files.msgs.person("ada")
    room = await files.msgs.room(ada)
    response = await files.upload(ada, room, b"")
    assert response.status_code == 422
    assert problem_code(response) == "attachment_empty"


async def test_an_archived_room_takes_no_uploads_but_its_files_stay_readable(files: Files) -> None:
    ada = await files.msgs.person("ada")
    room = await files.msgs.room(ada)
    uploaded = await files.upload(ada, room, PNG)
    await files.msgs.room_event(room, rooms_ev.RoomArchived)
    refused = await files.upload(ada, room, PNG)
    assert refused.status_code == 409
    assert problem_code(refused) == "room_archived"
    too_big = await files.upload(ada, room, b"x" * (MAX_BYTES + 1))
    assert problem_code(too_big) == "room_archived"
    assert (await files.download(ada, room, uploaded.json()["id"])).content == PNG


async def test_a_direct_room_closed_by_a_block_takes_no_uploads_until_reopened(files: Files) -> None:
    ada, bob = await files.msgs.person("ada"), await files.msgs.person("bob")
    room = await files.msgs.room(ada, bob, kind="direct")
    uploaded = await files.upload(bob, room, PNG)
    await files.msgs.room_event(room, rooms_ev.RoomBlocked)
    refused = await files.upload(bob, room, PNG)
    assert (refused.status_code, problem_code(refused)) == (403, "user_blocked")
    assert (await files.download(ada, room, uploaded.json()["id"])).content == PNG, "earlier files stay readable"
    await files.msgs.room_event(room, rooms_ev.RoomUnblocked)
    assert (await files.upload(bob, room, PNG)).status_code == 201


async def test_a_deleted_room_answers_404(files: Files) -> None:
    ada = await files.msgs.person("ada")
    room = await files.msgs.room(ada)
    uploaded = await files.upload(ada, room, PNG)
    await files.msgs.room_event(room, rooms_ev.RoomDeleted)
    assert problem_code(await files.upload(ada, room, PNG)) == "room_not_found"
    assert problem_code(await files.download(ada, room, uploaded.json()["id"])) == "room_not_found"


async def test_signing_in_is_needed(files: Files) -> None:
    ada = await files.msgs.person("ada")
    room = await files.msgs.room(ada)
    uploaded = await files.upload(ada, room, PNG)
    anonymous = await files.msgs.http.post(files.url(room), content=PNG)
    assert anonymous.status_code == 401
    assert (await files.msgs.http.get(files.url(room, uuid.UUID(uploaded.json()["id"])))).status_code == 401


async def test_the_routes_are_documented(files: Files) -> None:
    schema = (await files.msgs.http.get("/openapi.json")).json()
    upload = schema["paths"]["/api/messages/rooms/{room_id}/attachments"]["post"]
    assert set(upload["responses"]) == {"201", "401", "403", "404", "409", "413", "415", "422"}
    assert "application/octet-stream" in upload["requestBody"]["content"]
    download = schema["paths"]["/api/messages/rooms/{room_id}/attachments/{attachment_id}"]["get"]
    assert {"200", "401", "404"} <= set(download["responses"])


# the use cases directly


async def test_upload_checks_membership_archive_size_and_type_in_that_order(files: Files) -> None:
    ctx = files.msgs.module.context
    ada, eve = await files.msgs.person("ada"), await files.msgs.person("eve")
    room = await files.msgs.room(ada)
    store = FakeAttachmentStore()

    async def code(reader: Reader, data: bytes) -> str:
        with pytest.raises(MessagesError) as refused:
            await use_cases.upload(ctx, reader, room, filename="x", data=data, attachments=store)
        return refused.value.code

    assert await code(Reader(eve.id), b"<svg/>" * 1000) == "room_not_found"
    assert await code(Reader(ada.id), b"<svg/>" * 1000) == "payload_too_large"
    assert await code(Reader(ada.id), b"<svg/>") == "unsupported_media_type"
    await files.msgs.room_event(room, rooms_ev.RoomArchived)
    assert await code(Reader(ada.id), b"<svg/>" * 1000) == "room_archived"
    assert store.files == {}


async def test_upload_keeps_the_instant_to_the_millisecond_and_stores_what_it_returns(files: Files) -> None:
    ctx = files.msgs.module.context
    ada = await files.msgs.person("ada")
    room = await files.msgs.room(ada)
    files.msgs.clock.now = files.msgs.clock.now.replace(microsecond=999_999)
    store = FakeAttachmentStore()
    made = await use_cases.upload(ctx, Reader(ada.id), room, filename=None, data=PNG, attachments=store)
    assert made.created_at.microsecond == 999_000
    assert (made.filename, made.size, made.width, made.height) == ("file", len(PNG), 3, 2)
    assert await use_cases.download(ctx, Reader(ada.id), room, made.id, attachments=store) == (made, PNG)


async def test_download_answers_404_when_the_bytes_vanished_after_the_description(files: Files) -> None:
    ctx = files.msgs.module.context
    ada = await files.msgs.person("ada")
    room = await files.msgs.room(ada)

    class Vanishing(FakeAttachmentStore):
        async def open(self, room_id: uuid.UUID, attachment_id: uuid.UUID) -> bytes | None:
            return None

    store = Vanishing()
    made = await use_cases.upload(ctx, Reader(ada.id), room, filename="a", data=PNG, attachments=store)
    with pytest.raises(MessagesError) as missing:
        await use_cases.download(ctx, Reader(ada.id), room, made.id, attachments=store)
    assert missing.value.code == "attachment_not_found"


def test_content_disposition_escapes_what_a_header_cannot_hold() -> None:
    attachment = an_attachment(filename="a\\b%c;d,e.zip", content_type="application/zip")
    assert content_disposition(attachment) == (
        "attachment; filename=\"a_b_c;d,e.zip\"; filename*=UTF-8''a%5Cb%25c%3Bd%2Ce.zip"
    )
    image = an_attachment(filename="👋.gif", content_type="image/gif")
    assert content_disposition(image) == "inline; filename=\"_.gif\"; filename*=UTF-8''%F0%9F%91%8B.gif"


# what a send will check


@pytest.fixture
async def sent_files() -> tuple[FakeAttachmentStore, Attachment, Attachment]:
    store = FakeAttachmentStore()
    room_id = uuid.uuid4()
    mine, theirs = an_attachment(room_id), an_attachment(room_id)
    await store.put(mine, b"m")
    await store.put(theirs, b"t")
    return store, mine, theirs


async def test_a_send_may_carry_files_its_sender_uploaded_to_the_room(
    sent_files: tuple[FakeAttachmentStore, Attachment, Attachment],
) -> None:
    store, mine, _ = sent_files
    await use_cases.validate_for_send(store, mine.room_id, mine.uploader_id, [mine.id])
    await use_cases.validate_for_send(store, mine.room_id, mine.uploader_id, [])
    second = an_attachment(mine.room_id, uploader_id=mine.uploader_id)
    await store.put(second, b"2")
    await use_cases.validate_for_send(store, mine.room_id, mine.uploader_id, (second.id, mine.id))


@pytest.mark.parametrize("case", ["someone_elses", "other_room", "unknown", "listed_twice", "one_bad_among_good"])
async def test_a_send_with_a_file_it_may_not_carry_is_rejected_invalid(
    sent_files: tuple[FakeAttachmentStore, Attachment, Attachment], case: str
) -> None:
    store, mine, theirs = sent_files
    room_id, sender = mine.room_id, mine.uploader_id
    elsewhere = an_attachment(uploader_id=sender)
    await store.put(elsewhere, b"e")
    listed = {
        "someone_elses": [theirs.id],
        "other_room": [elsewhere.id],
        "unknown": [uuid.uuid4()],
        "listed_twice": [mine.id, mine.id],
        "one_bad_among_good": [mine.id, theirs.id],
    }[case]
    with pytest.raises(Rejection) as rejected:
        await use_cases.validate_for_send(store, room_id, sender, listed)
    assert rejected.value.code == "invalid"
