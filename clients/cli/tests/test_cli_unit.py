"""chat-cli without a server: parsing, the config file, output, the retry policy, token refresh and room state."""

from __future__ import annotations

import io
import json
import socket
import stat
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from chat_cli.api import Api
from chat_cli.config import DEFAULT_SERVER, Config, default_path, resolve_server
from chat_cli.errors import Refused
from chat_cli.interactive import RECOVERY_PAGE, RoomView
from chat_cli.main import build_parser, run
from chat_cli.output import Known, Output, format_message, format_rooms, table
from chat_cli.realtime import AckTimeout, call_with_retry
from chat_cli.room_state import RoomState
from prompt_toolkit.application import create_app_session
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

ME = "11111111-1111-1111-1111-111111111111"
BOB = "22222222-2222-2222-2222-222222222222"


async def _run(*argv: str, stdin: str = "", env: dict[str, str] | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = await run(list(argv), stdin=io.StringIO(stdin), stdout=out, stderr=err, environ=env or {})
    return code, out.getvalue(), err.getvalue()


# -- arguments --------------------------------------------------------------------------------------------------


def test_global_options_are_accepted_before_and_after_the_command() -> None:
    before = build_parser().parse_args(["--server", "http://a", "--json", "send", "lobby", "hi"])
    after = build_parser().parse_args(["send", "lobby", "hi", "--server", "http://a", "--json"])
    for args in (before, after):
        assert (args.server, args.json, args.room, args.text) == ("http://a", True, "lobby", "hi")


def test_history_and_join_options_parse() -> None:
    args = build_parser().parse_args(["history", "lobby", "--limit", "5", "--before", "40"])
    assert (args.limit, args.before, args.after) == (5, 40, None)
    assert build_parser().parse_args(["join", "r", "--password"]).password == ""  # asks for it
    assert build_parser().parse_args(["join", "r", "--password=s3"]).password == "s3"
    assert build_parser().parse_args(["join", "r"]).password is None


@pytest.mark.parametrize(
    "argv",
    [[], ["frobnicate"], ["send", "lobby"], ["history", "lobby", "--limit", "0"], ["create", "x", "--kind", "dm"]],
)
async def test_usage_errors_exit_2_on_stderr(argv: list[str]) -> None:
    code, out, err = await _run(*argv)
    assert code == 2
    assert out == ""
    assert err.startswith("usage:")


async def test_help_and_version_exit_0() -> None:
    assert (await _run("--help"))[0] == 0
    assert (await _run("--version"))[0] == 0


# -- config -----------------------------------------------------------------------------------------------------


def test_config_file_is_private_even_with_a_permissive_umask(tmp_path: Path) -> None:
    import os

    path = tmp_path / "nested" / "chat-cli" / "config.json"
    old = os.umask(0)
    try:
        Config(path=path, server="http://x", refresh_token="secret").save()
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    loaded = Config.load(path)
    assert (loaded.server, loaded.refresh_token) == ("http://x", "secret")


def test_rewriting_the_config_tightens_a_loose_file_and_keeps_unknown_keys(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"server": "http://x", "theme": "dark"}))
    path.chmod(0o644)
    config = Config.load(path)
    config.refresh_token = "r"
    config.save()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == {"server": "http://x", "theme": "dark", "refresh_token": "r"}


async def test_an_unreadable_config_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text("not json")
    code, _, err = await _run("--config", str(path), "rooms")
    assert code == 2
    assert "cannot read" in err


def test_config_location_and_server_precedence(tmp_path: Path) -> None:
    assert default_path({"XDG_CONFIG_HOME": "/x"}) == Path("/x/chat-cli/config.json")
    config = Config(path=tmp_path / "c.json", server="http://file")
    assert resolve_server("http://flag/", config, {"CHAT_CLI_SERVER": "http://env"}) == "http://flag"
    assert resolve_server(None, config, {"CHAT_CLI_SERVER": "http://env"}) == "http://env"
    assert resolve_server(None, config, {}) == "http://file"
    assert resolve_server(None, Config(path=tmp_path / "c.json"), {}) == DEFAULT_SERVER


# -- output -----------------------------------------------------------------------------------------------------


def test_json_mode_prints_one_document_and_errors_as_json_on_stderr() -> None:
    out, err = io.StringIO(), io.StringIO()
    output = Output(out, err, json_mode=True)
    output.result({"seq": 3}, "3")
    output.note("for people only")
    output.error(Refused("not_member", "no", status=403))
    assert json.loads(out.getvalue()) == {"seq": 3}
    assert json.loads(err.getvalue()) == {"error": {"code": "not_member", "message": "no", "status": 403}}


def test_text_mode_prints_the_code_of_a_refusal() -> None:
    out, err = io.StringIO(), io.StringIO()
    Output(out, err).error(Refused("invalid_credentials", "Wrong identifier or password."))
    assert err.getvalue() == "error: invalid_credentials: Wrong identifier or password.\n"


def test_messages_and_rooms_format_for_people() -> None:
    message = {
        "seq": 7,
        "sender_id": BOB,
        "body": "hi",
        "created_at": "2026-11-21T08:00:00Z",
        "edited_at": "x",
        "reactions": [{"emoji": "👍", "count": 2}],
    }
    assert format_message(message, Known(names={BOB: "bob"})).endswith("bob: hi (edited)  👍2")
    assert format_message({**message, "deleted": True}, Known(me=BOB)).endswith("me: (deleted)")
    rooms = [{"id": "r1", "name": "lobby", "kind": "public", "my_role": "owner", "member_count": 2, "unread": 4}]
    assert format_rooms(rooms).splitlines()[1].split() == ["r1", "lobby", "public", "owner", "2", "4"]
    assert table([["a", "bb"]], ["X", "Y"]) == "X  Y\na  bb"


# -- retry ------------------------------------------------------------------------------------------------------


class FakeGateway:
    """Answers from a script; records every payload it was sent."""

    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.payloads: list[dict[str, Any]] = []
        self.slept: list[float] = []

    async def call(self, payload: dict[str, Any]) -> dict[str, Any]:
        self.payloads.append(dict(payload))
        answer = self.answers.pop(0)
        if answer is AckTimeout:
            raise AckTimeout("message:send")
        return dict(answer)

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)


def _error(code: str, **extra: Any) -> dict[str, Any]:
    return {"ok": False, "error": {"code": code, "message": code, **extra}}


async def test_a_send_is_retried_on_timeout_with_the_same_client_msg_id() -> None:
    gateway = FakeGateway(AckTimeout, _error("timeout"), {"ok": True, "seq": 5, "message_id": "m"})
    payload = {"room_id": "r", "client_msg_id": "c-1", "body": "hi"}
    ack = await call_with_retry(lambda: gateway.call(payload), sleep=gateway.sleep)
    assert ack["seq"] == 5
    assert [p["client_msg_id"] for p in gateway.payloads] == ["c-1", "c-1", "c-1"]
    assert gateway.slept == [0.25, 0.5]


async def test_rate_limits_wait_for_retry_after() -> None:
    gateway = FakeGateway(_error("rate_limited", retry_after=3), {"ok": True, "seq": 1})
    await call_with_retry(lambda: gateway.call({}), sleep=gateway.sleep)
    assert gateway.slept == [3.0]


async def test_a_refusal_is_not_retried() -> None:
    gateway = FakeGateway(_error("too_long"))
    with pytest.raises(Refused) as refused:
        await call_with_retry(lambda: gateway.call({}), sleep=gateway.sleep)
    assert refused.value.code == "too_long"
    assert len(gateway.payloads) == 1


async def test_retries_run_out_with_the_last_code() -> None:
    gateway = FakeGateway(*([AckTimeout] * 3))
    with pytest.raises(Refused) as refused:
        await call_with_retry(lambda: gateway.call({}), attempts=3, sleep=gateway.sleep)
    assert refused.value.code == "timeout"
    assert len(gateway.payloads) == 3


async def test_not_member_is_waited_out_while_memberships_propagate() -> None:
    gateway = FakeGateway(*([_error("not_member")] * 12), {"ok": True, "seq": 1})
    assert (await call_with_retry(lambda: gateway.call({}), attempts=2, sleep=gateway.sleep))["seq"] == 1
    with pytest.raises(Refused, match="not_member"):
        await call_with_retry(
            lambda: FakeGateway(*[_error("not_member")] * 5).call({}), retry_not_member=3, sleep=gateway.sleep
        )


# -- tokens -----------------------------------------------------------------------------------------------------


def _tokens(n: int) -> dict[str, Any]:
    return {"access_token": f"a{n}", "refresh_token": f"r{n}", "expires_in": 900, "user_id": ME}


async def test_an_expired_access_token_is_refreshed_and_the_rotated_refresh_token_stored(tmp_path: Path) -> None:
    seen: list[tuple[str, str]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/auth/token/refresh":
            seen.append(("refresh", json.loads(request.content)["refresh_token"]))
            return httpx.Response(200, json=_tokens(2))
        seen.append(("get", request.headers["Authorization"]))
        return httpx.Response(200, json={"ok": True})

    path = tmp_path / "config.json"
    Config(
        path=path, server="http://s", refresh_token="r1", access_token="a1", access_expires_at=time.time() - 1
    ).save()
    api = Api("http://s", Config.load(path), transport=httpx.MockTransport(answer))
    try:
        assert await api.request("GET", "/api/auth/me") == {"ok": True}
        assert await api.request("GET", "/api/auth/me") == {"ok": True}
    finally:
        await api.aclose()
    assert seen == [("refresh", "r1"), ("get", "Bearer a2"), ("get", "Bearer a2")]
    stored = Config.load(path)
    assert (stored.refresh_token, stored.access_token) == ("r2", "a2")


async def test_a_dead_refresh_token_is_forgotten(tmp_path: Path) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"code": "refresh_token_reused", "title": "Reused", "status": 401})

    path = tmp_path / "config.json"
    Config(path=path, server="http://s", refresh_token="r1").save()
    api = Api("http://s", Config.load(path), transport=httpx.MockTransport(answer))
    try:
        with pytest.raises(Refused, match="Reused") as refused:
            await api.request("GET", "/api/rooms/mine")
    finally:
        await api.aclose()
    assert refused.value.code == "refresh_token_reused"
    assert Config.load(path).refresh_token is None


async def test_a_session_is_not_sent_to_another_server(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    Config(path=path, server="http://mine", refresh_token="r1", access_token="a1", access_expires_at=1e12).save()
    code, _, err = await _run("--config", str(path), "--server", "http://other", "rooms")
    assert code == 1
    assert "not_signed_in" in err


async def test_an_unreachable_server_exits_3() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code, out, err = await _run("--server", f"http://127.0.0.1:{port}", "verify", "a@example.com", "123456")
    assert (code, out) == (3, "")
    assert err.startswith("unreachable:")


async def test_a_problem_document_exits_1_with_its_code(tmp_path: Path) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"code": "invalid_code", "title": "Invalid code", "status": 400})

    api = Api("http://s", Config(path=tmp_path / "c.json"), transport=httpx.MockTransport(answer))
    try:
        with pytest.raises(Refused) as refused:
            await api.request("POST", "/api/auth/email/verify", json={}, authenticated=False)
    finally:
        await api.aclose()
    assert (refused.value.code, refused.value.status) == ("invalid_code", 400)


# -- the interactive room's state -------------------------------------------------------------------------------


def _message(seq: int, sender: str = BOB, **extra: Any) -> dict[str, Any]:
    return {
        "id": f"m{seq}",
        "room_id": "r",
        "seq": seq,
        "sender_id": sender,
        "client_msg_id": f"c{seq}",
        "body": f"body {seq}",
        "created_at": "2026-11-21T08:00:00Z",
        "version": 1,
        **extra,
    }


def test_room_state_orders_by_seq_and_ignores_replayed_duplicates() -> None:
    state = RoomState(room_id="r", me=ME)
    assert state.add(_message(2))
    assert state.add(_message(1))
    assert not state.add(_message(2))
    assert [text.split()[0] for _, text in state.lines()] == ["#1", "#2"]
    assert state.last_seq == 2


def test_my_messages_show_stored_delivered_and_read() -> None:
    state = RoomState(room_id="r", me=ME)
    state.add(_message(1, ME))
    assert state.lines()[-1][1].endswith("·")
    state.delivered[BOB] = 1
    assert state.lines()[-1][1].endswith("✓")
    state.read[BOB] = 1
    assert state.lines()[-1][1].endswith("✓✓")
    state.read[ME] = 5  # my own marker says nothing about others
    state.read.pop(BOB)
    assert state.lines()[-1][1].endswith("✓")


def test_typing_expires_and_presence_shows_in_the_status_line() -> None:
    state = RoomState(room_id="r", me=ME, names={BOB: "bob"})
    state.typing[BOB] = 100.0
    state.presence.update({BOB: "online", ME: "online"})
    assert state.status(now=99.0) == "bob is typing…  |  online: bob, me"
    assert state.status(now=101.0) == "online: bob, me"


def test_edits_deletions_and_reactions_apply_in_version_order() -> None:
    state = RoomState(room_id="r", me=ME)
    state.add(_message(1))
    state.change("message:edited", {"seq": 1, "message_id": "m1", "body": "new", "version": 3, "edited_at": "t"})
    state.change("message:edited", {"seq": 1, "message_id": "m1", "body": "stale", "version": 2})
    assert state.messages[1]["body"] == "new"
    state.change("message:reaction", {"seq": 1, "message_id": "m1", "counts": {"🎉": 1}, "version": 4})
    assert state.messages[1]["reactions"] == [{"emoji": "🎉", "count": 1}]
    state.change("message:deleted", {"seq": 1, "message_id": "m1", "version": 5})
    assert state.lines()[0][1].endswith("(deleted)")


async def test_login_with_a_second_factor_reads_the_code_after_the_password(tmp_path: Path) -> None:
    bodies: list[tuple[str, dict[str, Any]]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.method == "POST":
            bodies.append((path, json.loads(request.content)))
        if path == "/api/auth/login":
            return httpx.Response(200, json={"mfa_required": True, "mfa_token": "m" * 20, "expires_at": "x"})
        if path == "/api/auth/login/totp":
            return httpx.Response(200, json={**_tokens(1), "session_id": "s1"})
        assert request.headers["Authorization"] == "Bearer a1"
        return httpx.Response(200, json={"id": ME, "username": "ada", "email_verified": True})

    path = tmp_path / "chat-cli" / "config.json"
    out, err = io.StringIO(), io.StringIO()
    code = await run(
        ["--server", "http://s", "--config", str(path), "--json", "login", "ada", "--password-stdin"],
        stdin=io.StringIO("pw pw pw pw\n123456\n"),
        stdout=out,
        stderr=err,
        environ={},
        transport=httpx.MockTransport(answer),
    )
    assert code == 0, err.getvalue()
    assert json.loads(out.getvalue()) == {
        "user_id": ME,
        "username": "ada",
        "session_id": "s1",
        "email_verified": True,
        "server": "http://s",
    }
    assert bodies == [
        ("/api/auth/login", {"identifier": "ada", "password": "pw pw pw pw"}),
        ("/api/auth/login/totp", {"mfa_token": "m" * 20, "code": "123456"}),
    ]
    stored = json.loads(path.read_text())
    assert (stored["refresh_token"], stored["server"]) == ("r1", "http://s")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "a1" not in out.getvalue(), "tokens are never printed"


async def test_logout_forgets_the_session_even_when_the_server_already_ended_it(tmp_path: Path) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"code": "session_revoked", "title": "Session ended", "status": 401})

    path = tmp_path / "config.json"
    Config(path=path, server="http://s", refresh_token="r1", access_token="a1", access_expires_at=1e12).save()
    out = io.StringIO()
    code = await run(
        ["--server", "http://s", "--config", str(path), "logout"],
        stdin=io.StringIO(),
        stdout=out,
        stderr=io.StringIO(),
        environ={},
        transport=httpx.MockTransport(answer),
    )
    assert code == 0
    assert Config.load(path).refresh_token is None


# -- browser sign-in --------------------------------------------------------------------------------------------


def test_pkce_challenge_is_the_s256_of_the_verifier() -> None:
    import base64
    import hashlib

    from chat_cli.oidc import pkce_pair

    verifier, challenge = pkce_pair()
    assert 43 <= len(verifier) <= 128
    assert challenge == base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


async def test_the_loopback_listener_answers_the_callback_once_and_nothing_else() -> None:
    from chat_cli.oidc import Loopback

    async with Loopback() as loopback, httpx.AsyncClient(base_url=f"http://127.0.0.1:{loopback.port}") as browser:
        assert (await browser.get("/favicon.ico")).status_code == 404
        landed = await browser.get("/callback", params={"one_time_code": "abc"})
        assert landed.status_code == 200
        assert "close this tab" in landed.text
        assert (await browser.get("/callback", params={"one_time_code": "other"})).status_code == 404
        assert await loopback.result == {"one_time_code": "abc"}


# -- names ------------------------------------------------------------------------------------------------------


async def test_user_names_are_looked_up_100_ids_at_a_time_and_unknown_ids_left_out(tmp_path: Path) -> None:
    from chat_cli.api import user_names

    asked: list[list[str]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/api/rooms/users"
        ids = request.url.params["ids"].split(",")
        asked.append(ids)
        return httpx.Response(200, json=[{"user_id": i, "username": f"u{i[:4]}", "display_name": "U"} for i in ids[:1]])

    config = Config(path=tmp_path / "c.json", server="http://s", access_token="a1", access_expires_at=1e12)
    api = Api("http://s", config, transport=httpx.MockTransport(answer))
    many = [f"{n:08d}-0000-4000-8000-000000000000" for n in range(150)]
    try:
        names = await user_names(api, [*many, many[0], "not-an-id"])
    finally:
        await api.aclose()
    assert [len(batch) for batch in asked] == [100, 50]
    assert names == {many[0]: "u0000", many[100]: "u0000"}


async def test_dm_accepts_a_username_in_any_case(tmp_path: Path) -> None:
    paths: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        paths.append(request.url.path)
        if request.url.path == "/api/rooms/users/by-username/BOB":
            return httpx.Response(200, json={"user_id": BOB, "username": "bob", "display_name": "Bob"})
        if request.url.path == "/api/rooms/users/by-username/nobody":
            return httpx.Response(404, json={"code": "user_not_found", "title": "No such user.", "status": 404})
        assert request.url.path == "/api/rooms/direct"
        assert json.loads(request.content) == {"user_id": BOB}
        return httpx.Response(201, json={"id": "r1", "kind": "direct"})

    path = tmp_path / "config.json"
    Config(path=path, server="http://s", refresh_token="r1", access_token="a1", access_expires_at=1e12).save()

    async def dm(who: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        code = await run(
            ["--server", "http://s", "--config", str(path), "dm", who],
            stdin=io.StringIO(),
            stdout=out,
            stderr=err,
            environ={},
            transport=httpx.MockTransport(answer),
        )
        return code, out.getvalue(), err.getvalue()

    code, out, err = await dm("@BOB")
    assert code == 0, err
    assert "Direct room with bob: r1" in out
    code, out, err = await dm("nobody")
    assert code == 1
    assert "user_not_found" in err
    assert "nobody" in err
    assert paths == ["/api/rooms/users/by-username/BOB", "/api/rooms/direct", "/api/rooms/users/by-username/nobody"]


# -- reloading after a resubscribe ------------------------------------------------------------------------------


class _PagedApi(Api):
    """History pages from a list of seqs; a live message arrives while the first page is on its way."""

    def __init__(self, config: Config, stored: list[int], live: int) -> None:
        super().__init__("http://127.0.0.1:9", config)
        self.stored, self.live = stored, live
        self.view: Any = None
        self.asked: list[int] = []

    async def request(self, method: str, path: str, **kwargs: Any) -> Any:
        after = int(kwargs["params"]["after_seq"])
        self.asked.append(after)
        if len(self.asked) == 1:  # the room's next message comes live meanwhile
            self.view.state.add(_message(self.live))
        seqs = [seq for seq in self.stored if seq > after][: int(kwargs["params"]["limit"])]
        return {"items": [_message(seq) for seq in seqs]}


async def test_a_reload_pages_up_to_the_answer_by_its_own_cursor_while_live_messages_come(tmp_path: Path) -> None:
    """``recovered: false`` with seq 250 after last_seq 3: the view pages 4..250 although a live message (251)
    is shown before the first page is back; going by the newest message shown would stop after one page."""

    config = Config(path=tmp_path / "config.json", access_token="t", access_expires_at=4e9, user_id=ME)
    api = _PagedApi(config, stored=list(range(1, 252)), live=251)
    with create_pipe_input() as keys, create_app_session(input=keys, output=DummyOutput()):
        view = RoomView(api, {"id": "r", "name": "room"}, transcript=io.StringIO())
        api.view = view
        for seq in (1, 2, 3):
            view.state.add(_message(seq))
        await view._catch_up(after=3, until=250)
    assert sorted(view.state.messages) == list(range(1, 252))
    assert api.asked == [3, 3 + RECOVERY_PAGE, 3 + 2 * RECOVERY_PAGE]
