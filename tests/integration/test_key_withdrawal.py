"""A leaked signing key withdrawn with ``chat withdraw-signing-key``: every token it signed is refused by every
service's REST API and at every gateway's handshake within 2 seconds (``token_key_withdrawn``), sockets that
authenticated with one are closed, a new key signs at once and its tokens work everywhere, in the all-in-one
product and in split mode on Kafka; withdrawing again changes nothing, and an unknown kid is a clear error."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

import jwt
import socketio

from .product import Product, product
from .session_endings import accepted_everywhere, login, refused_everywhere
from .split import Split, split

__all__ = ["product", "split"]  # the fixtures, imported for pytest

WITHDRAWN = "token_key_withdrawn"


async def chat(args: Sequence[str], env: Mapping[str, str]) -> tuple[int, str]:
    """``chat <args>`` as an operator runs it next to the running service: its exit code and output."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "chat_app",
        *args,
        env=dict(env),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, output.decode(errors="replace")


def kid_of(token: str) -> str:
    return str(jwt.get_unverified_header(token)["kid"])


async def open_socket(entry: Product, token: str) -> tuple[socketio.AsyncClient, list[dict[str, Any]]]:
    """A connected socket, and the ``session:ended`` events it receives."""
    client = socketio.AsyncClient(reconnection=False)
    ended: list[dict[str, Any]] = []
    client.on("session:ended", ended.append)
    await client.connect(entry.base, auth={"token": token}, transports=["websocket"], wait_timeout=10)
    return client, ended


async def withdrawal_scenario(entries: Sequence[Product], *, operator_env: Mapping[str, str]) -> str:
    """Withdraw the key that signed a fresh user's token and check what follows; returns that token."""
    name = f"ada{os.urandom(3).hex()}"
    ada = await entries[0].sign_up(name)
    token = ada["access_token"]
    leaked = kid_of(token)
    await accepted_everywhere(entries, token)
    sockets = [await open_socket(entry, token) for entry in entries]

    code, output = await chat(["withdraw-signing-key", leaked], operator_env)
    withdrawn_at = time.monotonic()

    assert code == 0, output
    assert "signing_key.withdrawn" in output, output
    await refused_everywhere(entries, token, since=withdrawn_at, code=WITHDRAWN)
    for client, ended in sockets:
        async with asyncio.timeout(5):
            while client.connected:
                await asyncio.sleep(0.05)
        assert ended == [{"reason": WITHDRAWN}]

    fresh = await login(entries[0], name)
    assert kid_of(fresh["access_token"]) != leaked, "a new key signs at once"
    await accepted_everywhere(entries, fresh["access_token"])

    code, output = await chat(["withdraw-signing-key", leaked], operator_env)
    assert code == 0, output
    assert "signing_key.already_withdrawn" in output, output
    await accepted_everywhere(entries, fresh["access_token"])

    code, output = await chat(["withdraw-signing-key", "no-such-kid"], operator_env)
    assert code == 1, output
    assert "signing_key.not_found" in output, output
    assert "no-such-kid" in output, output
    return str(token)


async def test_a_withdrawn_keys_tokens_are_refused_everywhere_and_a_new_key_signs_in_the_all_in_one_mode(
    product: Product,
) -> None:
    await withdrawal_scenario([product], operator_env=os.environ)


async def test_a_withdrawn_keys_tokens_are_refused_by_every_service_and_gateway_in_split_mode_even_after_restarts(
    split: Split,
) -> None:
    entries = [split.at(0), split.at(1)]
    leaked = await withdrawal_scenario(entries, operator_env=split.children["auth"].env)

    for name in ("rooms", "messages", "gateway-b"):
        await split.restart(name)  # ready again means it has read back the recent withdrawals

    # Not just unknown to a fresh JWKS: known as withdrawn, from the topic read back before reporting ready.
    await refused_everywhere(entries, leaked, since=time.monotonic(), code=WITHDRAWN)
