"""Presence after a restart, as the people in a room see it: a web-like client and chat-cli's room view connected
to a gateway that restarts both reconnect by themselves, and every member then shows every other one online, the
third member included, with no one quitting or changing anything (docs/decisions/0007). Two gateways in split mode
on Kafka, one of them restarted; and the all-in-one product (`chat up`) stopped and started again."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from chat_cli.interactive import RoomView

from .chat_up import Up
from .product import until
from .room_presence import WebLike, cli_in_room, cli_sees, cli_session
from .split import Split, split
from .up_restarts import StartUp, room_of, sign_up_on, start_up, up_env

__all__ = ["split", "start_up", "up_env"]  # the fixtures, imported for pytest

SETTLED_SECONDS = 20.0
"""How long the room has to show everyone again after the clients are back: the grace period and a few missed
heartbeats on a loaded machine (the gateways here use a 1.5 s grace and 0.5–1 s beats)."""
STEADY_SECONDS = 4.0
"""How long the picture must then stay right: longer than it takes an instance to forget a silent one."""


async def _everyone_online(members: Mapping[str, Callable[[str], str]], users: Mapping[str, str]) -> None:
    """Wait until each member shows every other one online, then check it stays so."""

    def wrong() -> list[str]:
        return [
            f"{who} sees {name} {sees(user)}"
            for who, sees in members.items()
            for name, user in users.items()
            if name != who and sees(user) != "online"
        ]

    try:
        await until(lambda: not wrong(), timeout=SETTLED_SECONDS)
    except TimeoutError:
        raise AssertionError(f"presence is wrong: {wrong()}") from None
    deadline = time.monotonic() + STEADY_SECONDS
    while time.monotonic() < deadline:
        assert not wrong(), f"presence went wrong again: {wrong()}"
        await asyncio.sleep(0.1)


@dataclass
class Room:
    """Ada, Bob and Cyd in the lobby; Ada and Cyd also in a side room that Cyd's terminal never opens."""

    tokens: dict[str, dict[str, Any]]
    lobby: str
    side: str

    @property
    def users(self) -> dict[str, str]:
        return {name: str(tokens["user_id"]) for name, tokens in self.tokens.items()}

    def tab(self, base: str, name: str, room_id: str) -> WebLike:
        return WebLike(base, self.tokens[name]["access_token"], room_id, self.users[name])


async def _room(http: httpx.AsyncClient, tokens: dict[str, dict[str, Any]]) -> Room:
    lobby = await room_of(http, tokens["ada"], [tokens["bob"], tokens["cyd"]], "lobby")
    side = await room_of(http, tokens["ada"], [tokens["cyd"]], "side")
    return Room(tokens=tokens, lobby=lobby, side=side)


async def _everyone_online_after(
    restart: Callable[[], Awaitable[None]], room: Room, *, stays: str, restarts: str, tmp_path: Path
) -> None:
    """Ada's tabs on ``stays``, Bob's tab and Cyd's terminal on ``restarts``; ``restart`` restarts that server. Before
    and after it, each of them shows the others online, and so does Ada's tab of the side room for Cyd."""
    lobby = room.tab(stays, "ada", room.lobby)
    side = room.tab(stays, "ada", room.side)
    web = room.tab(restarts, "bob", room.lobby)
    tabs = (lobby, side, web)
    for tab in tabs:
        await tab.start()
    try:
        async with cli_in_room(
            cli_session(restarts, room.tokens["cyd"], tmp_path / "cyd" / "config.json"), room.lobby
        ) as cli:
            members = {"ada": lobby.sees, "bob": web.sees, "cyd": lambda user: cli_sees(cli, user)}
            in_side = {"ada": side.sees}
            await until(lambda: cli.connection == "live", timeout=20)
            await _everyone_online(members, room.users)
            await _everyone_online(in_side, {"cyd": room.users["cyd"]})

            before = [tab.subscriptions for tab in tabs]
            await restart()
            moved = [i for i, tab in enumerate(tabs) if tab.base == restarts]  # not a stale picture from before
            await until(lambda: all(tabs[i].subscriptions > before[i] for i in moved), timeout=60)
            await until(lambda: cli.connection == "live" and "reconnected" in _transcript(cli), timeout=60)
            await _everyone_online(members, room.users)
            await _everyone_online(in_side, {"cyd": room.users["cyd"]})
    finally:
        for name, tab in zip(("ada's lobby", "ada's side room", "bob's lobby"), tabs, strict=True):
            print(name, *tab.log, sep="\n  ")
            await tab.close()


def _transcript(view: RoomView) -> str:
    assert isinstance(view.transcript, io.StringIO)
    return view.transcript.getvalue()


async def test_after_a_gateway_restart_web_and_cli_members_show_online_to_the_room(
    split: Split, tmp_path: Path
) -> None:
    tokens = {name: await split.sign_up(name) for name in ("ada", "bob", "cyd")}
    room = await _room(split.http_for(0), tokens)

    async def restart_gateway_b() -> None:
        await split.restart("gateway-b")

    a, b = split.gateways
    await _everyone_online_after(restart_gateway_b, room, stays=a, restarts=b, tmp_path=tmp_path)


async def test_after_chat_up_restarts_web_and_cli_members_show_online_to_the_room(
    start_up: StartUp, tmp_path: Path
) -> None:
    first = await start_up()
    async with httpx.AsyncClient(base_url=first.base, timeout=20) as http:
        tokens = {name: await sign_up_on(first, http, name) for name in ("ada", "bob", "cyd")}
        room = await _room(http, tokens)
    again: list[Up] = []

    async def restart_chat_up() -> None:
        assert await first.interrupt() == 0, first.output()
        again.append(await start_up())

    try:
        await _everyone_online_after(restart_chat_up, room, stays=first.base, restarts=first.base, tmp_path=tmp_path)
    finally:
        for up in again:
            print(up.output())
