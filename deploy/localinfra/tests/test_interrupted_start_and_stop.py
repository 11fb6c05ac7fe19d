"""A start that fails or is interrupted leaves nothing running, and a stop is not cut short by a second signal.

The servers are stand-ins: sleeping Python processes, started and stopped through the real launcher."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from chat_localinfra import launcher
from chat_localinfra.config import InfraConfig, Service
from chat_localinfra.errors import InfraError
from chat_localinfra.probes import ProbeFailed
from chat_localinfra.process import pid_is_alive, spawn_detached, stop_signals_deferred
from chat_localinfra.servers import Progress, Server, child_env
from chat_localinfra.state import read_state

Hook = Callable[[], None]


def _refuse() -> None:
    raise ProbeFailed("not answering")


def _interrupt() -> None:
    """What Ctrl-C does to this process."""
    os.kill(os.getpid(), signal.SIGINT)


class Sleeper(Server):
    """A server that only sleeps; hooks let a test act at the moments that matter."""

    human_name: ClassVar[str] = "a sleeping stand-in"

    def __init__(self, config: InfraConfig, *, exits_at_once: bool = False) -> None:
        super().__init__(config)
        self.exits_at_once = exits_at_once
        self.on_probe: Hook = lambda: None
        self.on_shutdown: Hook = lambda: None
        self.pids: list[int] = []

    @property
    def url(self) -> str:
        return f"sleeper://{self.service}"

    @property
    def ports(self) -> dict[str, int]:
        return {}

    @property
    def process_marker(self) -> str:
        return str(self.home / "marker")

    def prepare(self, progress: Progress) -> None:
        self.home.mkdir(parents=True, exist_ok=True)

    def launch(self, timeout: float) -> int:
        code = "raise SystemExit(1)" if self.exits_at_once else "import time; time.sleep(120)"
        pid = spawn_detached([sys.executable, "-c", code, self.process_marker], log_path=self.log_path, env=child_env())
        self.pids.append(pid)
        return pid

    def probe(self) -> None:
        self.on_probe()

    def shutdown(self, pid: int) -> None:
        self.on_shutdown()
        super().shutdown(pid)


class FakePostgres(Sleeper):
    service: ClassVar[Service] = "postgres"


class FakeMongo(Sleeper):
    service: ClassVar[Service] = "mongo"


@pytest.fixture(autouse=True)
def default_signal_handlers() -> Iterator[None]:
    """The process's own SIGINT and SIGTERM handlers for each test, whatever earlier tests in this process left
    (an asyncio runner's SIGINT handler outlives it when a server it ran restores handlers after it closed)."""
    sigterm, sigint = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGTERM, sigterm)
    signal.signal(signal.SIGINT, sigint)


@pytest.fixture
def config(tmp_path: Path) -> InfraConfig:
    return InfraConfig(repo_root=tmp_path, infra_dir=tmp_path / "infra")


@pytest.fixture
def fakes(config: InfraConfig, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[Service, Sleeper]]:
    made: dict[Service, Sleeper] = {"postgres": FakePostgres(config), "mongo": FakeMongo(config)}
    monkeypatch.setattr(launcher, "servers", lambda _config: made)
    yield made
    for server in made.values():
        for pid in server.pids:
            if pid_is_alive(pid):
                os.kill(pid, signal.SIGKILL)
                pid_is_alive(pid)  # reaps it


def _left_running(fakes: dict[Service, Sleeper]) -> list[int]:
    return [pid for server in fakes.values() for pid in server.pids if pid_is_alive(pid)]


def test_a_start_interrupted_while_the_servers_boot_stops_those_it_launched(
    config: InfraConfig, fakes: dict[Service, Sleeper]
) -> None:
    fakes["mongo"].on_probe = _interrupt

    with pytest.raises(KeyboardInterrupt):
        launcher.ensure_started(["postgres", "mongo"], config=config)

    assert len(fakes["postgres"].pids) == len(fakes["mongo"].pids) == 1, "both were launched"
    assert _left_running(fakes) == []
    assert read_state(config.state_dir, "postgres") is None
    assert read_state(config.state_dir, "mongo") is None


def test_a_start_that_fails_stops_the_servers_that_did_start(
    config: InfraConfig, fakes: dict[Service, Sleeper]
) -> None:
    fakes["mongo"].exits_at_once = True
    fakes["mongo"].on_probe = _refuse

    with pytest.raises(InfraError, match="exited during start-up"):
        launcher.ensure_started(["postgres", "mongo"], config=config)

    assert _left_running(fakes) == []
    assert read_state(config.state_dir, "postgres") is None


def test_a_second_interrupt_while_stopping_is_delivered_once_every_server_is_stopped(
    config: InfraConfig, fakes: dict[Service, Sleeper]
) -> None:
    started = launcher.ensure_started(["postgres", "mongo"], config=config)
    assert started.started_now == {"postgres", "mongo"}
    # PostgreSQL is stopped first; the signal comes while it stops, as a second Ctrl-C (or uv's own) would.
    fakes["postgres"].on_shutdown = _interrupt

    with pytest.raises(KeyboardInterrupt):
        launcher.stop(["postgres", "mongo"], config=config)

    assert _left_running(fakes) == []
    assert read_state(config.state_dir, "mongo") is None


def test_stop_signals_wait_for_the_block_and_then_reach_the_handler_that_was_there() -> None:
    received: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, _frame: received.append(signum))
    try:
        with stop_signals_deferred():
            signal.raise_signal(signal.SIGTERM)
            signal.raise_signal(signal.SIGINT)
            assert received == []
        assert received == [signal.SIGTERM], "the first one is delivered, once"
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGTERM, previous)
