"""Attachments: uploading a file to a room, learning a file's name and size, and saving it without ever writing
outside the folder asked for or over a file that is already there."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import quote, unquote

import httpx

from chat_cli.api import Api
from chat_cli.errors import Refused, Unreachable, Usage

UNNAMED = "attachment"
INFO_LOOKUPS_AT_ONCE = 4
_STAR = re.compile(r"filename\*\s*=\s*UTF-8''([^;]+)", re.IGNORECASE)
_PLAIN = re.compile(r'filename\s*=\s*"([^"]*)"', re.IGNORECASE)


def attachment_path(room_id: str, attachment_id: str) -> str:
    return f"/api/messages/rooms/{room_id}/attachments/{attachment_id}"


def filename_from_disposition(header: str | None) -> str | None:
    """The file name a ``Content-Disposition`` gives: the exact RFC 5987 ``filename*``, else ``filename``."""
    if not header:
        return None
    star = _STAR.search(header)
    if star:
        with contextlib.suppress(UnicodeDecodeError):
            return unquote(star.group(1).strip(), encoding="utf-8", errors="strict")
    plain = _PLAIN.search(header)
    return plain.group(1) if plain else None


def safe_filename(name: str | None) -> str:
    """A name to save a file under in the folder asked for: the last path component only, no control
    characters, not hidden (no leading dot), never empty. The server keeps whatever the uploader sent."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(ch for ch in base if ch.isprintable()).strip().lstrip(".").strip()
    return cleaned or UNNAMED


def free_path(folder: Path, name: str) -> Path:
    """``folder/name``, or ``name (1)``, ``name (2)``… before the suffix when that is taken."""
    candidate = folder / name
    stem, suffix = Path(name).stem, Path(name).suffix
    number = 1
    while candidate.exists():
        candidate = folder / f"{stem} ({number}){suffix}"
        number += 1
    return candidate


def info_from_headers(attachment_id: str, headers: httpx.Headers) -> dict[str, Any]:
    """``{id, filename, size, content_type}`` of a download's headers (``size`` is None when not told)."""
    length = headers.get("content-length")
    return {
        "id": attachment_id,
        "filename": filename_from_disposition(headers.get("content-disposition")) or UNNAMED,
        "size": int(length) if length and length.isdigit() else None,
        "content_type": headers.get("content-type", "application/octet-stream").split(";")[0],
    }


async def attachment_info(api: Api, room_id: str, attachment_id: str) -> dict[str, Any] | None:
    """A file's name, size and type (the server's description of it; the bytes are not fetched). ``None`` when
    the file cannot be had."""
    try:
        told = await api.request("GET", f"{attachment_path(room_id, attachment_id)}/info")
    except (Refused, Unreachable):
        return None
    return {key: told.get(key) for key in ("id", "filename", "size", "content_type")}


async def attachment_infos(api: Api, room_id: str, attachment_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """``attachment_info`` of each id (a few at a time); the files that cannot be had are left out."""
    gate = asyncio.Semaphore(INFO_LOOKUPS_AT_ONCE)

    async def one(attachment_id: str) -> dict[str, Any] | None:
        async with gate:
            return await attachment_info(api, room_id, attachment_id)

    found = await asyncio.gather(*(one(a) for a in dict.fromkeys(attachment_ids)))
    return {str(info["id"]): info for info in found if info is not None}


async def upload(api: Api, room_id: str, path: Path) -> dict[str, Any]:
    """Upload one file to a room; the server's ``{id, filename, content_type, size, …}``."""
    try:
        data = await asyncio.to_thread(path.read_bytes)
    except OSError as exc:
        raise Usage(f"cannot read {path}: {exc.strerror or exc}") from exc
    headers = {"X-Filename": quote(path.name, safe=""), "Content-Type": "application/octet-stream"}
    async with api.stream(
        "POST", f"/api/messages/rooms/{room_id}/attachments", content=data, headers=headers
    ) as response:
        await response.aread()
        stored: dict[str, Any] = response.json()
    return stored


async def download(
    api: Api, room_id: str, attachment_id: str, target: str | None, stdout: BinaryIO | None
) -> dict[str, Any]:
    """Save a file: to ``stdout`` when given, else to ``target`` (a folder takes the file's own name, never
    overwriting; a file path is replaced), else into the current folder under its own name. Written to a
    temporary file first, so a broken download leaves nothing half-written behind."""
    try:
        async with api.stream("GET", attachment_path(room_id, attachment_id)) as response:
            info = info_from_headers(attachment_id, response.headers)
            if stdout is not None:
                async for chunk in response.aiter_bytes():
                    stdout.write(chunk)
                stdout.flush()
                return {**info, "path": "-"}
            destination = _destination(target, info["filename"])
            temporary = destination.with_name(f".{destination.name}.{os.getpid()}.part")
            try:
                with temporary.open("wb") as handle:
                    async for chunk in response.aiter_bytes():
                        handle.write(chunk)
                os.replace(temporary, destination)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    temporary.unlink()
    except httpx.TransportError as exc:
        raise Unreachable(f"the download from {api.server} broke off: {exc.__class__.__name__}: {exc}") from exc
    return {**info, "path": str(destination)}


def _destination(output: str | None, filename: str) -> Path:
    if output is None:
        return free_path(Path.cwd(), safe_filename(filename))
    target = Path(output).expanduser()
    if target.is_dir():
        return free_path(target, safe_filename(filename))
    if not target.parent.is_dir():
        raise Usage(f"no folder {target.parent} to save into")
    return target
