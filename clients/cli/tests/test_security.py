"""Two-factor set-up and sessions without a server: the QR code drawn in the terminal is the otpauth URI's code,
the secret and QR go where a person sees them while stdout keeps the result, and ending this device's session
forgets its tokens."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import segno
from chat_cli.config import Config
from chat_cli.main import run
from chat_cli.qr import qr_text
from chat_cli.security import device, format_sessions

URI = "otpauth://totp/chat:ada?secret=JBSWY3DPEHPK3PXP&issuer=chat"
ME = "11111111-1111-1111-1111-111111111111"
HERE = "aaaaaaaa-0000-4000-8000-000000000001"
LAPTOP = "bbbbbbbb-0000-4000-8000-000000000002"
_HALVES = {"█": (False, False), "▀": (False, True), "▄": (True, False), " ": (True, True)}
"""A character → (top dark, bottom dark): light modules are drawn, dark ones left blank."""


def test_the_terminal_qr_code_has_every_module_of_the_uris_code_and_its_quiet_zone() -> None:
    lines = qr_text(URI).splitlines()
    dark_rows: list[list[bool]] = []
    for line in lines:
        pairs = [_HALVES[ch] for ch in line]
        dark_rows.append([top for top, _ in pairs])
        dark_rows.append([bottom for _, bottom in pairs])
    expected = [[bool(bit) for bit in row] for row in segno.make(URI, error="m").matrix_iter(border=4)]
    assert dark_rows[: len(expected)] == expected
    assert len(dark_rows) - len(expected) in (0, 1), "at most one padding row"
    assert all(not any(row) for row in expected[:4]), "a light quiet zone, drawn"
    assert len(lines) <= 25, "fits a terminal: two modules a line"


def _answer(log: list[tuple[str, str, Any]]) -> httpx.MockTransport:
    def answer(request: httpx.Request) -> httpx.Response:
        body: Any = json.loads(request.content) if request.content else None
        log.append((request.method, request.url.path, body))
        path = request.url.path
        if path == "/api/auth/totp/setup":
            return httpx.Response(200, json={"secret": "JBSWY3DPEHPK3PXP", "otpauth_uri": URI, "qr_svg": "<svg/>"})
        if path == "/api/auth/totp/confirm":
            if body["code"] != "123456":
                return httpx.Response(400, json={"code": "invalid_totp_code", "title": "Wrong code", "status": 400})
            return httpx.Response(200, json={"recovery_codes": ["k7m2q-x9hfa", "p3n8r-t2wqe"]})
        if path == "/api/auth/sessions":
            sessions = [
                {"id": HERE, "user_agent": "chat-cli/0.1 (Linux)", "current": True},
                {"id": LAPTOP, "user_agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0", "current": False},
            ]
            common = {
                "created_at": "2026-11-21T08:00:00Z",
                "last_used_at": "2026-11-21T09:00:00Z",
                "expires_at": "2026-12-21T08:00:00Z",
                "ip": "127.0.0.1",
                "auth_method": "password",
            }
            return httpx.Response(200, json=[{**common, **s} for s in sessions])
        if request.method == "DELETE" or path == "/api/auth/logout-all":
            return httpx.Response(204)
        return httpx.Response(404, json={"code": "not_found", "title": "Not found", "status": 404})

    return httpx.MockTransport(answer)


async def _cli(path: Path, log: list[tuple[str, str, Any]], *argv: str, stdin: str = "") -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = await run(
        ["--server", "http://s", "--config", str(path), *argv],
        stdin=io.StringIO(stdin),
        stdout=out,
        stderr=err,
        environ={},
        transport=_answer(log),
    )
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def signed_in(tmp_path: Path) -> Path:
    path = tmp_path / "config.json"
    Config(path=path, server="http://s", refresh_token="r", access_token="a", access_expires_at=1e12, user_id=ME).save()
    return path


async def test_totp_setup_shows_the_code_on_stderr_and_prints_the_recovery_codes_once(signed_in: Path) -> None:
    log: list[tuple[str, str, Any]] = []
    code, out, err = await _cli(signed_in, log, "totp", "setup", "--json", stdin="123 456\n")
    assert code == 0, err
    assert json.loads(out) == {"enabled": True, "recovery_codes": ["k7m2q-x9hfa", "p3n8r-t2wqe"]}
    assert qr_text(URI) in err
    assert "secret: JBSWY3DPEHPK3PXP" in err
    assert [(m, p, b) for m, p, b in log if m == "POST"] == [
        ("POST", "/api/auth/totp/setup", None),
        ("POST", "/api/auth/totp/confirm", {"code": "123456"}),
    ]


async def test_a_wrong_setup_code_is_refused_with_its_code_and_exit_1(signed_in: Path) -> None:
    code, out, err = await _cli(signed_in, [], "totp", "setup", stdin="654321\n")
    assert (code, out) == (1, "")
    assert "error: invalid_totp_code" in err
    code, _, err = await _cli(signed_in, [], "totp", "setup", stdin="12345\n")
    assert code == 2
    assert "6 digits" in err


async def test_sessions_list_devices_and_ending_this_one_signs_out_here(signed_in: Path) -> None:
    log: list[tuple[str, str, Any]] = []
    code, out, err = await _cli(signed_in, log, "sessions")
    assert code == 0, err
    rows = out.splitlines()
    assert rows[1].split()[:4] == ["*", HERE, "chat-cli", "on"]
    assert "Firefox on Linux" in rows[2]
    assert rows[-1] == "* this device"

    code, out, err = await _cli(signed_in, log, "sessions", "--end", "bbbb")  # the start of the id will do
    assert code == 0, err
    assert ("DELETE", f"/api/auth/sessions/{LAPTOP}", None) in log
    assert Config.load(signed_in).refresh_token == "r", "another device's session: this one goes on"

    code, _, err = await _cli(signed_in, log, "sessions", "--end", "cccc")
    assert code == 1
    assert "session_not_found" in err

    code, out, err = await _cli(signed_in, log, "sessions", "--end", HERE, "--json")
    assert code == 0, err
    assert json.loads(out) == {"ended": HERE, "current": True}
    assert Config.load(signed_in).refresh_token is None, "this device's session ended: no dead tokens kept"


async def test_logging_out_everywhere_forgets_the_session_here(signed_in: Path) -> None:
    log: list[tuple[str, str, Any]] = []
    code, out, err = await _cli(signed_in, log, "sessions", "--all")
    assert code == 0, err
    assert "Signed out everywhere" in out
    assert ("POST", "/api/auth/logout-all", None) in log
    assert Config.load(signed_in).refresh_token is None
    code, _, err = await _cli(signed_in, log, "sessions", "--all", "--others")
    assert code == 2, "one way of ending at a time"


def test_devices_read_as_people_name_them() -> None:
    assert device("chat-cli/0.1 (Darwin)") == "chat-cli on Darwin"
    agent = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36 Edg/131.0"
    assert device(agent) == "Edge on Windows"
    assert device("Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) Safari/604.1") == "Safari on iOS"
    assert device("python-httpx/0.28.1") == "python-httpx/0.28.1"
    assert device("") == "unknown"
    assert format_sessions([]) == "(no sessions)"
