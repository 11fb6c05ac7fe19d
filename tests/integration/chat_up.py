"""`chat up` as a person runs it, as a child process of the test: its own folders and free ports (so it never
meets the servers the suite shares), its output read line by line, stopped by a signal; and what it started (its
processes and the ports they listen on), to check that nothing of it is left afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from .procfs import Process, listening, listening_ports, started_by, still_running
from .product import free_port, until

STOP_SECONDS = 30
READY_SECONDS = 120
DIRECT = (sys.executable, "-m", "chat_app", "up")


def up_environment(root: Path, *, infra: Path) -> dict[str, str]:
    """The environment of a `chat up` whose servers (in ``infra``), data (under ``root``) and ports are its own."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("CHAT_")}
    env.update(
        {
            "CHAT_INFRA_DIR": str(infra),
            "CHAT_INFRA_PG_PORT": str(free_port()),
            "CHAT_INFRA_MONGO_PORT": str(free_port()),
            "CHAT_DATA_DIR": str(root / "data"),
            "CHAT_HTTP_PORT": str(free_port()),
            "CHAT_LOG_FORMAT": "json",
            "CHAT_LOG_LEVEL": "info",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


@contextlib.contextmanager
def own_infra_dir() -> Iterator[Path]:
    """A folder for the embedded servers, removed afterwards. Not under pytest's temporary root: pytest keeps that
    private (0700) and makes it so again whenever any pytest session starts, and PostgreSQL, which runs as its own
    user when the tests run as root, would lose its way to its data."""
    path = Path(tempfile.mkdtemp(prefix="chat-up-infra-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def ports_of(env: dict[str, str]) -> set[int]:
    """The ports such a `chat up` listens on: HTTP and the two embedded servers."""
    return {int(env[name]) for name in ("CHAT_HTTP_PORT", "CHAT_INFRA_PG_PORT", "CHAT_INFRA_MONGO_PORT")}


@dataclass(frozen=True)
class Footprint:
    """What a running `chat up` started: every process of it and every port they listen on."""

    processes: frozenset[Process]
    ports: frozenset[int]
    marker: str
    """Its own infra folder, on the command line of each server it started (PostgreSQL leaves its tree)."""

    @classmethod
    def of(cls, pid: int, env: dict[str, str]) -> Footprint:
        marker = env["CHAT_INFRA_DIR"]
        processes = started_by(pid, marker=marker)
        return cls(frozenset(processes), frozenset(listening_ports(processes) | ports_of(env)), marker)

    def left(self) -> str:
        """What of it still runs or listens, or "" when nothing does."""
        running = still_running(set(self.processes)) + still_running(started_by(-1, marker=self.marker))
        ports = listening(set(self.ports))
        return "".join(
            [f"still running: {p.pid} {p.command}\n" for p in running]
            + ([f"still listening on {sorted(ports)}\n"] if ports else [])
        )


@dataclass
class Up:
    """One `chat up` process (or the `uv run` in front of it), in a session of its own, its output read."""

    process: asyncio.subprocess.Process
    base: str
    lines: list[str] = field(default_factory=list)
    reader: asyncio.Task[None] | None = None

    async def read(self) -> None:
        assert self.process.stdout is not None
        async for raw in self.process.stdout:
            self.lines.append(raw.decode(errors="replace").rstrip())

    def output(self) -> str:
        return "\n".join(self.lines[-80:])

    def said(self, text: str) -> bool:
        return any(text in line for line in self.lines)

    def code_for(self, email: str) -> str | None:
        """The last code printed for ``email`` (dev mode prints each as ``code for <address>: <code>``)."""
        printed = re.compile(rf"^code for {re.escape(email)}: (\d{{6}})$")
        codes = [found.group(1) for line in self.lines if (found := printed.match(line))]
        return codes[-1] if codes else None

    async def ready(self) -> None:
        """Wait until it prints its URL and answers /readyz."""
        try:
            await until(lambda: self.said("listening on http://") or self.process.returncode is not None, READY_SECONDS)
            assert self.process.returncode is None, f"chat up exited:\n{self.output()}"
            async with httpx.AsyncClient(base_url=self.base, timeout=5) as http:
                for _ in range(200):
                    with contextlib.suppress(httpx.TransportError):
                        if (await http.get("/readyz")).status_code == 200:
                            return
                    await asyncio.sleep(0.1)
        except BaseException:
            print(self.output())
            raise
        raise AssertionError(f"chat up never became ready:\n{self.output()}")

    async def stop(self, sig: signal.Signals, *, whole_group: bool = False) -> int:
        """Send ``sig`` to the process, or to its whole process group as a terminal's Ctrl-C does; its exit
        status once it has exited."""
        if whole_group:
            os.killpg(self.process.pid, sig)
        else:
            self.process.send_signal(sig)
        try:
            async with asyncio.timeout(STOP_SECONDS):
                status = await self.process.wait()
        except TimeoutError:
            raise AssertionError(f"chat up did not stop within {STOP_SECONDS}s:\n{self.output()}") from None
        if self.reader is not None:
            await self.reader
        return status

    async def interrupt(self) -> int:
        """Ctrl-C, as a person at the terminal would; returns the exit status."""
        return await self.stop(signal.SIGINT)


@asynccontextmanager
async def running_up(env: dict[str, str]) -> AsyncIterator[Any]:
    """Start `chat up` processes (``start(command=DIRECT)``); whatever a test leaves behind is ended afterwards."""
    running: list[Up] = []

    async def start(command: Sequence[str] = DIRECT) -> Up:
        process = await asyncio.create_subprocess_exec(
            *command,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            # Its own process group, as a command started from a shell has: a signal to the group reaches it
            # (and `uv run` in front of it) and nothing of the test.
            start_new_session=True,
        )
        up = Up(process=process, base=f"http://127.0.0.1:{env['CHAT_HTTP_PORT']}")
        up.reader = asyncio.create_task(up.read())
        running.append(up)
        return up

    try:
        yield start
    finally:
        for up in running:
            if up.process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(up.process.pid, signal.SIGKILL)
                await up.process.wait()
            if up.reader is not None:
                await up.reader
        # Whatever happened, stop the embedded servers a `chat up` of this test may have left.
        stopper = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "chat_localinfra", "down", env=env, stdout=asyncio.subprocess.DEVNULL
        )
        await stopper.wait()
