"""How chat-cli names things for people: replies quote their author and words, attachments show their file and
the command that fetches it, and a direct room is called after the other person."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import httpx
from chat_cli.config import Config
from chat_cli.lookups import is_called, title_of
from chat_cli.main import run
from chat_cli.output import Known, excerpt, format_message, human_size
from chat_cli.room_state import RoomState

ME = "11111111-1111-1111-1111-111111111111"
BOB = "22222222-2222-2222-2222-222222222222"
CY = "33333333-3333-3333-3333-333333333333"
FILE = "44444444-4444-4444-4444-444444444444"


def _message(seq: int, sender: str = BOB, **extra: Any) -> dict[str, Any]:
    return {
        "id": f"m{seq}",
        "room_id": "r",
        "seq": seq,
        "sender_id": sender,
        "body": f"body {seq}",
        "created_at": "2026-11-21T08:00:00Z",
        "version": 1,
        **extra,
    }


def test_a_reply_quotes_the_author_and_the_start_of_what_it_answers() -> None:
    quoted = _message(3, ME, body="hello bob, shall we meet on Tuesday at the usual place?")
    reply = _message(5, reply_to="m3", body="yes")
    line = format_message(reply, Known(me=ME, names={BOB: "bob"}, messages={"m3": quoted}))
    assert line.endswith("bob: [↪ #3 me: hello bob, shall we meet on Tuesday at…] yes")
    assert "m3" not in line


def test_a_reply_to_a_message_out_of_sight_or_deleted_says_so() -> None:
    reply = _message(5, reply_to="m1", body="yes")
    assert "[↪ an earlier message] yes" in format_message(reply, Known())
    gone = _message(1, CY, deleted=True, body="")
    assert "[↪ #1 cy: (deleted)] yes" in format_message(reply, Known(names={CY: "cy"}, messages={"m1": gone}))


def test_excerpts_are_one_line_and_cut_with_an_ellipsis() -> None:
    assert excerpt("two\n\nlines  here") == "two lines here"
    assert excerpt("x" * 41) == "x" * 39 + "…"
    assert len(excerpt("y" * 100, 10)) == 10


def test_attachments_show_name_size_and_the_command_that_downloads_them() -> None:
    message = _message(7, attachment_ids=[FILE, "55555555-5555-5555-5555-555555555555"], body="the notes")
    known = Known(names={BOB: "bob"}, files={FILE: {"filename": "notes.txt", "size": 2048}}, room="team room")
    lines = format_message(message, known).splitlines()
    assert lines[0].endswith("bob: the notes")
    assert lines[1] == f"    📎 notes.txt (2.0 KiB)  chat-cli download 'team room' {FILE}"
    assert lines[2] == "    📎 attachment  chat-cli download 'team room' 55555555-5555-5555-5555-555555555555"
    assert len(format_message({**message, "deleted": True}, known).splitlines()) == 1


def test_sizes_read_as_people_write_them() -> None:
    assert [human_size(n) for n in (0, 1023, 1024, 1536, 5 * 1024 * 1024, None)] == [
        "0 B",
        "1023 B",
        "1.0 KiB",
        "1.5 KiB",
        "5.0 MiB",
        "?",
    ]


def test_the_room_view_quotes_the_edited_text_and_puts_files_on_lines_of_their_own() -> None:
    state = RoomState(room_id="r", me=ME, names={BOB: "bob"}, room_ref="lobby")
    state.add(_message(1, body="first draft"))
    state.add(_message(2, ME, reply_to="m1", body="agreed", attachment_ids=[FILE]))
    state.files[FILE] = {"filename": "plan.pdf", "size": 10}
    state.change("message:edited", {"seq": 1, "message_id": "m1", "body": "final text", "version": 2})
    lines = state.lines()
    assert lines[1][1].startswith("#2 ")
    assert "[↪ #1 bob: final text] agreed" in lines[1][1]
    assert lines[2] == ("class:file", f"    📎 plan.pdf (10 B)  chat-cli download lobby {FILE}")


def test_an_older_quoted_message_follows_its_edits_too() -> None:
    state = RoomState(room_id="r", me=ME)
    state.index["m0"] = _message(0, body="old words")  # fetched for a quote, older than the page shown
    state.add(_message(9, reply_to="m0"))
    state.change("message:edited", {"seq": 0, "message_id": "m0", "body": "new words", "version": 2})
    assert "new words" in state.lines()[0][1]
    assert [text.split()[0] for _, text in state.lines()] == ["#9"]


def test_a_direct_room_is_called_after_the_other_person() -> None:
    bob = {"user_id": BOB, "username": "bob", "display_name": "Bob Builder"}
    cy = {"user_id": CY, "username": "cy", "display_name": ""}
    assert title_of([bob]) == "Bob Builder"
    assert title_of([bob, cy]) == "Bob Builder, cy"
    assert title_of([]) is None
    assert all(is_called(bob, ref) for ref in ("bob", "@BOB", "bob builder"))
    assert not is_called(bob, "bo")


async def test_rooms_lists_a_direct_room_under_the_other_persons_display_name(tmp_path: Path) -> None:
    direct = {"id": "d1", "kind": "direct", "name": None, "my_role": "member", "member_count": 2}
    lobby = {"id": "r1", "kind": "public", "name": "lobby", "my_role": "owner", "member_count": 3}

    def answer(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/api/rooms/mine":
            return httpx.Response(200, json={"items": [lobby, direct], "next_cursor": None})
        if path == "/api/rooms/d1/members":
            members = [{"user_id": u, "role": "member", "joined_at": "x"} for u in (ME, BOB)]
            return httpx.Response(200, json={"items": members, "next_cursor": None})
        if path == "/api/rooms/users":
            assert request.url.params["ids"] == BOB, "only the other person is looked up"
            return httpx.Response(200, json=[{"user_id": BOB, "username": "bob", "display_name": "Bob Builder"}])
        assert path == "/api/messages/unread", path
        return httpx.Response(200, json=[])

    path = tmp_path / "config.json"
    Config(path=path, server="http://s", access_token="a", access_expires_at=1e12, user_id=ME).save()
    for mode in ([], ["--json"]):
        out, err = io.StringIO(), io.StringIO()
        argv = ["--server", "http://s", "--config", str(path), "rooms", *mode]
        code = await run(argv, stdout=out, stderr=err, environ={}, transport=httpx.MockTransport(answer))
        assert code == 0, err.getvalue()
        if mode:
            assert [r.get("title") for r in json.loads(out.getvalue())] == [None, "Bob Builder"]
        else:
            assert out.getvalue().splitlines()[2].split()[:3] == ["d1", "Bob", "Builder"]
