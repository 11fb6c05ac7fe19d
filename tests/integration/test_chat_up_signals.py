"""`uv run chat up` (what `make run` runs) stopped by a signal, while it serves or while its servers start: afterwards
none of the processes it started runs and none of its ports listens. SIGTERM is how `kill`, systemd, Docker and
Kubernetes stop a process; SIGINT to the whole process group is Ctrl-C at a terminal. `chat up` on its own, stopped
by Ctrl-C and by SIGTERM, is in test_chat_up.py."""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from .chat_up import READY_SECONDS, Footprint, Up, own_infra_dir, running_up, up_environment
from .product import until


def _uv() -> str:
    found = os.environ.get("UV") or shutil.which("uv")
    assert found, "uv is needed to test `uv run chat up`: run the suite with `uv run pytest` or put uv on PATH"
    return found


def _uv_run_chat_up() -> tuple[str, ...]:
    # --no-sync: the test runs in this very environment and must not change it; what is tested is uv's handling
    # of the process and its signals, the same with or without the sync.
    return (_uv(), "run", "--locked", "--no-sync", "chat", "up")


@pytest.fixture(scope="module")
def shared_infra() -> Iterator[Path]:
    """One PostgreSQL cluster and SecantusDB install for these tests (each test has its own ports)."""
    with own_infra_dir() as infra:
        yield infra


@pytest.fixture
def env(tmp_path: Path, shared_infra: Path) -> dict[str, str]:
    return up_environment(tmp_path, infra=shared_infra)


@pytest.fixture
async def start(env: dict[str, str]) -> AsyncIterator[Any]:
    async with running_up(env) as starter:
        yield starter


@pytest.mark.parametrize(
    ("sig", "whole_group"),
    [
        # `kill <pid of uv>`, a process manager: uv passes SIGTERM on to chat.
        pytest.param(signal.SIGTERM, False, id="sigterm-to-uv"),
        # Ctrl-C at the terminal of `make run`: SIGINT to uv and chat alike (uv leaves the first one to chat).
        pytest.param(signal.SIGINT, True, id="ctrl-c-to-the-group"),
    ],
)
async def test_a_stop_signal_ends_uv_run_chat_up_and_everything_it_started(
    start: Any, env: dict[str, str], sig: signal.Signals, whole_group: bool
) -> None:
    up: Up = await start(_uv_run_chat_up())
    await up.ready()
    footprint = Footprint.of(up.process.pid, env)
    commands = " ".join(p.command for p in footprint.processes)
    assert "postgres" in commands, "it started PostgreSQL"
    assert "secantusd" in commands, "it started the Mongo-wire server"
    assert footprint.left(), "before the signal, all of it runs and listens"

    status = await up.stop(sig, whole_group=whole_group)

    assert status == 0, f"a requested stop is a clean exit, got {status}:\n{up.output()}"
    assert up.said("app.stopped"), "the app drained and stopped its modules before the process ended"
    assert footprint.left() == "", footprint.left() + up.output()


async def test_ctrl_c_while_the_embedded_servers_start_leaves_none_of_them_running(
    start: Any, env: dict[str, str]
) -> None:
    up: Up = await start(_uv_run_chat_up())
    # Both are launched by now and the Mongo-wire server takes seconds to answer: the Ctrl-C comes meanwhile.
    await until(lambda: up.said("mongo: starting") or up.process.returncode is not None, READY_SECONDS)
    footprint = Footprint.of(up.process.pid, env)

    status = await up.stop(signal.SIGINT, whole_group=True)

    assert not up.said("listening on http://"), "the signal came during start-up"
    assert status == 128 + signal.SIGINT, f"an interrupted start is not a success, got {status}:\n{up.output()}"
    assert footprint.left() == "", footprint.left() + up.output()
