"""SIGTERM stops a `chat` command the way Ctrl-C does.

SIGTERM is how `kill`, systemd, Docker and Kubernetes ask a process to stop. Python leaves it at the default
action, which ends the process on the spot: no ``finally`` runs, so `chat up` left the embedded servers it had
started running. uvicorn catches SIGTERM while it serves and drains the requests in flight, but afterwards raises
it again under that default action. And a container's first process (PID 1) gets no default action at all: there
SIGTERM is ignored, so a one-shot command such as `chat migrate` ran on until the runtime killed it.

While a command runs, SIGTERM does what SIGINT does at that moment: under uvicorn its own handler drains and
stops (it handles both), under ``asyncio.run`` the main task is cancelled, anywhere else KeyboardInterrupt is
raised; so every ``finally`` runs and the servers the command started are stopped.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any


class StopSignals:
    """SIGTERM as an interrupt, from ``install`` to ``restore``; and whether it came, for the exit status."""

    def __init__(self) -> None:
        self.terminated = False
        self.repeated = 0
        """Stop signals received while already stopping."""
        self._previous: Callable[[int, FrameType | None], Any] | int | None = None
        self._previous_interrupt: Callable[[int, FrameType | None], Any] | int | None = None
        self._installed = False

    @classmethod
    def install(cls) -> StopSignals:
        stops = cls()
        # Only the main thread receives signals in Python (and only it may set handlers).
        if threading.current_thread() is threading.main_thread():
            stops._previous = signal.signal(signal.SIGTERM, stops.on_sigterm)
            stops._installed = True
        return stops

    def restore(self) -> None:
        """Put back the handlers there were (a test calling ``main`` keeps its own)."""
        if self._installed:
            # None: the handler was set outside Python, which cannot be put back; the default is the closest.
            signal.signal(signal.SIGTERM, signal.SIG_DFL if self._previous is None else self._previous)
            if self._previous_interrupt is not None:
                signal.signal(signal.SIGINT, self._previous_interrupt)
                self._previous_interrupt = None
            self._installed = False

    def stopping(self) -> None:
        """A stop is under way (the server has drained): a repeated Ctrl-C or SIGTERM, such as the one ``uv run``
        forwards right after the terminal's, is part of the same request and must not cut the cleanup short."""
        if self._installed and self._previous_interrupt is None:
            self._previous_interrupt = signal.signal(signal.SIGINT, self._repeated)
            signal.signal(signal.SIGTERM, self._repeated)

    def _repeated(self, signum: int, frame: FrameType | None) -> None:
        self.repeated += 1

    def on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        self.terminated = True
        interrupt = signal.getsignal(signal.SIGINT)
        if callable(interrupt):
            interrupt(signal.SIGINT, frame)
        else:
            # SIGINT is ignored (a background job of a non-interactive shell) or left to the OS: SIGTERM still stops.
            raise KeyboardInterrupt

    @property
    def exit_status(self) -> int:
        """The shell's convention for a process stopped by a signal: 128 + its number."""
        return 128 + (signal.SIGTERM if self.terminated else signal.SIGINT)


@contextlib.contextmanager
def sigterm_interrupts() -> Iterator[StopSignals]:
    """For the block, SIGTERM interrupts like SIGINT; the previous handler comes back afterwards."""
    stops = StopSignals.install()
    try:
        yield stops
    finally:
        stops.restore()
