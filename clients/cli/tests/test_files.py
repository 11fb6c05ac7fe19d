"""Attachments on this machine: the file's name comes from the server's headers, and saving never writes outside
the folder asked for, never over an existing file, and never leaves half a file behind."""

from __future__ import annotations

import io
import os
from pathlib import Path

import httpx
import pytest
from chat_cli.api import Api
from chat_cli.config import Config
from chat_cli.errors import Refused
from chat_cli.files import attachment_info, download, filename_from_disposition, free_path, safe_filename
from chat_cli.main import run

FILE = "44444444-4444-4444-4444-444444444444"
ROOM = "55555555-5555-5555-5555-555555555555"


def test_the_exact_file_name_is_read_from_content_disposition() -> None:
    header = "attachment; filename=\"r_sum_.pdf\"; filename*=UTF-8''r%C3%A9sum%C3%A9.pdf"
    assert filename_from_disposition(header) == "résumé.pdf"
    assert filename_from_disposition('inline; filename="plain.png"') == "plain.png"
    assert filename_from_disposition(None) is None


@pytest.mark.parametrize(
    ("sent", "saved"),
    [
        ("../../.bashrc", "bashrc"),
        ("C:\\Windows\\evil.exe", "evil.exe"),
        ("a\x1b[31mb.txt", "a[31mb.txt"),
        ("...", "attachment"),
        ("", "attachment"),
        ("notes.txt", "notes.txt"),
    ],
)
def test_a_saved_name_stays_in_the_folder_and_is_not_hidden(sent: str, saved: str) -> None:
    assert safe_filename(sent) == saved


def test_a_taken_name_gets_a_number(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "notes (1).txt").write_text("mine too")
    assert free_path(tmp_path, "notes.txt") == tmp_path / "notes (2).txt"
    assert free_path(tmp_path, "other") == tmp_path / "other"


def _server(body: bytes, name: str = "notes.txt") -> httpx.MockTransport:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == f"/api/rooms/{ROOM}":
            return httpx.Response(200, json={"id": ROOM, "kind": "public", "name": "lobby"})
        if request.url.path == f"/api/messages/rooms/{ROOM}/attachments/{FILE}/info":
            told = {"id": FILE, "filename": name, "size": len(body), "content_type": "text/plain", "width": None}
            return httpx.Response(200, json=told)
        if request.url.path != f"/api/messages/rooms/{ROOM}/attachments/{FILE}":
            return httpx.Response(404, json={"code": "attachment_not_found", "title": "No such file", "status": 404})
        disposition = f"attachment; filename=\"{name}\"; filename*=UTF-8''{name}"
        return httpx.Response(200, content=body, headers={"Content-Disposition": disposition})

    return httpx.MockTransport(answer)


def _api(tmp_path: Path, transport: httpx.MockTransport) -> Api:
    config = Config(path=tmp_path / "c.json", server="http://s", access_token="a", access_expires_at=1e12)
    return Api("http://s", config, transport=transport)


async def test_downloading_into_a_folder_keeps_what_is_there(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("already here")
    api = _api(tmp_path, _server(b"from the room"))
    try:
        saved = await download(api, ROOM, FILE, str(tmp_path), None)
        info = await attachment_info(api, ROOM, FILE)
        assert await attachment_info(api, ROOM, ROOM) is None
    finally:
        await api.aclose()
    assert saved["path"] == str(tmp_path / "notes (1).txt")
    assert (tmp_path / "notes (1).txt").read_bytes() == b"from the room"
    assert (tmp_path / "notes.txt").read_text() == "already here"
    assert info == {"id": FILE, "filename": "notes.txt", "size": 13, "content_type": "text/plain"}
    assert sorted(os.listdir(tmp_path)) == ["notes (1).txt", "notes.txt"], "no temporary file left"


async def test_a_refused_download_writes_nothing(tmp_path: Path) -> None:
    api = _api(tmp_path, _server(b"x"))
    try:
        with pytest.raises(Refused) as refused:
            await download(api, ROOM, ROOM, str(tmp_path / "out.bin"), None)
    finally:
        await api.aclose()
    assert refused.value.code == "attachment_not_found"
    assert not (tmp_path / "out.bin").exists()


async def test_download_prints_where_it_saved_and_refuses_a_bad_id(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    Config(path=path, server="http://s", access_token="a", access_expires_at=1e12).save()
    base = ["--server", "http://s", "--config", str(path), "download", ROOM]

    async def cli(*argv: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        code = await run([*base, *argv], stdout=out, stderr=err, environ={}, transport=_server(b"12345"))
        return code, out.getvalue(), err.getvalue()

    code, out, err = await cli(FILE, "-o", str(tmp_path / "kept.txt"))
    assert code == 0, err
    assert out == f"Saved notes.txt (5 B) to {tmp_path / 'kept.txt'}\n"
    assert (tmp_path / "kept.txt").read_bytes() == b"12345"
    code, out, err = await cli("not-an-id")
    assert (code, out) == (2, "")
    assert "not an attachment id" in err
    code, _, err = await cli(FILE, "-o", str(tmp_path / "no" / "such" / "folder" / "f"))
    assert code == 2
    assert "no folder" in err
