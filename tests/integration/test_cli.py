"""The terminal client against the real product, all-in-one and split: sign-up by emailed code, rooms, sending,
history, JSON output and exit codes, one run as a separate process, and the interactive room driven through
prompt_toolkit's pipe input."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import io
import json
import os
import pty
import re
import select
import shlex
import stat
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pyotp
import pytest
from chat_cli.api import Api
from chat_cli.config import Config
from chat_cli.interactive import RoomView
from chat_cli.main import run
from prompt_toolkit.application import create_app_session
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

from chat_localinfra.smtp import SmtpInbox

from .product import PASSWORD, Client, Product, connect, product, until
from .split import Split, split

__all__ = ["product", "split"]  # the fixtures, imported for pytest


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


class Typing(io.StringIO):
    """Standard input typed by a person who reads the screen (the CLI's stderr) before each line."""

    def __init__(self, screen: io.StringIO, answer: Callable[[str], str]) -> None:
        super().__init__()
        self.screen = screen
        self.answer = answer

    def readline(self, size: int | None = -1) -> str:  # type: ignore[override]  # typeshed: _IOBase says bytes
        return self.answer(self.screen.getvalue()) + "\n"


def authenticator_code(screen: str) -> str:
    """What an authenticator app that scanned the set-up on ``screen`` shows now."""
    found = re.search(r"secret: ([A-Z2-7]+)", screen)
    assert found, screen
    return str(pyotp.TOTP(found.group(1)).now())


@dataclass
class Cli:
    """One user's chat-cli: a server and a config file of its own."""

    server: str
    config: Path

    async def __call__(self, *argv: str, stdin: str = "", typing: Callable[[str], str] | None = None) -> Result:
        out, err = io.StringIO(), io.StringIO()
        code = await run(
            ["--server", self.server, "--config", str(self.config), *argv],
            stdin=io.StringIO(stdin) if typing is None else Typing(err, typing),
            stdout=out,
            stderr=err,
            environ={"HOME": str(self.config.parent)},
        )
        return Result(code, out.getvalue(), err.getvalue())

    def token(self) -> str:
        return str(json.loads(self.config.read_text())["access_token"])


async def _signed_up(
    server: str, inbox: SmtpInbox, tmp_path: Path, name: str, *, display_name: str | None = None
) -> Cli:
    cli = Cli(server, tmp_path / name / "config.json")
    email = f"{name}@example.com"
    named = ["--display-name", display_name] if display_name else []
    registered = await cli("register", email, name, *named, "--password-stdin", stdin=PASSWORD + "\n")
    assert registered.code == 0, registered
    verified = await cli("verify", email, await inbox.code_for(email))
    assert verified.code == 0, verified
    signed_in = await cli("login", name, "--password-stdin", "--json", stdin=PASSWORD + "\n")
    assert signed_in.code == 0, signed_in
    assert signed_in.json()["username"] == name
    assert stat.S_IMODE(cli.config.stat().st_mode) == 0o600
    return cli


async def _until_ok(cli: Cli, *argv: str, timeout: float = 20) -> Result:
    """Repeat a command while it is refused: in split mode a fresh membership reaches each service by Kafka."""
    deadline = time.monotonic() + timeout
    while True:
        result = await cli(*argv)
        if result.code == 0 or time.monotonic() > deadline:
            return result
        await asyncio.sleep(0.2)


async def _scenario(servers: list[str], inbox: SmtpInbox, tmp_path: Path) -> None:
    began = time.perf_counter()
    ada = await _signed_up(servers[0], inbox, tmp_path, "ada")
    bob = await _signed_up(servers[-1], inbox, tmp_path, "bob", display_name="Bob Builder")

    created = await ada("create", "lobby", "--topic", "all things", "--json")
    assert created.code == 0, created
    room_id = created.json()["id"]
    joined = await bob("join", "lobby", "--json")  # by name: found in the directory
    assert joined.code == 0, joined
    assert joined.json()["id"] == room_id

    sent = await ada("send", "lobby", "hello bob", "--json")
    assert sent.code == 0, sent
    assert sent.json()["seq"] == 1
    assert (await ada("send", room_id, "second")).out.strip() == "2"

    page = await _until_ok(bob, "history", "lobby", "--json")
    assert page.code == 0, page
    assert [(m["seq"], m["body"]) for m in page.json()] == [(1, "hello bob"), (2, "second")]
    text = await bob("history", "lobby", "--limit", "1", "--before", "2")
    assert "hello bob" in text.out
    assert "second" not in text.out

    async def unread_two() -> Result:
        while True:
            listed = await bob("rooms", "--json")
            if listed.code != 0 or listed.json()[0].get("unread") == 2:
                return listed
            await asyncio.sleep(0.1)

    listed = await asyncio.wait_for(unread_two(), 20)
    assert listed.code == 0, listed
    assert [(r["name"], r["unread"]) for r in listed.json()] == [("lobby", 2)]

    stranger = Cli(servers[0], tmp_path / "stranger" / "config.json")
    refused = await stranger("login", "ada", "--password-stdin", stdin="not the password at all\n")
    assert refused.code == 1
    assert "invalid_credentials" in refused.err
    as_json = await stranger("--json", "login", "ada", "--password-stdin", stdin="not the password at all\n")
    assert as_json.code == 1
    assert json.loads(as_json.err)["error"]["code"] == "invalid_credentials"
    assert (await stranger("rooms")).code == 1, "not signed in"
    await _second_factor(bob, servers[-1], tmp_path)
    await _sessions(servers, inbox, tmp_path)

    # Once as a real process, as a script would run it: the console script docs/cli.md tells people to run from
    # the checkout after `make run` (.venv/bin/chat-cli, beside this interpreter).
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAT_")}
    console_script = Path(sys.executable).with_name("chat-cli")
    assert console_script.is_file(), f"{console_script}: the workspace sync installs chat-cli"
    process = await asyncio.to_thread(
        subprocess.run,
        [
            str(console_script),
            "--server",
            servers[-1],
            "--config",
            str(bob.config),
            "history",
            "lobby",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert process.returncode == 0, process.stderr
    assert [m["body"] for m in json.loads(process.stdout)] == ["hello bob", "second"]
    print(f"cli scenario: {time.perf_counter() - began:.2f}s")

    await _replies_files_direct_rooms_and_search(ada, bob, tmp_path)
    await _interactive(ada, bob, servers, room_id, tmp_path)


async def _replies_files_direct_rooms_and_search(ada: Cli, bob: Cli, tmp_path: Path) -> None:
    """A reply shows who and what it answers, a file its name, size and the command that fetches it (which works
    as shown), and a direct room the other person's name; search finds a room's messages by their words."""
    began = time.perf_counter()
    hello = (await bob("history", "lobby", "--json")).json()[0]
    replied = await bob("send", "lobby", "hi ada", "--reply-to", hello["id"])
    assert replied.code == 0, replied
    notes = tmp_path / "notes.txt"
    notes.write_text("minutes of the meeting\n")
    attached = await ada("send", "lobby", "the notes", "--attach", str(notes), "--json")
    assert attached.code == 0, attached
    file_id = attached.json()["attachments"][0]["id"]

    shown = await _until_ok(bob, "history", "lobby", "--limit", "2")
    assert shown.code == 0, shown
    lines = shown.out.splitlines()
    assert lines[0].endswith("me: [↪ #1 ada: hello bob] hi ada"), lines
    assert lines[1].endswith("ada: the notes"), lines
    assert lines[2] == f"    📎 notes.txt (23 B)  chat-cli download lobby {file_id}", lines
    assert hello["id"] not in shown.out, "a reply names its author, not the message's id"

    downloads = tmp_path / "downloads"
    downloads.mkdir()
    command = shlex.split(lines[2].strip().split("  ", 1)[1])
    assert command[0] == "chat-cli"
    for _ in range(2):  # the second copy gets a name of its own
        fetched = await bob(*command[1:], "-o", str(downloads), "--json")
        assert fetched.code == 0, fetched
    assert fetched.json()["path"] == str(downloads / "notes (1).txt")
    assert (downloads / "notes.txt").read_text() == (downloads / "notes (1).txt").read_text() == notes.read_text()

    opened = await ada("dm", "bob", "--json")
    assert opened.code == 0, opened
    direct_id = opened.json()["id"]
    listed = await ada("rooms", "--json")
    assert [r.get("title") for r in listed.json() if r["id"] == direct_id] == ["Bob Builder"]
    assert "Bob Builder" in (await ada("rooms")).out
    sent = await _until_ok(ada, "send", "@bob", "psst", "--json")  # a direct room by its person's username
    assert sent.code == 0, sent
    assert sent.json()["room_id"] == direct_id
    seen = await _until_ok(bob, "history", "ada", "--json")  # and from the other side, by theirs
    assert seen.code == 0, seen
    assert [m["body"] for m in seen.json()] == ["psst"]

    found = await bob("search", "lobby", "HELLO", "--json")  # the messages service's search: any case
    assert found.code == 0, found
    assert [m["body"] for m in found.json()["items"]] == ["hello bob"]
    shown_found = await bob("search", "lobby", "notes")
    assert shown_found.out.splitlines()[0].endswith("ada: the notes"), shown_found.out
    assert shown_found.out.splitlines()[1].startswith("    📎 notes.txt (23 B)  chat-cli download lobby ")
    assert (await bob("search", "lobby", "psst")).out == "(nothing matches 'psst')\n", "not from another room"
    print(f"cli replies, files, direct rooms and search: {time.perf_counter() - began:.2f}s")


async def _second_factor(bob: Cli, server: str, tmp_path: Path) -> None:
    """Bob turns on TOTP with `chat-cli totp setup`, typing the code his app shows after scanning; `login` then
    answers ``mfa_required`` and the CLI finishes with a recovery code (a fresh authenticator code would need the
    next 30-second step: the one used to confirm is spent). Then he turns it off with his password."""
    assert "off" in (await bob("totp", "status")).out
    set_up = await bob("totp", "setup", "--json", typing=authenticator_code)
    assert set_up.code == 0, set_up
    recovery = set_up.json()["recovery_codes"]
    assert len(recovery) == 10
    assert "█" in set_up.err, "the QR code is drawn"
    uri = re.search(r"uri: +(otpauth://totp/\S+)", set_up.err)
    assert uri, set_up.err
    assert "secret=" in uri.group(1)
    again = await bob("totp", "setup")
    assert again.code == 1
    assert "totp_already_enabled" in again.err
    second_device = Cli(server, tmp_path / "bob-laptop" / "config.json")
    signed_in = await second_device("login", "bob", "--password-stdin", "--json", stdin=f"{PASSWORD}\n{recovery[0]}\n")
    assert signed_in.code == 0, signed_in
    assert signed_in.json()["username"] == "bob"
    wrong = await Cli(server, tmp_path / "bob-phone" / "config.json")(
        "login", "bob", "--password-stdin", "--recovery-code", recovery[0], stdin=PASSWORD + "\n"
    )
    assert wrong.code == 1, "a recovery code works once"
    assert "invalid_recovery_code" in wrong.err, wrong.err
    assert (await bob("totp", "status", "--json")).json() == {"enabled": True, "recovery_codes_left": 9}
    refused = await bob("totp", "disable", "--password-stdin", stdin="not the password\n")
    assert refused.code == 1, refused
    disabled = await bob("totp", "disable", "--password-stdin", stdin=PASSWORD + "\n")
    assert disabled.code == 0, disabled
    assert (await bob("totp", "status", "--json")).json()["enabled"] is False
    plain = await Cli(server, tmp_path / "bob-tablet" / "config.json")(
        "login", "bob", "--password-stdin", stdin=PASSWORD + "\n"
    )
    assert plain.code == 0, "no second factor asked for any more"


async def _sessions(servers: list[str], inbox: SmtpInbox, tmp_path: Path) -> None:
    """Cyril signs in on a desk and a laptop: the desk lists both with their device and ends the laptop's session,
    then, signed in on a phone too, logs out everywhere."""
    began = time.perf_counter()
    desk = await _signed_up(servers[0], inbox, tmp_path, "cyril")

    async def another(device: str) -> Cli:
        cli = Cli(servers[-1], tmp_path / f"cyril-{device}" / "config.json")
        assert (await cli("login", "cyril", "--password-stdin", stdin=PASSWORD + "\n")).code == 0
        return cli

    laptop = await another("laptop")
    listed = await desk("sessions", "--json")
    assert listed.code == 0, listed
    assert sorted(s["current"] for s in listed.json()) == [False, True]
    shown = await desk("sessions")
    assert shown.out.count("chat-cli on ") == 2, shown.out
    assert shown.out.splitlines()[-1] == "* this device"
    laptop_id = next(s["id"] for s in listed.json() if not s["current"])

    ended = await desk("sessions", "--end", laptop_id[:8])
    assert ended.code == 0, ended
    assert "Ended session" in ended.out
    assert (await laptop("whoami")).code == 1, "the laptop's session is over"
    assert (await desk("whoami")).code == 0, "the desk's goes on"
    assert [s["id"] for s in (await desk("sessions", "--json")).json()] != [laptop_id]

    phone = await another("phone")
    everywhere = await desk("sessions", "--all", "--json")
    assert everywhere.code == 0, everywhere
    assert json.loads(desk.config.read_text()).get("refresh_token") is None, "no dead tokens kept here"
    signed_out = await _until_refused(phone, "rooms")
    assert signed_out.code == 1, signed_out
    assert "session_revoked" in signed_out.err or "refresh_token" in signed_out.err, signed_out.err
    print(f"cli sessions: {time.perf_counter() - began:.2f}s")


async def _until_refused(cli: Cli, *argv: str, timeout: float = 20) -> Result:
    """Repeat a command while it succeeds: in split mode an ended session reaches each service by Kafka."""
    deadline = time.monotonic() + timeout
    while True:
        result = await cli(*argv)
        if result.code != 0 or time.monotonic() > deadline:
            return result
        await asyncio.sleep(0.2)


async def _interactive(ada: Cli, bob: Cli, servers: list[str], room_id: str, tmp_path: Path) -> None:
    """Ada opens the room; Bob's message appears live, her typing reaches Bob, and her typed line is sent."""
    began = time.perf_counter()
    transcript = tmp_path / "ada-transcript.txt"
    watcher: Client = await connect(Product(base=servers[-1], http=None, inbox=None), bob.token())  # type: ignore[arg-type]
    try:
        assert (await watcher.sio.call("room:subscribe", {"room_id": room_id}, timeout=15))["ok"] is True
        with create_pipe_input() as keys, create_app_session(input=keys, output=DummyOutput()):
            opened = asyncio.create_task(ada("open", "lobby", "--transcript", str(transcript)))
            await until(lambda: transcript.exists() and "second" in transcript.read_text(), timeout=20)
            await asyncio.sleep(1)  # subscribed by now; a later message is live either way (recovery by seq)

            told = await bob("send", "lobby", "are you there, ada?")
            assert told.code == 0, told
            await until(lambda: "are you there, ada?" in transcript.read_text(), timeout=20)
            ada_id = str(json.loads(ada.config.read_text())["user_id"])
            for marker in ("room:delivered", "room:read"):  # the open room acknowledges what it showed
                await until(
                    lambda marker=marker: any(
                        e == marker and p["user_id"] == ada_id and p["up_to_seq"] >= 3 for e, p in watcher.received
                    ),
                    timeout=10,
                )

            keys.send_text("yes, here")
            await until(lambda: any(e == "typing" and p["typing"] for e, p in watcher.received), timeout=10)
            keys.send_text("\r")
            await until(
                lambda: any(e == "message:new" and p["body"] == "yes, here" for e, p in watcher.received), timeout=20
            )
            keys.send_text("/quit\r")
            result = await asyncio.wait_for(opened, 20)
            assert result.code == 0, result
    finally:
        await watcher.sio.disconnect()
    lines = transcript.read_text().splitlines()
    assert any("are you there, ada?" in line for line in lines), lines
    assert any(line.endswith("bob: [↪ #1 me: hello bob] hi ada") for line in lines), lines
    assert any(line.startswith("    📎 notes.txt (23 B)  chat-cli download lobby ") for line in lines), lines
    # Presence shows the username the rooms service's user lookup gives, not an id prefix.
    assert any("bob" in line and "online" in line for line in lines if line.startswith("-- ")), lines
    page = await bob("history", "lobby", "--json")
    assert [m["body"] for m in page.json()][-1] == "yes, here"
    print(f"cli interactive: {time.perf_counter() - began:.2f}s")
    await _recovers_after_a_lost_connection(ada, bob, room_id)
    await _in_a_real_terminal(ada, bob)


def _spawn_on(terminal: int, cli: Cli, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "chat_cli", "--server", cli.server, "--config", str(cli.config), "open", "lobby"],
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        env=env,
        start_new_session=True,
    )


async def _in_a_real_terminal(ada: Cli, bob: Cli) -> None:
    """``chat-cli open`` as its own process on a pseudo-terminal: the screen shows Bob's message, a typed line is
    sent, Ctrl-D exits 0."""
    began = time.perf_counter()
    main_fd, child_fd = pty.openpty()
    fcntl.ioctl(child_fd, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 120, 0, 0))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAT_")} | {"TERM": "xterm-256color"}
    process = _spawn_on(child_fd, ada, env)
    os.close(child_fd)
    screen = bytearray()

    def read_some() -> None:
        ready, _, _ = select.select([main_fd], [], [], 0.05)
        if ready:
            with contextlib.suppress(OSError):
                screen.extend(os.read(main_fd, 65536))

    async def shows(text: str, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while text not in re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen.decode(errors="replace")):
            assert time.monotonic() < deadline, f"{text!r} not on screen: {bytes(screen)[-2000:]!r}"
            assert process.poll() is None, f"exited {process.returncode}: {bytes(screen)[-2000:]!r}"
            await asyncio.to_thread(read_some)

    try:
        await shows("missed two")
        assert (await bob("send", "lobby", "seen on a terminal?")).code == 0
        await shows("seen on a terminal?")
        os.write(main_fd, b"typed on a terminal\r")
        deadline = time.monotonic() + 20
        while (await bob("history", "lobby", "--json")).json()[-1]["body"] != "typed on a terminal":
            assert time.monotonic() < deadline, "the typed line was not sent"
            await asyncio.sleep(0.2)
        os.write(main_fd, b"\x04")
        code = await asyncio.to_thread(process.wait, 20)
        assert code == 0, bytes(screen)[-2000:]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(main_fd)
    print(f"cli on a pty: {time.perf_counter() - began:.2f}s")


async def _recovers_after_a_lost_connection(ada: Cli, bob: Cli, room_id: str) -> None:
    """The room view loses its socket, Bob sends meanwhile, and on reconnecting the view resubscribes from its last
    seq: each missed message shows exactly once. Then Ctrl-D leaves."""
    began = time.perf_counter()
    api = Api(ada.server, Config.load(ada.config))
    transcript = io.StringIO()
    network = asyncio.Event()
    network.set()
    try:
        with create_pipe_input() as keys, create_app_session(input=keys, output=DummyOutput()):
            view = RoomView(api, {"id": room_id, "name": "lobby"}, transcript=transcript)
            connect = view.socket.connect

            async def connect_when_the_network_is_back() -> None:
                await network.wait()
                await connect()

            view.socket.connect = connect_when_the_network_is_back  # type: ignore[method-assign]
            running = asyncio.create_task(view.run())
            await until(lambda: view.connection == "live", timeout=20)
            network.clear()
            await view.socket.sio.eio.disconnect(abort=True)  # the connection drops under the client
            await until(lambda: view.connection == "reconnecting", timeout=10)
            for text in ("missed one", "missed two"):
                assert (await bob("send", "lobby", text)).code == 0
            network.set()
            await until(lambda: "missed two" in transcript.getvalue(), timeout=20)
            await asyncio.sleep(0.5)  # room for a duplicate to show up, if there were one
            keys.send_text("\x04")  # Ctrl-D
            await asyncio.wait_for(running, 20)
    finally:
        await api.aclose()
    shown = transcript.getvalue()
    assert shown.count("missed one") == 1, shown
    assert shown.count("missed two") == 1, shown
    assert "reconnected" in shown
    seqs = [int(m.group(1)) for m in re.finditer(r"^#(\d+) ", shown, re.MULTILINE)]
    assert seqs == sorted(seqs), seqs
    assert len(seqs) == len(set(seqs)), seqs
    print(f"cli recovery: {time.perf_counter() - began:.2f}s")


async def test_the_cli_signs_up_chats_and_scripts_against_the_all_in_one_product(
    product: Product, tmp_path: Path
) -> None:
    await _scenario([product.base], product.inbox, tmp_path)


async def test_the_cli_signs_up_chats_and_scripts_against_split_mode(split: Split, tmp_path: Path) -> None:
    await _scenario(split.gateways, split.inbox, tmp_path)


# -- signing in through the browser (the loopback flow of docs/auth-oidc.md) -------------------------------------

REDIRECT_URI = "http://chat.test/api/auth/oidc/callback"  # the browser below takes chat.test to the product


@pytest.fixture
def with_oidc(oidc_provider: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Turn provider sign-in on for the ``product`` requested after this fixture (it reads the environment)."""
    monkeypatch.setenv("CHAT_AUTH_OIDC_ISSUER", oidc_provider)
    monkeypatch.setenv("CHAT_AUTH_OIDC_CLIENT_ID", "chat-cli-test")
    monkeypatch.setenv("CHAT_AUTH_OIDC_CLIENT_SECRET", "mock-client-secret")
    monkeypatch.setenv("CHAT_AUTH_OIDC_REDIRECT_URI", REDIRECT_URI)
    return oidc_provider


# The mock provider (authlib inside) warns about its own deprecated APIs while it serves.
@pytest.mark.filterwarnings("ignore:get_jwt_config:DeprecationWarning")
@pytest.mark.filterwarnings("ignore:authlib.jose module is deprecated:DeprecationWarning")
@pytest.mark.filterwarnings("ignore:The httpx module is deprecated:DeprecationWarning")
async def test_the_cli_signs_in_through_the_browser_with_a_loopback_listener(
    with_oidc: str, product: Product, tmp_path: Path
) -> None:
    began = time.perf_counter()
    cli = Cli(product.base, tmp_path / "kim" / "config.json")
    out, err = io.StringIO(), io.StringIO()
    async with httpx.AsyncClient(timeout=10, trust_env=False) as browser:
        created = await browser.put(
            f"{with_oidc}/users/kim-{os.getpid()}", json={"email": "kim@example.com", "email_verified": True}
        )
        assert created.status_code == 204, created.text
        login = asyncio.create_task(
            run(
                ["--server", cli.server, "--config", str(cli.config), "login", "--browser", "--no-open", "--json"],
                stdin=io.StringIO(),
                stdout=out,
                stderr=err,
                environ={},
            )
        )
        await until(lambda: "/api/auth/oidc/start?" in err.getvalue() or login.done(), timeout=10)
        found = re.search(r"(http://\S+/api/auth/oidc/start\?\S+)", err.getvalue())
        assert found, err.getvalue()

        to_provider = await browser.get(found.group(1))
        assert to_provider.status_code == 302, to_provider.text
        authorize = to_provider.headers["location"]
        assert (await browser.get(authorize)).status_code == 200
        consented = await browser.post(authorize, data={"sub": f"kim-{os.getpid()}"})
        assert consented.status_code == 302, consented.text
        back = urlsplit(consented.headers["location"])
        assert back.netloc == "chat.test"
        to_cli = await browser.get(f"{product.base}{back.path}?{back.query}")
        assert to_cli.status_code == 302, to_cli.text
        assert to_cli.headers["location"].startswith("http://127.0.0.1:")
        landed = await browser.get(to_cli.headers["location"])
        assert landed.status_code == 200
        assert "close this tab" in landed.text

        assert await asyncio.wait_for(login, 20) == 0, err.getvalue()
    assert json.loads(out.getvalue())["username"].startswith("kim")
    assert stat.S_IMODE(cli.config.stat().st_mode) == 0o600
    me = await cli("whoami", "--json")
    assert me.code == 0, me
    assert me.json()["email"] == "kim@example.com"
    print(f"cli browser sign-in: {time.perf_counter() - began:.2f}s")
