"""The CLI outage test: ``chat-cli open`` on a real terminal while its server goes away and comes back. The room
view says it is reconnecting, keeps what is typed meanwhile, and resumes by itself: it resubscribes, catches up
what was sent while it was away, shows what is sent after, its presence is back for the others, and no "Unhandled
exception in event loop" ever replaces the screen. Against the all-in-one product (`chat up`, stopped and started
again) and against split mode (the CLI's gateway stopped while the rest of the product works, then started; the user had
said /away there, and is away again for the others once back)."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import httpx

from .product import until
from .room_presence import WebLike, cli_session
from .split import Split, split
from .terminal import Terminal
from .up_restarts import StartUp, room_of, sign_up_on, start_up, up_env

__all__ = ["split", "start_up", "up_env"]  # the fixtures, imported for pytest

UNHANDLED = "Unhandled exception"


async def _send(client: WebLike, body: str) -> None:
    """Send as a careful client does: the same client_msg_id until the server acknowledges it."""
    payload = {"room_id": client.room_id, "client_msg_id": uuid.uuid4().hex, "body": body}
    while True:
        try:
            answer = await client.sio.call("message:send", payload, timeout=10)
        except Exception:  # not connected (yet), or no answer: the same id again
            answer = {}
        if answer.get("ok"):
            return
        await asyncio.sleep(0.2)


async def _cli_signed_in(base: str, tokens: dict[str, Any], tmp_path: Path) -> Path:
    config = tmp_path / "ada" / "config.json"
    api = cli_session(base, tokens, config)
    await api.aclose()
    return config


def _lines(transcript: Path) -> list[str]:
    return transcript.read_text().splitlines() if transcript.exists() else []


def _shown(transcript: Path, body: str) -> int:
    """How many times the room view showed a message with ``body``."""
    return sum(1 for line in _lines(transcript) if line.startswith("#") and line.endswith(body))


async def _back_in_the_room(
    terminal: Terminal, transcript: Path, bob: WebLike, ada_id: str, *, received: list[str], status: str = "online"
) -> None:
    """After the outage: each message in ``received`` is shown once, what Ada typed during the outage is sent, Bob
    sees her with ``status`` again, and the screen never showed an unhandled exception."""
    for body in received:
        await until(lambda body=body: _shown(transcript, body) >= 1, timeout=60)
    await until(lambda: "typed during the outage" in bob.bodies, timeout=60)
    await until(lambda: bob.sees(ada_id) == status, timeout=30)
    await asyncio.sleep(1)  # room for a duplicate to show up, if there were one
    for body in [*received, "typed during the outage"]:
        assert _shown(transcript, body) == 1, _lines(transcript)
    assert "-- reconnected" in _lines(transcript)
    assert UNHANDLED not in terminal.text(), terminal.text()[-3000:]


async def _leave(terminal: Terminal, transcript: Path, bob: WebLike) -> None:
    """End both clients, first printing what the terminal showed (pytest shows it when the test failed)."""
    print(
        "----- the screen, as drawn:", terminal.text()[-4000:], "----- the transcript:", *_lines(transcript), sep="\n"
    )
    if terminal.process.poll() is None:
        await terminal.close()
    await bob.close()


async def test_the_cli_rides_out_a_chat_up_restart(start_up: StartUp, tmp_path: Path) -> None:
    first = await start_up()
    async with httpx.AsyncClient(base_url=first.base, timeout=20) as http:
        ada, bob_tokens = [await sign_up_on(first, http, name) for name in ("ada", "bob")]
        room_id = await room_of(http, ada, [bob_tokens], "lobby")
    config = await _cli_signed_in(first.base, ada, tmp_path)
    transcript = tmp_path / "transcript.txt"
    bob = WebLike(first.base, bob_tokens["access_token"], room_id, bob_tokens["user_id"])
    terminal = Terminal.open_room(server=first.base, config=config, room="lobby", transcript=transcript)
    try:
        await until(lambda: any(line.startswith("-- online:") for line in _lines(transcript)), timeout=30)
        await bob.start()
        await _send(bob, "sent before the outage")
        await until(lambda: _shown(transcript, "sent before the outage") == 1, timeout=20)

        assert await first.interrupt() == 0, first.output()
        await terminal.shows("reconnecting…")
        terminal.type("typed during the outage\r")
        second = await start_up()
        try:
            await _send(bob, "sent after the restart")
            await _back_in_the_room(terminal, transcript, bob, ada["user_id"], received=["sent after the restart"])
        except BaseException:
            print(second.output())
            raise
        assert await terminal.close() == 0, terminal.text()[-3000:]
    finally:
        await _leave(terminal, transcript, bob)


async def test_the_cli_rides_out_its_gateway_going_away_in_split_mode(split: Split, tmp_path: Path) -> None:
    ada, bob_tokens = [await split.sign_up(name) for name in ("ada", "bob")]
    room_id = await room_of(split.http_for(0), ada, [bob_tokens], "lobby")
    a, b = split.gateways
    config = await _cli_signed_in(b, ada, tmp_path)
    transcript = tmp_path / "transcript.txt"
    bob = WebLike(a, bob_tokens["access_token"], room_id, bob_tokens["user_id"])  # on the gateway that stays
    terminal = Terminal.open_room(server=b, config=config, room="lobby", transcript=transcript)
    try:
        await until(lambda: any(line.startswith("-- online:") for line in _lines(transcript)), timeout=30)
        await bob.start()
        await _send(bob, "sent before the outage")
        await until(lambda: _shown(transcript, "sent before the outage") == 1, timeout=20)
        terminal.type("/away\r")  # said again by the view on its new connection after the outage
        await until(lambda: "-- you are away; others see you as away" in _lines(transcript), timeout=20)
        await until(lambda: bob.sees(ada["user_id"]) == "away", timeout=20)

        await split.stop("gateway-b")
        await terminal.shows("reconnecting…")
        terminal.type("typed during the outage\r")
        await _send(bob, "sent during the outage")
        await split.restart("gateway-b")
        await _send(bob, "sent after the restart")
        received = ["sent during the outage", "sent after the restart"]
        await _back_in_the_room(terminal, transcript, bob, ada["user_id"], received=received, status="away")
        assert await terminal.close() == 0, terminal.text()[-3000:]
    finally:
        await _leave(terminal, transcript, bob)
