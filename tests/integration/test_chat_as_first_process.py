"""A `chat` command as a container's first process (PID 1 of its PID namespace, as `docker run` and Kubernetes
start it) stops on SIGTERM. The kernel gives PID 1 no default action for a signal: one the process does not handle
is ignored, so `docker stop` would wait out its grace period and then kill it."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from .chat_up import STOP_SECONDS
from .procfs import processes
from .product import free_port

CONNECT_SECONDS = 60


@pytest.fixture
async def silent_database() -> AsyncIterator[tuple[int, asyncio.Event]]:
    """A TCP server that accepts and never answers, so a command connecting to it waits; the event is set once a
    connection came."""
    connected = asyncio.Event()
    held: list[asyncio.StreamWriter] = []

    async def accept(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)
        connected.set()

    port = free_port()
    server = await asyncio.start_server(accept, "127.0.0.1", port)
    try:
        yield port, connected
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


def _in_a_pid_namespace() -> list[str]:
    unshare = shutil.which("unshare")
    assert unshare, "this test needs util-linux's unshare to run a command as PID 1 of a PID namespace"
    # Without root, a user namespace mapping us to root is what allows the PID namespace.
    as_root = [] if os.geteuid() == 0 else ["--map-root-user"]
    return [unshare, *as_root, "--pid", "--fork", "--kill-child"]


async def test_sigterm_stops_a_one_shot_command_running_as_pid_1(
    silent_database: tuple[int, asyncio.Event], tmp_path: Path
) -> None:
    port, connected = silent_database
    env = {name: value for name, value in os.environ.items() if not name.startswith("CHAT_")}
    env.update(
        {
            "CHAT_AUTH_DATABASE_URL": f"postgresql+psycopg://chat@127.0.0.1:{port}/chat_auth",
            "CHAT_DATA_DIR": str(tmp_path),
            "PYTHONUNBUFFERED": "1",
        }
    )
    command = [*_in_a_pid_namespace(), sys.executable, "-m", "chat_app", "rotate-signing-key"]
    unshare = await asyncio.create_subprocess_exec(
        *command, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        # Only once it waits for its database does it run its own code (and handle signals) for sure.
        async with asyncio.timeout(CONNECT_SECONDS):
            await connected.wait()
        first = [p.pid for p in processes().values() if p.parent == unshare.pid]
        assert len(first) == 1, "unshare runs the command as its one child, PID 1 inside"

        os.kill(first[0], signal.SIGTERM)
        try:
            async with asyncio.timeout(STOP_SECONDS):
                status = await unshare.wait()
        except TimeoutError:
            raise AssertionError(f"PID 1 ignored SIGTERM: still running after {STOP_SECONDS}s") from None
        assert unshare.stdout is not None
        output = (await unshare.stdout.read()).decode(errors="replace")

        assert status == 128 + signal.SIGTERM, f"exit status {status}:\n{output}"
        assert "chat: stopped" in output
    finally:
        if unshare.returncode is None:
            unshare.kill()  # --kill-child takes the command with it
            await unshare.wait()
