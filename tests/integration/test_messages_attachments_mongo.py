"""Attachments on GridFS on the Mongo-wire server: the attachment store contract, the documents GridFS holds, and
a ~1 MB file uploaded and downloaded over HTTP with exactly its bytes back."""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from bson.binary import Binary, UuidRepresentation
from pymongo import AsyncMongoClient

from chat_contracts import rooms as rooms_ev
from chat_messages.adapters import mongo
from chat_messages.adapters.gridfs_store import BUCKET, FILES_BY_ROOM, GridFsAttachmentStore
from chat_messages.adapters.mongo_store import MongoMessageStore
from chat_messages.bootstrap import MessagesModule, build_context
from chat_messages.service.ports import AttachmentStore
from chat_messages.settings import MessagesSettings
from chat_messages.testing.attachment_contract import LARGE, AttachmentStoreContract, an_attachment, some_bytes
from chat_messages.testing.fakes import FakeClock, RecordingPublisher
from chat_messages.testing.harness import serve
from chat_runtime.settings import load_settings
from chat_runtime.testing.tokens import TokenMint

Client = AsyncMongoClient[dict[str, Any]]
ONE_MB = 1024 * 1024 + 17


@pytest.fixture
async def client(mongo_url: str) -> AsyncIterator[Client]:
    client = mongo.client(mongo_url)
    yield client
    await client.close()


@pytest.fixture
async def gridfs_store(client: Client, mongo_database_name: str) -> GridFsAttachmentStore:
    store = GridFsAttachmentStore(client[mongo_database_name])
    await store.ensure_indexes()
    return store


class TestGridFsAttachmentStore(AttachmentStoreContract):
    @pytest.fixture
    def attachments(self, gridfs_store: GridFsAttachmentStore) -> AttachmentStore:
        return gridfs_store


async def test_ensure_indexes_creates_the_gridfs_and_room_indexes_and_can_run_again(
    client: Client, mongo_database_name: str
) -> None:
    store = GridFsAttachmentStore(client[mongo_database_name])
    await store.ensure_indexes()
    await store.ensure_indexes()
    db = client[mongo_database_name]
    files = await db[f"{BUCKET}.files"].index_information()
    chunks = await db[f"{BUCKET}.chunks"].index_information()
    assert files[FILES_BY_ROOM]["key"] == [("metadata.room_id", 1)]
    assert files["filename_1_uploadDate_1"]["key"] == [("filename", 1), ("uploadDate", 1)]
    assert chunks["files_id_1_n_1"]["key"] == [("files_id", 1), ("n", 1)]
    assert chunks["files_id_1_n_1"]["unique"] is True


async def test_a_file_is_a_gridfs_file_with_standard_uuids_and_its_description_as_metadata(
    gridfs_store: GridFsAttachmentStore, mongo_url: str, mongo_database_name: str
) -> None:
    data = some_bytes(LARGE)
    attachment = replace(
        an_attachment(filename="a.zip", content_type="application/zip", width=None, height=None), size=len(data)
    )
    await gridfs_store.put(attachment, data)

    raw: Client = AsyncMongoClient(mongo_url)  # no codec options: BSON as stored
    try:
        db = raw[mongo_database_name]
        doc = await db[f"{BUCKET}.files"].find_one({})
        chunks = await db[f"{BUCKET}.chunks"].count_documents({})
    finally:
        await raw.close()
    assert doc is not None

    def standard(value: uuid.UUID) -> Binary:
        return Binary.from_uuid(value, UuidRepresentation.STANDARD)

    assert doc["_id"] == standard(attachment.id)
    assert (doc["filename"], doc["length"]) == ("a.zip", len(data))
    assert doc["metadata"] == {
        "room_id": standard(attachment.room_id),
        "uploader_id": standard(attachment.uploader_id),
        "filename": "a.zip",
        "content_type": "application/zip",
        "size": len(data),
        "width": None,
        "height": None,
        "created_at": attachment.created_at.replace(tzinfo=None),  # a BSON date, read without tz_aware
    }
    assert chunks == -(-len(data) // (255 * 1024))


async def test_dropping_a_room_leaves_no_chunks_behind(
    gridfs_store: GridFsAttachmentStore, client: Client, mongo_database_name: str
) -> None:
    room_id = uuid.uuid4()
    for n in range(3):
        attachment = an_attachment(room_id)
        await gridfs_store.put(attachment, some_bytes(LARGE, seed=n))
    kept = an_attachment()
    await gridfs_store.put(kept, b"kept")
    await gridfs_store.drop_room(room_id)
    db = client[mongo_database_name]
    assert await db[f"{BUCKET}.files"].count_documents({}) == 1
    assert await db[f"{BUCKET}.chunks"].count_documents({}) == 1
    assert await db[f"{BUCKET}.chunks"].count_documents({"files_id": kept.id}) == 1


# HTTP on GridFS


async def test_a_one_megabyte_file_goes_up_and_comes_back_byte_for_byte(
    tmp_path: Path, client: Client, mongo_database_name: str
) -> None:
    settings = load_settings(MessagesSettings, data_dir=tmp_path)
    clock = FakeClock()
    mint = TokenMint(issuer=settings.auth_issuer, audience=settings.auth_audience, clock=clock)
    db = client[mongo_database_name]
    store = MongoMessageStore(db)
    ctx = build_context(
        settings,
        store=store,
        attachments=GridFsAttachmentStore(db),
        publisher=RecordingPublisher(),
        jwks=mint.jwks,
        clock=clock,
    )
    room_id = uuid.uuid4()
    upload_path = f"/api/messages/rooms/{room_id}/attachments"
    module = MessagesModule(settings=settings, context=ctx)
    data = b"%PDF-1.7\n" + random.Random(3).randbytes(ONE_MB)

    async with serve(module, mint) as msgs:
        ada, bob = await msgs.person("ada"), await msgs.person("bob")
        await msgs.room_event(room_id, rooms_ev.RoomCreated, kind="public", name="files", created_by=ada.id)
        await msgs.join(room_id, ada, role="owner")
        await msgs.join(room_id, bob)

        uploaded = await msgs.http.post(
            upload_path, content=data, headers=ada.headers | {"X-Filename": "big%20report.pdf"}
        )
        assert uploaded.status_code == 201, uploaded.text
        body = uploaded.json()
        assert (body["filename"], body["content_type"], body["size"]) == (
            "big report.pdf",
            "application/pdf",
            len(data),
        )

        got = await msgs.http.get(f"{upload_path}/{body['id']}", headers=bob.headers)
        assert got.status_code == 200
        assert got.content == data
        assert got.headers["content-type"] == "application/pdf"
        assert got.headers["content-disposition"].startswith("attachment;")

        chunks = await db[f"{BUCKET}.chunks"].count_documents({"files_id": uuid.UUID(body["id"])})
        assert chunks == -(-len(data) // (255 * 1024))
