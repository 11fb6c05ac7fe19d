"""``chat-cli search`` without a server: what it asks the messages service, and what it prints."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import httpx
from chat_cli.config import Config
from chat_cli.main import run

ME = "11111111-1111-1111-1111-111111111111"
BOB = "22222222-2222-2222-2222-222222222222"
ROOM = "55555555-5555-5555-5555-555555555555"


def _transport(asked: list[dict[str, str]]) -> httpx.MockTransport:
    def answer(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/api/rooms/mine":
            return httpx.Response(200, json={"items": [{"id": ROOM, "kind": "public", "name": "lobby"}]})
        if path == "/api/rooms/users":
            return httpx.Response(200, json=[{"user_id": BOB, "username": "bob", "display_name": "Bob"}])
        assert path == "/api/messages/search", path
        asked.append(dict(request.url.params))
        found: dict[str, Any] = {
            "id": "m2",
            "room_id": ROOM,
            "seq": 2,
            "sender_id": BOB,
            "body": "the release is on Friday",
            "created_at": "2026-11-21T08:00:00Z",
            "reply_to": None,
            "attachment_ids": [],
        }
        return httpx.Response(200, json={"items": [found], "next_cursor": "c2"})

    return httpx.MockTransport(answer)


async def _search(tmp_path: Path, *argv: str) -> tuple[int, str, str, list[dict[str, str]]]:
    path = tmp_path / "config.json"
    Config(path=path, server="http://s", access_token="a", access_expires_at=1e12, user_id=ME).save()
    asked: list[dict[str, str]] = []
    out, err = io.StringIO(), io.StringIO()
    code = await run(
        ["--server", "http://s", "--config", str(path), "search", *argv],
        stdout=out,
        stderr=err,
        environ={},
        transport=_transport(asked),
    )
    return code, out.getvalue(), err.getvalue(), asked


async def test_search_asks_for_the_words_in_that_room_and_prints_matches_as_history_does(tmp_path: Path) -> None:
    code, out, err, asked = await _search(tmp_path, "lobby", "  Release\n friday ")
    assert code == 0, err
    assert asked == [{"q": "Release friday", "room_id": ROOM, "limit": "20"}]
    assert out.endswith("bob: the release is on Friday\n")
    assert err == "older matches: chat-cli search lobby 'Release friday' --cursor c2\n"


async def test_search_json_is_the_servers_page_and_the_cursor_goes_back(tmp_path: Path) -> None:
    code, out, err, asked = await _search(tmp_path, "lobby", "release", "--cursor", "c2", "--limit", "5", "--json")
    assert code == 0, err
    assert json.loads(out)["next_cursor"] == "c2"
    assert err == ""
    assert asked == [{"q": "release", "room_id": ROOM, "limit": "5", "cursor": "c2"}]


async def test_an_empty_or_overlong_search_is_a_usage_error(tmp_path: Path) -> None:
    for query in ("   ", "x" * 201):
        code, out, err, asked = await _search(tmp_path, "lobby", query)
        assert (code, out, asked) == (2, "", [])
        assert err.startswith("usage:")
