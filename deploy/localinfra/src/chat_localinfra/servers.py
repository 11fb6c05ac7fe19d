"""What every local server offers the launcher: install, launch, probe, stop."""

from __future__ import annotations

import abc
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

from chat_localinfra.config import InfraConfig, Service
from chat_localinfra.process import terminate

Progress = Callable[[str], None]

# Variables from the caller's environment that would make a child Python or JVM load the wrong things.
_LEAKY_ENV = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV", "CLASSPATH", "JAVA_TOOL_OPTIONS")


def child_env(**extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in _LEAKY_ENV}
    env.update(extra)
    return env


class Server(abc.ABC):
    """One local server. Implementations are cheap to create and do no I/O until asked."""

    service: ClassVar[Service]
    human_name: ClassVar[str]

    def __init__(self, config: InfraConfig) -> None:
        self.config = config

    @property
    def home(self) -> Path:
        return self.config.service_dir(self.service)

    @property
    def log_path(self) -> Path:
        return self.home / f"{self.service}.log"

    @property
    @abc.abstractmethod
    def url(self) -> str:
        """What clients connect to (URL or bootstrap address)."""

    @property
    @abc.abstractmethod
    def ports(self) -> dict[str, int]:
        """The ports it listens on, keyed by the environment variable that sets each."""

    @property
    @abc.abstractmethod
    def process_marker(self) -> str:
        """A string in the server process's command line that no other process on the machine has."""

    @abc.abstractmethod
    def prepare(self, progress: Progress) -> None:
        """Install and initialise whatever is missing (idempotent; a no-op once done)."""

    @abc.abstractmethod
    def launch(self, timeout: float) -> int:
        """Start the server in the background and return the PID to record."""

    @abc.abstractmethod
    def probe(self) -> None:
        """One readiness attempt with a real client; raises ProbeFailed."""

    def shutdown(self, pid: int) -> None:
        """Stop the recorded process: SIGTERM, a grace period, then SIGKILL."""
        terminate(pid, first_signal=signal.SIGTERM, grace=30.0)
